/// The labels in the forms other tools read: a CSV of path and class, class folders, and Label Studio tasks for
/// the batch being labelled (with the model's prediction and its probability as the score), whose JSON export
/// reads back as labels.
module Waal.Label.Exports

open System
open System.IO
open System.Text
open System.Text.Json
open Waal.Core
open Waal.Data

let private csvField (s: string) =
    if s.IndexOfAny([| ','; '"'; '\n'; '\r' |]) >= 0 then
        "\"" + s.Replace("\"", "\"\"") + "\""
    else
        s

/// `path,class`, one row per label (paths relative to the images folder), in pool order.
let labelsCsv (pool: Dataset) (labels: (int * int)[]) =
    let sb = StringBuilder("path,class\n")

    for i, l in labels |> Array.sortBy fst do
        sb.Append(csvField pool.Files[i]).Append(',').Append(csvField pool.ClassNames[l]).Append('\n')
        |> ignore

    sb.ToString()

/// Copies every labelled image into `out/<class>/<its path>` (a folder `--dataset folder=` reads); returns the
/// number of files copied. Files already there with the same content are left as they are.
let classFolders (root: string) (pool: Dataset) (labels: (int * int)[]) (out: string) =
    let mutable copied = 0

    for i, l in labels do
        let target =
            Path.Combine(out, pool.ClassNames[l], pool.Files[i].Replace('/', Path.DirectorySeparatorChar))

        Directory.CreateDirectory(Path.GetDirectoryName target) |> ignore
        File.Copy(Path.Combine(root, pool.Files[i]), target, true)
        copied <- copied + 1

    copied

/// The batch being labelled as Label Studio tasks (a JSON list): `data.image` is the page's URL of the image,
/// `data.path` its file, `data.pool_index` and `data.query_rank` (0: picked first) where it stands; with a
/// trained model, `data.margin` (the gap between its two most probable classes) and one prediction each (the
/// most probable class, its probability as the score). `imageUrl` gives an index's URL.
let labelStudioTasks
    (pool: Dataset)
    (b: BatchLabels)
    (probabilities: float32[] option)
    (modelVersion: string)
    (imageUrl: int -> string)
    =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
        w.WriteStartArray()

        b.Indices
        |> Array.iteri (fun rank i ->
            w.WriteStartObject()
            w.WriteNumber("id", i)
            w.WriteStartObject "data"
            w.WriteString("image", imageUrl i)
            w.WriteString("path", pool.Files[i])
            w.WriteNumber("pool_index", i)
            w.WriteNumber("query_rank", rank)
            w.WriteNumber("round", b.Round)

            // The margin between the model's two most probable classes: what margin-ranking queries sort by.
            let row =
                probabilities
                |> Option.map (fun p -> Array.sub p (rank * pool.Classes) pool.Classes)

            row
            |> Option.iter (fun row -> w.WriteNumber("margin", Classic.margin (Array.map float row)))

            w.WriteEndObject()

            match row with
            | Some row ->
                let best = Array.IndexOf(row, Array.max row)
                w.WriteStartArray "predictions"
                w.WriteStartObject()
                w.WriteString("model_version", modelVersion)
                w.WriteNumber("score", float row[best])
                w.WriteStartArray "result"
                w.WriteStartObject()
                w.WriteString("from_name", "choice")
                w.WriteString("to_name", "image")
                w.WriteString("type", "choices")
                w.WriteStartObject "value"
                w.WriteStartArray "choices"
                w.WriteStringValue pool.ClassNames[best]
                w.WriteEndArray()
                w.WriteEndObject()
                w.WriteEndObject()
                w.WriteEndArray()
                w.WriteEndObject()
                w.WriteEndArray()
            | None -> ()

            w.WriteEndObject())

        w.WriteEndArray()

    Encoding.UTF8.GetString(stream.ToArray())

/// Reads Label Studio's JSON export of such tasks: for each task that has an annotation (the latest one not
/// cancelled), its pool index (`data.pool_index`) and the chosen class; tasks without an annotation are left
/// out. Errors name the task and what is wrong.
let ofLabelStudio (classNames: string[]) (text: string) : Result<(int * int)[], string> =
    let classes = classNames |> Array.mapi (fun i c -> c, i) |> dict

    try
        use doc = JsonDocument.Parse text
        let root = doc.RootElement

        if root.ValueKind <> JsonValueKind.Array then
            failwith "expected a JSON list of tasks (Label Studio's JSON export)"

        let prop (e: JsonElement) (name: string) =
            match e.TryGetProperty name with
            | true, v -> Some v
            | _ -> None

        [|
            for n, task in Seq.indexed (root.EnumerateArray()) do
                let where = $"task {n + 1}"

                let index =
                    match prop task "data" |> Option.bind (fun d -> prop d "pool_index") with
                    | Some v when v.ValueKind = JsonValueKind.Number -> v.GetInt32()
                    | _ ->
                        failwith $"{where}: 'data.pool_index' is missing (only tasks exported by waal can be read back)"

                let annotations =
                    match prop task "annotations" with
                    | Some a when a.ValueKind = JsonValueKind.Array ->
                        [
                            for a in a.EnumerateArray() do
                                match prop a "was_cancelled" with
                                | Some c when c.ValueKind = JsonValueKind.True -> ()
                                | _ -> a
                        ]
                    | _ -> []

                match List.tryLast annotations with
                | None -> ()
                | Some a ->
                    let choices =
                        match prop a "result" with
                        | Some r when r.ValueKind = JsonValueKind.Array ->
                            [
                                for r in r.EnumerateArray() do
                                    match prop r "value" |> Option.bind (fun v -> prop v "choices") with
                                    | Some c when c.ValueKind = JsonValueKind.Array ->
                                        for c in c.EnumerateArray() do
                                            c.GetString()
                                    | _ -> ()
                            ]
                        | _ -> []

                    match choices with
                    | [ c ] ->
                        match classes.TryGetValue c with
                        | true, l -> index, l
                        | _ ->
                            let known = String.Join(", ", classNames)
                            failwith $"{where} (pool index {index}): class '{c}' is not one of {known}"
                    | [] -> failwith $"{where} (pool index {index}): the annotation chooses no class"
                    | many ->
                        let all = String.Join(", ", many)

                        failwith
                            $"{where} (pool index {index}): the annotation chooses {many.Length} classes ({all}), expected one"
        |]
        |> Ok
    with
    | :? JsonException as e -> Error $"not valid JSON ({e.Message})"
    | :? InvalidOperationException as e -> Error $"a field has the wrong type ({e.Message})"
    | :? FormatException as e -> Error $"a number is not a 32-bit integer ({e.Message})"
    | Failure m -> Error m
