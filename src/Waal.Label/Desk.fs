/// The labelling desk: one session folder, the images of its pool, the batch a person is labelling and the
/// training that runs between batches. Every label is written to the session folder (batch.json, atomically)
/// before the request that gave it is answered; a completed batch goes into the session (labels.json,
/// progress.json) before training starts, so a process killed at any moment restarts where the person was.
module Waal.Label.Desk

open System
open System.IO
open System.Text
open System.Text.Json
open System.Threading
open System.Threading.Tasks
open Waal.Core
open Waal.Data
open Waal.Experiments
open Waal.Learning

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

/// Why the desk cannot open.
type DeskError =
    | Data of DataError
    | Options of string
    | SessionFailed of ExperimentError
    | Busy of string
    | KnownLabels of file: string * line: int * detail: string

/// A session folder whose lock was not taken: another server or export holds it (LABEL004), or it cannot be
/// created or written (LABEL012).
let private lockRefused (folder: string) =
    function
    | RunFolder.HeldBy detail -> Busy $"{folder}: {detail}"
    | RunFolder.CannotLock detail ->
        Options $"error LABEL012: {folder}: the session folder cannot be created or written: {detail}"

/// One line per error, naming the file or option.
let message (e: DeskError) =
    match e with
    | Data d -> DataError.line d
    | Options m -> m
    | SessionFailed s -> $"error LABEL003: session: {ExperimentError.message s}"
    | Busy m -> $"error LABEL004: {m}"
    | KnownLabels(file, line, detail) -> $"error LABEL005: {file}:{line}: {detail}"

let private recordedJson (r: Recorded) =
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

/// Reads label.json.
let readRecorded (path: string) : Result<Recorded, string> =
    match Files.readText "label.json" Files.Limits.documentBytes path with
    | Error e -> Error $"{path}: {DataError.message e}"
    | Ok text ->

        try
            use doc = JsonDocument.Parse text
            let root = doc.RootElement

            let str (name: string) =
                match root.TryGetProperty name with
                | true, v when v.ValueKind = JsonValueKind.String -> v.GetString()
                | _ -> failwith $"'{name}' is missing or not a string"

            if str "format" <> "waal-label/1" then
                failwith "'format' is not waal-label/1"

            let source =
                match str "source" with
                | "folder" -> ClassFolders
                | "images" ->
                    match root.TryGetProperty "classes" with
                    | true, v when v.ValueKind = JsonValueKind.Array ->
                        match ClassNames.check [| for c in v.EnumerateArray() -> c.GetString() |] with
                        | Ok names -> Images names
                        | Error m -> failwith $"'classes': {m}"
                    | _ -> failwith "'classes' is missing"
                | s -> failwith $"'source' is '{s}', expected images or folder"

            Ok
                {
                    Source = source
                    DataDir = str "dataDir"
                }
        with
        | :? JsonException as e -> Error $"{path}: not valid JSON ({e.Message})"
        | :? InvalidOperationException as e -> Error $"{path}: a field has the wrong type ({e.Message})"
        | Failure m -> Error $"{path}: {m}"

/// The pool and, for class folders, the test split, read from a configuration's folder.
let readData (config: Configuration) (source: Source) : Result<Dataset * Dataset option * DataError list, DeskError> =
    let images = config.Spec.Images

    match source with
    | Images classes ->
        Folder.readImages
            {
                Size = images.Size
                Channels = images.Channels
                SkipBad = images.SkipBad
            }
            classes
            config.Settings.DataDir
        |> Result.map (fun r -> r.Data, None, r.Skipped)
        |> Result.mapError Data
    | ClassFolders ->
        match Datasets.find "folder" with
        | Error m -> Error(Options m)
        | Ok entry ->
            entry.Load(Workbench.sourceOf config)
            |> Result.map (fun l -> l.Train, (if l.Test.Count > 0 then Some l.Test else None), l.Skipped)
            |> Result.mapError Data

/// Reads a CSV of known labels (`path,label`, the path relative to the images folder, the label a class name or
/// empty): the (index, class) pairs to seed the session with.
let readKnownLabels (file: string) (pool: Dataset) : Result<(int * int)[], DeskError> =
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
                        | true, i when label = "" -> go (n + 1) acc
                        | true, i ->
                            match classes.TryGetValue label with
                            | true, c -> go (n + 1) ((i, c) :: acc)
                            | _ ->
                                let known = String.Join(", ", pool.ClassNames)
                                Error(KnownLabels(file, number, $"class '{label}' is not one of {known}"))

        go 0 []

/// A batch file (batch.json, prefetch.json) of a pool of `count` items and `classes` classes.
let readBatchFile (count: int) (classes: int) (path: string) : Result<BatchLabels, string> =
    Files.readText (Path.GetFileName path) Files.Limits.documentBytes path
    |> Result.mapError DataError.message
    |> Result.bind (BatchLabels.ofJson count classes)

/// Moves a file that cannot be read out of the way (renamed beside it, so nothing is lost); returns its new name.
let private keepAside (path: string) =
    let aside = path + ".unreadable"
    File.Move(path, aside, true)
    aside

/// The (index, label) pairs a pool's label state holds.
let storedLabels (pool: Pool) =
    Pool.labelled pool |> Array.map (fun i -> i, Pool.labelOf pool i |> Option.get)

/// Every label given: the stored ones, the batch's, then the ones held from the training time that neither has.
let givenLabels (stored: (int * int)[]) (inBatch: (int * int)[]) (held: (int * int)[]) =
    let taken = Set.ofArray (Array.map fst (Array.append stored inBatch))
    Array.concat [ stored; inBatch; held |> Array.filter (fun (i, _) -> not (taken.Contains i)) ]

/// What the desk is doing.
type Status =
    /// A batch waits for labels.
    | Labelling
    /// Training and the next query run in the background.
    | Training
    /// A stopping rule fired, or every image is labelled.
    | Finished of why: string
    /// Training failed; the labels are kept, and a restart tries again.
    | Failed of why: string

/// A request the desk refused: an HTTP status and why.
type Refusal =
    {
        Status: int
        Message: string
    }

    /// A refused label, skip or undo: 409 when there is nothing to undo, else 400 (a bad index or class).
    static member ofLabelling(e: LabellingError) =
        {
            Status = (if e = NothingToUndo then 409 else 400)
            Message = BatchLabels.message e
        }

/// The desk over an open session. Thread-safe: every request and the background training take one gate.
[<Sealed>]
type Desk
    private
    (
        files: Files,
        session: Session.Session,
        pool: Dataset,
        source: Source,
        root: string,
        progress: (string * int * int) ref
    ) =
    let gate = obj ()
    let cancel = new CancellationTokenSource()
    let mutable batch: BatchLabels option = None
    /// While the model trains: the images offered meanwhile; while a batch waits: the labels given to them
    /// that the batch did not take (stored with it).
    let mutable prefetch: BatchLabels option = None
    let mutable status = Labelling
    let mutable version = 0L
    /// This process's desk: versions count from 0 again after a restart.
    let instance = Guid.NewGuid().ToString "N"
    let mutable training: Task = Task.CompletedTask
    let mutable disposed = false

    let classes = pool.Classes
    let query = session.Config.Spec.Query

    let persist (b: BatchLabels) =
        RunFolder.writeTextAtomic files.Batch (BatchLabels.toJson b)

    /// Writes prefetch.json, or removes it when nothing is held.
    let persistPrefetch () =
        match prefetch with
        | Some f -> RunFolder.writeTextAtomic files.Prefetch (BatchLabels.toJson f)
        | None when File.Exists files.Prefetch -> File.Delete files.Prefetch
        | None -> ()

    let save () =
        match session.Save files.Folder with
        | Ok() -> ()
        | Error e -> failwith (ExperimentError.message e)

    let finishedWhy () =
        match session.Progress.Stopped with
        | Some why -> $"the stopping rule fired: {why}"
        | None -> "every image of the pool is labelled"

    /// Labels given while the model trained that no queried batch took go into the session as extra labels
    /// (when no batch waits for labels). Called with the gate held.
    let storeExtras () =
        match prefetch with
        | None -> Ok()
        | Some f ->
            let pairs =
                BatchLabels.pairs f
                |> Array.filter (fun (i, _) -> not (Pool.isLabelled session.Pool i))

            (if pairs.Length = 0 then Ok() else session.Label pairs)
            |> Result.map (fun () ->
                save ()
                prefetch <- None
                persistPrefetch ())

    /// Called with the gate held: what to do next when no batch is being labelled.
    let rec advance () =
        version <- version + 1L

        match session.Pending with
        | Some p ->
            let b =
                match batch with
                | Some b when b.Kind = QueryBatch && b.Round = session.Round && b.Indices = p.Indices -> b
                | _ ->
                    // Images of the new batch labelled while the model trained keep their labels.
                    let fresh = BatchLabels.start session.Round QueryBatch p.Indices

                    match prefetch with
                    | None -> fresh
                    | Some f ->
                        BatchLabels.pairs f
                        |> Array.filter (fun (i, _) -> Array.contains i p.Indices)
                        |> Array.fold (fun b (i, l) -> BatchLabels.give classes i l b |> Result.defaultValue b) fresh

            // What the batch took is no longer held; unlabelled prefetched images are dropped.
            prefetch <-
                prefetch
                |> Option.bind (fun f ->
                    BatchLabels.keep (fun i -> f.Labels.ContainsKey i && not (Array.contains i p.Indices)) f)

            persistPrefetch ()
            batch <- Some b
            persist b
            status <- Labelling

            if BatchLabels.isComplete b then
                complete b
        | None when session.Progress.Stopped.IsSome || session.Pool.UnlabelledCount = 0 ->
            batch <- None

            match storeExtras () with
            | Ok() -> status <- Finished(finishedWhy ())
            | Error e -> status <- Failed(ExperimentError.message e)
        | None when session.Pool.LabelledCount = 0 ->
            let b =
                match batch with
                | Some b when b.Kind = InitialBatch && b.Round = session.Round -> b
                | _ ->
                    let count = min session.Config.Spec.Initial session.Pool.UnlabelledCount
                    BatchLabels.start session.Round InitialBatch (session.DrawInitial count)

            batch <- Some b
            persist b
            status <- Labelling

            if BatchLabels.isComplete b then
                complete b
        | None ->
            batch <- None
            status <- Training
            progress.Value <- ("training", 0, 1)

            // A desk being disposed starts nothing (the next start of the session trains).
            if not disposed then
                training <- Task.Run(Action(fun () -> train ()))

    /// Called with the gate held: a batch with every label goes into the session (with the extra labels given
    /// while the model trained), which is saved; then the next proposal starts.
    and complete (b: BatchLabels) =
        let stored =
            match b.Kind with
            | InitialBatch -> session.Label(BatchLabels.pairs b)
            | QueryBatch -> session.Accept(BatchLabels.pairs b) |> Result.map ignore
            | PrefetchBatch -> Ok()

        match stored |> Result.bind storeExtras with
        | Error e -> status <- Failed(ExperimentError.message e)
        | Ok() ->
            save ()
            batch <- None
            advance ()

    /// The images offered while the model trains: the last model's least sure unlabelled images (the margin
    /// strategy's own query: smallest gap between the two most probable classes), or a seeded random draw
    /// before any model.
    and prefetchItems () =
        let unlabelled = Pool.unlabelled session.Pool
        let count = min query unlabelled.Length

        match session.Model with
        | Some _ ->
            session.QueryWith(Waal.Strategies.Margin.strategy, count)
            |> Result.defaultWith (fun e -> failwith (ExperimentError.message e))
        | None -> Pool.draw (Rng.key session.Config.Spec.Seed session.Round (Rng.Named "prefetch")) count session.Pool

    and train () : unit =
        // While this batch of work runs, only this thread uses the session's networks.
        let offered =
            try
                if prefetch.IsNone then prefetchItems () else [||]
            with e ->
                // Labelling goes on without images offered early; the reason is not hidden.
                eprintfn $"warning LABEL013: {files.Prefetch}: no images offered while the model trains: {e.Message}"
                [||]

        if offered.Length > 0 then
            lock gate (fun () ->
                if prefetch.IsNone && status = Training then
                    prefetch <- Some(BatchLabels.start session.Round PrefetchBatch offered)
                    persistPrefetch ()
                    version <- version + 1L)

        let result =
            try
                session.Propose(cancel.Token, query) |> Result.mapError ExperimentError.message
            with
            | :? OperationCanceledException -> Error ""
            | e -> Error $"{e.GetType().Name}: {e.Message}"

        lock gate (fun () ->
            match result with
            | Error "" -> ()
            | Error why ->
                status <- Failed why
                version <- version + 1L
            | Ok _ ->
                try
                    save ()
                    advance ()
                with e ->
                    status <- Failed e.Message
                    version <- version + 1L)

    /// Every label given: the session's, the batch's, the ones given while the model trained. Gate held.
    let allLabels () =
        let stored =
            Pool.labelled session.Pool
            |> Array.map (fun i -> i, Pool.labelOf session.Pool i |> Option.get)

        let pairs = Option.map BatchLabels.pairs >> Option.defaultValue [||]
        let inBatch = pairs batch
        let taken = Set.ofArray (Array.map fst (Array.append stored inBatch))
        let held = pairs prefetch |> Array.filter (fun (i, _) -> not (taken.Contains i))
        Array.concat [ stored; inBatch; held ]

    let checkLive () =
        if disposed then
            raise (ObjectDisposedException "Desk")

    /// Opens the desk: reads the batch being labelled (if its round and items still match the session) and
    /// decides what comes next; a complete batch left by a killed process is stored now.
    static member internal Start(files: Files, session, pool, source, root, progress) =
        let desk = new Desk(files, session, pool, source, root, progress)
        desk.Resume()
        desk

    member private _.Resume() =
        lock gate (fun () ->
            if File.Exists files.Batch then
                match readBatchFile pool.Count classes files.Batch with
                | Ok b -> batch <- Some b
                | Error why ->
                    // A batch file that cannot be read is kept beside, never silently dropped.
                    let aside = keepAside files.Batch
                    eprintfn $"warning LABEL006: {files.Batch}: {why}; kept as {aside}, the batch starts again"

            if File.Exists files.Prefetch then
                match readBatchFile pool.Count classes files.Prefetch with
                | Ok f ->
                    // Labels a killed process had already stored are not held twice.
                    prefetch <- BatchLabels.keep (fun i -> not (Pool.isLabelled session.Pool i)) f
                | Error why ->
                    let aside = keepAside files.Prefetch
                    eprintfn $"warning LABEL006: {files.Prefetch}: {why}; kept as {aside}"

            advance ())

    /// The class names.
    member _.Classes = pool.ClassNames
    /// The pool.
    member _.Pool = pool
    /// The session folder's files.
    member _.Files = files

    /// The image file of a pool index (None outside the pool): only indices come from a client.
    member _.ImageFile(index: int) =
        if index >= 0 && index < pool.Files.Length then
            Some(Path.Combine(root, pool.Files[index]))
        else
            None

    /// Labels one item of the batch being labelled.
    member this.Give(index: int, label: int) =
        this.Change(BatchLabels.give classes index label)

    /// Labels several items of the batch, all or none: one refused label leaves the batch as it was.
    member this.GiveAll(pairs: (int * int)[]) =
        this.Change(fun b ->
            pairs
            |> Array.fold (fun acc (i, l) -> acc |> Result.bind (BatchLabels.give classes i l)) (Ok b))

    /// Takes back the last label of the batch.
    member this.Undo() = this.Change BatchLabels.undo
    /// Asks an item again after the others.
    member this.Skip(index: int) = this.Change(BatchLabels.skip index)

    member private _.Change(f: BatchLabels -> Result<BatchLabels, LabellingError>) : Result<unit, Refusal> =
        lock gate (fun () ->
            checkLive ()

            match status, batch with
            | Labelling, Some b ->
                match f b with
                | Error e -> Error(Refusal.ofLabelling e)
                | Ok next ->
                    persist next
                    batch <- Some next
                    version <- version + 1L

                    if BatchLabels.isComplete next then
                        complete next

                    Ok()
            | Training, _ when prefetch.IsSome ->
                // Labelling the images offered while the model trains.
                match f prefetch.Value with
                | Error e -> Error(Refusal.ofLabelling e)
                | Ok next ->
                    prefetch <- Some next
                    persistPrefetch ()
                    version <- version + 1L
                    Ok()
            | Training, _ ->
                Error
                    {
                        Status = 409
                        Message = "the model is training; the next batch comes when it is done"
                    }
            | Finished why, _ ->
                Error
                    {
                        Status = 409
                        Message = $"labelling has finished: {why}"
                    }
            | Failed why, _ ->
                Error
                    {
                        Status = 409
                        Message = $"training failed: {why}"
                    }
            | Labelling, None ->
                Error
                    {
                        Status = 409
                        Message = "no batch is being labelled"
                    })

    /// Every label given: the session's, then the batch's in progress (index, class).
    member _.Labels() = lock gate allLabels

    /// The batch being labelled, with the model's class probabilities for its items when a model is trained
    /// (one row of `Classes` per item).
    member _.PendingWithProbabilities() =
        lock gate (fun () ->
            match status, batch with
            | Labelling, Some b ->
                let probabilities =
                    match session.Probabilities b.Indices with
                    | Ok p -> Some p
                    | Error _ -> None

                Some(b, probabilities)
            | _ -> None)

    /// The state the page shows, as JSON.
    member _.StateJson() : string =
        lock gate (fun () ->
            use stream = new MemoryStream()

            do
                use w = new Utf8JsonWriter(stream)
                w.WriteStartObject()
                w.WriteNumber("version", version)
                w.WriteString("instance", instance)
                w.WriteNumber("round", session.Round)
                w.WriteNumber("pool", pool.Count)
                // Stored in the session (what the next training uses) and given in all (the batch's and the
                // ones given while the model trained included).
                w.WriteNumber("labelled", session.Pool.LabelledCount)
                w.WriteNumber("given", (allLabels ()).Length)
                w.WriteBoolean("knownLabels", (source = ClassFolders))
                w.WriteBoolean("hasTest", session.HasTest)
                w.WriteStartArray "classes"

                for c in pool.ClassNames do
                    w.WriteStringValue c

                w.WriteEndArray()

                let statusName, why =
                    match status with
                    | Labelling -> "labelling", ""
                    | Training -> "training", ""
                    | Finished why -> "finished", why
                    | Failed why -> "failed", why

                w.WriteString("status", statusName)
                w.WriteString("message", why)
                let phase, doneSteps, total = progress.Value
                w.WriteStartObject "training"
                w.WriteString("phase", phase)
                w.WriteNumber("done", doneSteps)
                w.WriteNumber("total", total)
                w.WriteEndObject()

                let shown =
                    match status, batch, prefetch with
                    | Labelling, Some b, _ -> Some b
                    | Training, _, Some f -> Some f
                    | _ -> None

                // Labels given while the model trained that wait for the batch to be stored with it.
                match status, prefetch with
                | Labelling, Some f -> w.WriteNumber("held", f.Labels.Count)
                | _ -> w.WriteNumber("held", 0)

                match shown with
                | Some b ->
                    w.WriteStartObject "batch"
                    w.WriteNumber("round", b.Round)
                    w.WriteString("kind", BatchLabels.kindName b.Kind)
                    w.WriteNumber("size", b.Indices.Length)
                    w.WriteNumber("given", b.Labels.Count)

                    match BatchLabels.next b with
                    | Some i -> w.WriteNumber("next", i)
                    | None -> w.WriteNull "next"

                    w.WriteBoolean("canUndo", not b.History.IsEmpty)
                    w.WriteStartArray "items"

                    for i in b.Order do
                        w.WriteStartObject()
                        w.WriteNumber("index", i)
                        w.WriteString("file", (if i < pool.Files.Length then pool.Files[i] else ""))

                        match Map.tryFind i b.Labels with
                        | Some l -> w.WriteNumber("label", l)
                        | None -> w.WriteNull "label"

                        w.WriteEndObject()

                    w.WriteEndArray()
                    w.WriteEndObject()
                | _ -> w.WriteNull "batch"

                // How often the person's labels agree with the folders' (class-folder sources only).
                if source = ClassFolders then
                    let all = allLabels ()
                    let agreed = all |> Array.filter (fun (i, l) -> pool.Labels[i] = l) |> Array.length
                    w.WriteStartObject "agreement"
                    w.WriteNumber("given", all.Length)
                    w.WriteNumber("agreed", agreed)
                    w.WriteEndObject()

                w.WriteStartArray "curve"

                let number (name: string) (v: float) =
                    if Double.IsFinite v then
                        w.WriteNumber(name, v)
                    else
                        w.WriteNull name

                let records =
                    session.Progress.Records
                    @ (session.Pending |> Option.map (fun p -> p.Record) |> Option.toList)

                for r in records do
                    w.WriteStartObject()
                    w.WriteNumber("round", r.Round)
                    w.WriteNumber("labels", r.Labelled)
                    number "accuracy" r.TestAccuracy

                    for name, v in r.StopSignals do
                        number name v

                    w.WriteEndObject()

                w.WriteEndArray()

                match session.Progress.Stopped with
                | Some why -> w.WriteString("stopped", why)
                | None -> w.WriteNull "stopped"

                w.WriteEndObject()

            Encoding.UTF8.GetString(stream.ToArray()))

    /// Waits for the background training (for tests and a clean shutdown).
    member _.Training = training

    interface IDisposable with
        member _.Dispose() =
            let running =
                lock gate (fun () ->
                    if disposed then
                        None
                    else
                        disposed <- true
                        cancel.Cancel()
                        Some training)

            match running with
            | None -> ()
            | Some t ->
                try
                    t.Wait()
                with _ ->
                    ()

                (session :> IDisposable).Dispose()
                cancel.Dispose()

/// A session folder's configuration (spec.json) and source (label.json), as it was started.
let readSession (folder: string) : Result<Configuration * Source, DeskError> =
    let files = Files(Path.GetFullPath folder)

    readRecorded files.Label
    |> Result.mapError (fun m -> Options $"error LABEL002: {m}")
    |> Result.bind (fun recorded ->
        RunFolder.readSpec files.Layout
        |> Result.mapError (fun detail -> Options $"error LABEL002: {files.Layout.Spec}: {detail}")
        |> Result.map (fun config -> config, recorded.Source))

/// A progress sink that records the current phase and its steps in a cell the page reads.
let private sinkInto (cell: (string * int * int) ref) : ProgressSink =
    {
        Start = fun name total -> cell.Value <- (name, 0, max 1 total)
        Advance =
            fun n ->
                let name, d, t = cell.Value
                cell.Value <- (name, min t (d + n), t)
        Finish =
            fun () ->
                let name, _, t = cell.Value
                cell.Value <- (name, t, t)
    }

/// Opens (or creates) a session folder and its desk. A new folder records its source in label.json and is
/// seeded with the known labels; an existing one is reopened with the source and options it was started with
/// (the given configuration is then not used).
let openDesk
    (folder: string)
    (config: Configuration)
    (source: Source)
    (knownLabels: string option)
    : Result<Desk * IDisposable * string list, DeskError> =
    let files = Files(Path.GetFullPath folder)

    let seeds (pool: Dataset) =
        match knownLabels with
        | None -> Ok [||]
        | Some file -> readKnownLabels file pool

    // A new session's images and known labels are read before its folder is created: input that cannot be read
    // leaves nothing behind.
    let early =
        if Directory.Exists files.Folder then
            Ok None
        else
            readData config source
            |> Result.bind (fun data ->
                let pool, _, _ = data
                seeds pool |> Result.map (fun pairs -> Some(data, pairs)))

    match
        early
        |> Result.bind (fun early ->
            RunFolder.lockFolder files.Layout
            |> Result.map (fun held -> early, held)
            |> Result.mapError (lockRefused files.Folder))
    with
    | Error e -> Error e
    | Ok(early, folderLock) ->
        let fail e =
            (folderLock :> IDisposable).Dispose()
            Error e

        let cell = ref ("", 0, 0)
        let sink = sinkInto cell
        let resuming = File.Exists files.Layout.Spec

        let recorded =
            if resuming then
                readSession files.Folder
                |> Result.map (fun (saved, source) ->
                    saved, source, [ $"resuming {files.Folder} (its own options and images)" ])
            else
                Ok(config, source, [])

        match recorded with
        | Error e -> fail e
        | Ok(config, source, notes) ->
            let data =
                match early with
                | Some(data, _) -> Ok data
                | None -> readData config source

            match data with
            | Error e -> fail e
            | Ok(pool, test, skipped) ->
                let notes =
                    notes
                    @ [
                        for e in skipped do
                            $"skipped {DataError.file e}: {DataError.line e}"
                    ]

                let opened =
                    if resuming then
                        Session.load files.Folder pool test sink |> Result.mapError SessionFailed
                    else
                        Session.create config pool test sink
                        |> Result.mapError SessionFailed
                        |> Result.bind (fun s ->
                            let seeded =
                                match early with
                                | Some(_, pairs) -> Ok pairs
                                | None -> seeds pool
                                |> Result.bind (fun pairs ->
                                    if pairs.Length = 0 then
                                        Ok()
                                    else
                                        s.Label pairs |> Result.mapError SessionFailed)

                            match seeded with
                            | Error e ->
                                (s :> IDisposable).Dispose()
                                Error e
                            | Ok() ->
                                RunFolder.writeTextAtomic
                                    files.Label
                                    (recordedJson
                                        {
                                            Source = source
                                            DataDir = Path.GetFullPath config.Settings.DataDir
                                        })

                                match s.Save files.Folder with
                                | Ok() -> Ok s
                                | Error e ->
                                    (s :> IDisposable).Dispose()
                                    Error(SessionFailed e))

                match opened with
                | Error e -> fail e
                | Ok s ->
                    let root = Path.GetFullPath config.Settings.DataDir

                    try
                        let desk = Desk.Start(files, s, pool, source, root, cell)
                        Ok(desk, (folderLock :> IDisposable), notes)
                    with e ->
                        (s :> IDisposable).Dispose()
                        fail (Options $"error LABEL003: session: {e.Message}")

/// A session folder read without opening a session (no training, no networks): for exports and imports while
/// no server runs. Holds the folder's lock until disposed.
type Offline =
    {
        Files: Files
        Pool: Dataset
        /// The images folder the pool's paths are relative to.
        Root: string
        /// The labels stored in the session (completed batches and seeded ones).
        Stored: (int * int)[]
        /// The batch being labelled, if any.
        Batch: BatchLabels option
        /// Labels given while the model trained, not stored yet.
        Held: (int * int)[]
        Lock: IDisposable
    }

    /// Every label given: the stored ones, the batch's, the held ones.
    member o.Labels =
        givenLabels o.Stored (o.Batch |> Option.map BatchLabels.pairs |> Option.defaultValue [||]) o.Held

    interface IDisposable with
        member o.Dispose() = o.Lock.Dispose()

/// Reads a session folder for an export or an import (refused while a server holds it).
let openOffline (folder: string) : Result<Offline, DeskError> =
    let files = Files(Path.GetFullPath folder)

    if not (File.Exists files.Label) then
        Error(Options $"error LABEL002: {files.Label}: missing; expected the folder of a 'waal label' session")
    else
        match RunFolder.lockFolder files.Layout with
        | Error refused -> Error(lockRefused files.Folder refused)
        | Ok folderLock ->
            let opened =
                result {
                    let! config, source = readSession files.Folder
                    let! pool, _, _ = readData config source

                    let! progress =
                        RunFolder.readState files.Layout config
                        |> Result.mapError (fun m -> Options $"error LABEL002: {files.Layout.Progress}: {m}")

                    let readBatch (path: string) =
                        if File.Exists path then
                            readBatchFile pool.Count pool.Classes path
                            |> Result.map Some
                            |> Result.mapError (fun m -> Options $"error LABEL002: {path}: {m}")
                        else
                            Ok None

                    let! batch = readBatch files.Batch
                    let! prefetch = readBatch files.Prefetch

                    // A batch file left from a batch already stored is not a batch in progress.
                    let current (b: BatchLabels) =
                        match b.Kind, progress.Pending with
                        | QueryBatch, Some p -> b.Round = progress.Round && b.Indices = p.Indices
                        | InitialBatch, None -> progress.Pool.LabelledCount = 0
                        | _ -> false

                    return
                        {
                            Files = files
                            Pool = pool
                            Root = Path.GetFullPath config.Settings.DataDir
                            Stored = storedLabels progress.Pool
                            Batch = batch |> Option.filter current
                            Held =
                                prefetch
                                |> Option.map BatchLabels.pairs
                                |> Option.defaultValue [||]
                                |> Array.filter (fun (i, _) -> not (Pool.isLabelled progress.Pool i))
                            Lock = folderLock
                        }
                }

            match opened with
            | Ok o -> Ok o
            | Error e ->
                (folderLock :> IDisposable).Dispose()
                Error e

/// Gives labels to the batch being labelled of an offline session and writes batch.json; the next `waal label`
/// on the folder goes on from there (and stores the batch when it is complete).
let importInto (o: Offline) (pairs: (int * int)[]) : Result<Offline * int, string> =
    match o.Batch with
    | None -> Error $"{o.Files.Folder}: no batch is being labelled"
    | Some b ->
        let rec go (b: BatchLabels) (rest: (int * int) list) =
            match rest with
            | [] -> Ok b
            | (i, l) :: more ->
                match BatchLabels.give o.Pool.Classes i l b with
                | Ok b -> go b more
                | Error e -> Error(BatchLabels.message e)

        go b (List.ofArray pairs)
        |> Result.map (fun next ->
            RunFolder.writeTextAtomic o.Files.Batch (BatchLabels.toJson next)
            { o with Batch = Some next }, pairs.Length)
