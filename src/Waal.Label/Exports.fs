/// The labels in the forms other tools read: a CSV of path and class, class folders, and Label Studio tasks for
/// the batch being labelled (with the model's prediction and its probability as the score), whose JSON export
/// reads back as labels.
module internal Waal.Label.Exports

open System
open System.IO
open System.Text
open System.Text.Json
open Waal.Core
open Waal.Data

/// `path,class`, one row per label (paths relative to the images folder), in pool order.
let labelsCsv (pool: Dataset) (labels: (int * int)[]) =
    let sb = StringBuilder("path,class\n")

    for i, l in labels |> Array.sortBy fst do
        sb.Append(Csv.text pool.Files[i]).Append(',').Append(Csv.text pool.ClassNames[l]).Append('\n')
        |> ignore

    sb.ToString()

/// What a folder export did: files copied, and files already there with the same bytes (an export repeated).
type FolderExport = { Copied: int; AlreadyThere: int }

/// Copies every labelled image into `out/<class>/<its path>` (a folder `--dataset folder=` reads). It never
/// overwrites: a file already there with the same bytes is left as it is, one with other bytes is an error naming
/// it; and nothing is written outside `out` (class names and paths are checked where they enter, and each target
/// again here). Images are read as regular files within the image cap (Files.readBytes).
let classFolders (root: string) (pool: Dataset) (labels: (int * int)[]) (out: string) : Result<FolderExport, string> =
    let copyOne (i: int, l: int) : Result<bool, string> =
        let file = pool.Files[i]

        let target =
            Path.GetFullPath(Path.Combine(out, pool.ClassNames[l], file.Replace('/', Path.DirectorySeparatorChar)))

        if not (Files.within out target) then
            Error
                $"{target}: lies outside {out} (class {ClassNames.shown pool.ClassNames[l]}, file '{file}'); nothing is written there"
        else
            Files.readBytes "an image file" Files.Limits.imageBytes (Path.Combine(root, file))
            |> Result.mapError DataError.line
            |> Result.bind (fun bytes ->
                match Files.kind target with
                | Ok Files.Absent ->
                    // No overwrite, even of a file that appeared meanwhile.
                    AtomicFile.createNew target bytes
                    Ok true
                | Ok(Files.Regular size) when
                    size = bytes.LongLength
                    && Files.readBytes "an image file" Files.Limits.imageBytes target = Ok bytes
                    ->
                    Ok false
                | Ok(Files.Regular _) ->
                    Error
                        $"{target}: already exists with other content; a folder export never overwrites (give an empty --folders folder)"
                | Ok _ ->
                    Error
                        $"{target}: already exists and is not a file; a folder export never overwrites (give an empty --folders folder)"
                | Error e -> Error(DataError.line e))

    try
        labels
        |> Array.fold
            (fun acc pair ->
                acc
                |> Result.bind (fun (done': FolderExport) ->
                    copyOne pair
                    |> Result.map (fun copied ->
                        if copied then
                            { done' with Copied = done'.Copied + 1 }
                        else
                            { done' with
                                AlreadyThere = done'.AlreadyThere + 1
                            })))
            (Ok { Copied = 0; AlreadyThere = 0 })
    with
    | :? IOException as e -> Error $"{out}: {e.Message}"
    | :? UnauthorizedAccessException as e -> Error $"{out}: {e.Message}"

/// The address of a pool file under a folder's file URI: each path segment escaped, so a name holding '%', '#' or
/// '?' is linked as it is named (a name `z%41.png` stays z%41.png, not zA.png).
let fileUri (root: string) (file: string) =
    let rootUri = Uri(Path.GetFullPath root + "/").AbsoluteUri
    rootUri + String.Join("/", file.Split('/') |> Array.map Uri.EscapeDataString)

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

    let prop (e: JsonElement) (name: string) =
        match
            e.ValueKind,
            (if e.ValueKind = JsonValueKind.Object then
                 e.TryGetProperty name
             else
                 (false, e))
        with
        | JsonValueKind.Object, (true, v) -> Some v
        | _ -> None

    /// One task: None without an annotation, else its (pool index, class).
    let task (n: int) (task: JsonElement) : Result<(int * int) option, string> =
        let where = $"task {n + 1}"

        let index =
            match prop task "data" |> Option.bind (fun d -> prop d "pool_index") with
            | Some v when v.ValueKind = JsonValueKind.Number ->
                match v.TryGetInt32() with
                | true, i -> Ok i
                | _ -> Error $"{where}: 'data.pool_index' {v.GetRawText()} is not a 32-bit integer"
            | _ -> Error $"{where}: 'data.pool_index' is missing (only tasks exported by waal can be read back)"

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

        index
        |> Result.bind (fun index ->
            match List.tryLast annotations with
            | None -> Ok None
            | Some a ->
                let choices =
                    match prop a "result" with
                    | Some r when r.ValueKind = JsonValueKind.Array ->
                        [
                            for r in r.EnumerateArray() do
                                match prop r "value" |> Option.bind (fun v -> prop v "choices") with
                                | Some c when c.ValueKind = JsonValueKind.Array ->
                                    for c in c.EnumerateArray() do
                                        if c.ValueKind = JsonValueKind.String then
                                            c.GetString()
                                        else
                                            c.GetRawText()
                                | _ -> ()
                        ]
                    | _ -> []

                match choices with
                | [ c ] ->
                    match classes.TryGetValue c with
                    | true, l -> Ok(Some(index, l))
                    | _ ->
                        let known = String.Join(", ", classNames)
                        Error $"{where} (pool index {index}): class '{c}' is not one of {known}"
                | [] -> Error $"{where} (pool index {index}): the annotation chooses no class"
                | many ->
                    let all = String.Join(", ", many)

                    Error
                        $"{where} (pool index {index}): the annotation chooses {many.Length} classes ({all}), expected one")

    let rec tasks (n: int) (items: JsonElement list) acc =
        match items with
        | [] -> Ok(List.rev acc |> List.choose id |> Array.ofList)
        | t :: rest -> task n t |> Result.bind (fun p -> tasks (n + 1) rest (p :: acc))

    try
        use doc = JsonDocument.Parse text

        if doc.RootElement.ValueKind <> JsonValueKind.Array then
            Error "expected a JSON list of tasks (Label Studio's JSON export)"
        else
            tasks 0 (List.ofSeq (doc.RootElement.EnumerateArray())) []
    with :? JsonException as e ->
        Error $"not valid JSON ({e.Message})"
