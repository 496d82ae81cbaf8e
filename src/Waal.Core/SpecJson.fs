/// spec.json: a configuration (the spec and its run settings) as one flat JSON object, written and read through
/// the option table, so a new option needs no code here.
[<RequireQualifiedAccess>]
module Waal.Core.SpecJson

open System
open System.IO
open System.Text
open System.Text.Json

/// The configuration as indented JSON, with the versions of the software that ran it and, when known, the network
/// "auto" resolved to (`networkResolved`: neither is part of its identity). A run folder whose spec says "auto"
/// keeps training, exporting and predicting with the recorded network after "auto" changes its choice.
let toJsonResolved (network: string option) (versions: (string * string) list) (c: Configuration) =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
        w.WriteStartObject()

        for o in Options.all do
            let value = o.Get c

            match o.Kind with
            | Integer -> w.WriteNumber(o.JsonName, Int64.Parse value)
            | Number -> w.WriteNumber(o.JsonName, Double.Parse(value, Globalization.CultureInfo.InvariantCulture))
            | Flag -> w.WriteBoolean(o.JsonName, (value = "true"))
            | IntegerOrAll when value = "all" -> w.WriteNull o.JsonName
            | IntegerOrAll -> w.WriteNumber(o.JsonName, Int64.Parse value)
            | Choice _
            | Text -> w.WriteString(o.JsonName, value)

        // What the run is, in words (derived from the fields above; not read back).
        // (Encoded without escaping the apostrophe, so the file reads as the words: JSON needs no escape there.)
        w.WriteString(
            "summary",
            JsonEncodedText.Encode(Options.describe c.Spec, Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping)
        )

        network |> Option.iter (fun n -> w.WriteString("networkResolved", n))
        w.WriteStartObject "versions"

        for name, version in versions do
            w.WriteString(name, version)

        w.WriteEndObject()
        w.WriteEndObject()

    Encoding.UTF8.GetString(stream.ToArray())

/// The configuration as indented JSON with the versions (no resolved network recorded).
let toJson (versions: (string * string) list) (c: Configuration) = toJsonResolved None versions c

/// The network a spec.json recorded for "auto" (`networkResolved`), if any and if the text is JSON.
let resolvedNetwork (text: string) : string option =
    try
        use doc = JsonDocument.Parse text

        match doc.RootElement.TryGetProperty "networkResolved" with
        | true, v when v.ValueKind = JsonValueKind.String -> Some(v.GetString())
        | _ -> None
    with :? JsonException ->
        None

// The canonical text of a JSON value for an option of that kind, or what was expected.
let private textOf (o: OptionDef) (e: JsonElement) =
    match o.Kind, e.ValueKind with
    | (Integer | Number | IntegerOrAll), JsonValueKind.Number -> Some(e.GetRawText())
    | IntegerOrAll, JsonValueKind.Null -> Some "all"
    | Flag, JsonValueKind.True -> Some "true"
    | Flag, JsonValueKind.False -> Some "false"
    | (Choice _ | Text), JsonValueKind.String -> Some(e.GetString())
    | _ -> None

/// Reads spec.json; every unreadable or out-of-range field is reported by its JSON name. `profileOf` finds the
/// dataset's profile (the defaults of fields a file written by an older version lacks).
let ofJson
    (profileOf: string -> Result<DatasetProfile, string>)
    (text: string)
    : Result<Configuration, SpecError list> =
    let parsed =
        try
            Ok(JsonDocument.Parse text)
        with :? JsonException as e ->
            Error
                [
                    {
                        Field = "document"
                        Message = $"not valid JSON ({e.Message})"
                    }
                ]

    parsed
    |> Result.bind (fun doc ->
        use doc = doc
        let root = doc.RootElement

        let str (name: string) =
            match root.TryGetProperty name with
            | true, e when e.ValueKind = JsonValueKind.String -> Ok(e.GetString())
            | true, e ->
                Error
                    {
                        Field = name
                        Message = $"expected a string, found {e.GetRawText()}"
                    }
            | _ -> Error { Field = name; Message = "missing" }

        if root.ValueKind <> JsonValueKind.Object then
            Error
                [
                    {
                        Field = "document"
                        Message = $"expected an object, found {root.ValueKind}"
                    }
                ]
        else
            match str "dataset", str "strategy" with
            | Error e, _
            | _, Error e -> Error [ e ]
            | Ok _, Ok _ ->
                // Keys by the options' names and their earlier names (a file written before a rename).
                let keysOf (o: OptionDef) = o.Names |> List.map OptionDef.CamelCase

                let known = Options.all |> List.collect keysOf |> Set.ofList

                let unknown =
                    [
                        for p in root.EnumerateObject() do
                            if
                                p.Name <> "versions"
                                && p.Name <> "summary"
                                && p.Name <> "networkResolved"
                                && not (known.Contains p.Name)
                            then
                                {
                                    Field = p.Name
                                    Message = $"unknown field; did you mean '{Options.nearest known p.Name}'?"
                                }
                    ]

                // The fields as the option table's text, in the table's order; a field of the wrong JSON kind, or
                // a required one missing, is an error here, every value's range one of Options.build.
                let read =
                    [
                        for o in Options.all do
                            let present =
                                keysOf o
                                |> List.tryPick (fun k ->
                                    match root.TryGetProperty k with
                                    | true, e -> Some e
                                    | _ -> None)

                            match present with
                            | Some e ->
                                match textOf o e with
                                | Some t -> Ok(o, t)
                                | None ->
                                    Error
                                        {
                                            Field = o.JsonName
                                            Message = $"expected {o.Expected}, found {e.GetRawText()}"
                                        }
                            | _ when o.Required ->
                                Error
                                    {
                                        Field = o.JsonName
                                        Message = "missing"
                                    }
                            | _ -> ()
                    ]

                let given = read |> List.choose Result.toOption

                let unreadable =
                    read
                    |> List.choose (function
                        | Error e -> Some e
                        | Ok _ -> None)

                // A file written before presets existed is the reference preset: spec.json's one fallback (its
                // dataset and strategy must be there).
                let built =
                    Options.build
                        (fun dataset strategy preset ->
                            profileOf dataset |> Result.map (fun p -> Options.defaults p strategy preset))
                        (Options.fallbacks [ "preset", "reference" ])
                        given
                    |> Result.mapError (
                        List.map (fun e ->
                            match Options.tryFind e.Field with
                            | Some o -> { e with Field = o.JsonName }
                            | None -> e)
                    )

                let position (e: SpecError) =
                    Options.all
                    |> List.tryFindIndex (fun o -> o.JsonName = e.Field)
                    |> Option.defaultValue -1

                match built, unknown, unreadable with
                | Ok c, [], [] -> Ok c
                | Ok _, _, _ -> Error(unknown @ List.sortBy position unreadable)
                | Error errors, _, _ -> Error(unknown @ List.sortBy position (unreadable @ errors)))
