/// A labelling session folder: its files and their formats (label.json, batch.json, prefetch.json beside the
/// run folder's spec.json and progress.json), the source data it reads, and the CSV of known labels that seeds
/// a new one.
module internal Waal.Label.SessionFolder

open System
open System.IO
open System.Text
open System.Text.Json
open Waal.Core
open Waal.Data
open Waal.Experiments

/// Where the pool's images come from.
type Source =
    /// A folder of images nobody has labelled, and the class names a person chooses from.
    | Images of classes: string[]
    /// Class folders: the labels are known (the page reports how often the person agreed with them) and a
    /// held-out part (or --test-dir) measures the model.
    | ClassFolders

/// What a session folder records about its source beside spec.json (label.json).
type Recorded = { Source: Source; DataDir: string }

/// The session folder's files.
type Files(folder: string) =
    member _.Folder = folder
    member _.Layout: RunFolder.Layout = { Folder = folder }
    /// The source: images or class folders, and the class names chosen.
    member _.Label = Path.Combine(folder, "label.json")
    /// The batch being labelled, rewritten after every label.
    member _.Batch = Path.Combine(folder, "batch.json")
    /// The images offered while the model trains, and their labels (until stored).
    member _.Prefetch = Path.Combine(folder, "prefetch.json")

/// The session folder's lock, or why it was not taken: another server or export holds it (LABEL004), or it
/// cannot be created or written (LABEL012).
let lockSession (files: Files) : Result<IDisposable, LabelError> =
    RunFolder.lockFolder files.Layout
    |> Result.map (fun held -> held :> IDisposable)
    |> Result.mapError (function
        | RunFolder.HeldBy detail -> Busy(files.Folder, detail)
        | RunFolder.CannotLock detail -> Unwritable(files.Folder, detail))

/// label.json's text.
let recordedJson (r: Recorded) =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
        w.WriteStartObject()
        w.WriteString("format", "waal-label/1")
        w.WriteString("dataDir", r.DataDir)

        match r.Source with
        | Images classes ->
            w.WriteString("source", "images")
            w.WriteStartArray "classes"

            for c in classes do
                w.WriteStringValue c

            w.WriteEndArray()
        | ClassFolders -> w.WriteString("source", "folder")

        w.WriteEndObject()

    Encoding.UTF8.GetString(stream.ToArray()) + "\n"

/// Reads label.json; the error says what is wrong in it.
let readRecorded (path: string) : Result<Recorded, LabelError> =
    let wrong detail = Error(SessionFile(path, detail))

    match Files.readText "label.json" Files.Limits.documentBytes path with
    | Error e -> wrong (DataError.message e)
    | Ok text ->
        try
            use doc = JsonDocument.Parse text
            let root = doc.RootElement

            let str (name: string) =
                match
                    (if root.ValueKind = JsonValueKind.Object then
                         root.TryGetProperty name
                     else
                         (false, root))
                with
                | true, v when v.ValueKind = JsonValueKind.String -> Ok(v.GetString())
                | _ -> Error $"'{name}' is missing or not a string"

            let source (name: string) =
                match name with
                | "folder" -> Ok ClassFolders
                | "images" ->
                    match root.TryGetProperty "classes" with
                    | true, v when v.ValueKind = JsonValueKind.Array ->
                        let names =
                            [|
                                for c in v.EnumerateArray() ->
                                    if c.ValueKind = JsonValueKind.String then
                                        c.GetString()
                                    else
                                        null
                            |]

                        if Array.contains null names then
                            Error "'classes' holds something other than a string"
                        else
                            ClassNames.check names
                            |> Result.map Images
                            |> Result.mapError (fun m -> $"'classes': {m}")
                    | _ -> Error "'classes' is missing"
                | s -> Error $"'source' is '{s}', expected images or folder"

            result {
                let! format = str "format"

                if format <> "waal-label/1" then
                    return! Error "'format' is not waal-label/1"
                else
                    let! source = str "source" |> Result.bind source
                    let! dataDir = str "dataDir"
                    return { Source = source; DataDir = dataDir }
            }
            |> Result.mapError (fun detail -> SessionFile(path, detail))
        with :? JsonException as e ->
            wrong $"not valid JSON ({e.Message})"

/// A session folder's configuration (spec.json) and source (label.json), as it was started.
let readSession (folder: string) : Result<Configuration * Source, LabelError> =
    let files = Files(Path.GetFullPath folder)

    result {
        let! recorded = readRecorded files.Label

        let! config =
            RunFolder.readSpec files.Layout
            |> Result.mapError (fun detail -> SessionFile(files.Layout.Spec, detail))

        return config, recorded.Source
    }

/// A batch file (batch.json, prefetch.json) of a pool of `count` items and `classes` classes.
let readBatchFile (count: int) (classes: int) (path: string) : Result<BatchLabels, string> =
    Files.readText (Path.GetFileName path) Files.Limits.documentBytes path
    |> Result.mapError DataError.message
    |> Result.bind (BatchLabels.ofJson count classes)

/// A batch file if there is one; one that cannot be read is moved out of the way (renamed beside it, so nothing
/// is lost) with a warning.
let readBatchFileOrKeepAside (count: int) (classes: int) (path: string) : BatchLabels option * LabelWarning list =
    if not (File.Exists path) then
        None, []
    else
        match readBatchFile count classes path with
        | Ok b -> Some b, []
        | Error why ->
            let aside = path + ".unreadable"
            File.Move(path, aside, true)
            None, [ BatchFileKeptAside(path, why, aside) ]

/// Writes batch.json or prefetch.json atomically; None removes the file.
let writeBatchFile (path: string) (b: BatchLabels option) =
    match b with
    | Some b -> AtomicFile.writeText path (BatchLabels.toJson b)
    | None when File.Exists path -> File.Delete path
    | None -> ()

/// The pool and, for class folders, the test split, read from a configuration's folder (with --backbone, decoded
/// as the backbone's preparation says).
let readData (config: Configuration) (source: Source) : Result<Dataset * Dataset option * DataError list, LabelError> =
    match Workbench.imageOptionsOf config with
    | Error e -> Error(SessionFailed e)
    | Ok images ->
        match source with
        | Images classes ->
            Folder.readImages images classes config.Settings.DataDir
            |> Result.map (fun r -> r.Data, None, r.Skipped)
            |> Result.mapError Data
        | ClassFolders ->
            match Datasets.find "folder" with
            | Error m -> Error(StartFailed m)
            | Ok entry ->
                let source =
                    { Workbench.sourceOf config with
                        Images = images
                    }

                entry.Load source
                |> Result.map (fun l -> l.Train, (if l.Test.Count > 0 then Some l.Test else None), l.Skipped)
                |> Result.mapError Data

/// Reads a CSV of known labels (`path,label`, the path relative to the images folder, the label a class name or
/// empty): the (index, class) pairs to seed the session with.
let readKnownLabels (file: string) (pool: Dataset) : Result<(int * int)[], LabelError> =
    let index = pool.Files |> Array.mapi (fun i f -> f, i) |> dict

    let classes = pool.ClassNames |> Array.mapi (fun i c -> c, i) |> dict

    match Files.readLines "a CSV of known labels" Files.Limits.documentBytes file with
    | Error e -> Error(KnownLabels(file, 0, DataError.message e))
    | Ok lines ->

        let rec go (n: int) acc =
            if n >= lines.Length then
                Ok(List.rev acc |> Array.ofList)
            else
                let line = lines[n].Trim()
                let number = n + 1

                if
                    line = ""
                    || (n = 0 && line.StartsWith("path,", StringComparison.OrdinalIgnoreCase))
                then
                    go (n + 1) acc
                else
                    let comma = line.LastIndexOf ','

                    if comma < 0 then
                        Error(KnownLabels(file, number, $"expected 'path,label', found '{line}'"))
                    else
                        // Cells as `waal labels --csv` writes them (Csv.text): quoted, a formula guarded by '.
                        let cell (s: string) = Csv.ofText (s.Trim().Trim('"'))
                        let path = (cell (line.Substring(0, comma))).Replace('\\', '/')
                        let label = cell (line.Substring(comma + 1))

                        match index.TryGetValue path with
                        | false, _ ->
                            Error(
                                KnownLabels(
                                    file,
                                    number,
                                    $"'{path}' is not an image of the pool (paths are relative to the images folder)"
                                )
                            )
                        | true, _ when label = "" -> go (n + 1) acc
                        | true, i ->
                            match classes.TryGetValue label with
                            | true, c -> go (n + 1) ((i, c) :: acc)
                            | _ ->
                                let known = String.Join(", ", pool.ClassNames)
                                Error(KnownLabels(file, number, $"class '{label}' is not one of {known}"))

        go 0 []
