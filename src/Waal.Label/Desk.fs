/// The labelling desk: the shell around the pure `LabellingDesk.step`. It holds one session, the images of its
/// pool and the desk's state under one lock, carries out each step's effects in order (files written, labels
/// stored in the session, the training started in the background) and feeds their answers back. Every label is
/// written to the session folder (batch.json, atomically) before the request that gave it is answered; a
/// completed batch goes into the session (labels.json, progress.json) before training starts, so a process
/// killed at any moment restarts where the person was.
module internal Waal.Label.Desk

open System
open System.IO
open System.Threading
open System.Threading.Tasks
open Waal.Core
open Waal.Data
open Waal.Experiments
open Waal.Learning
open Waal.Label.SessionFolder

/// What carrying out one effect gave.
type private Outcome =
    | Done
    | Answer of DeskEvent
    | Refused of Refusal
    | Threw of string

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
    let mutable state = LabellingDesk.initial
    /// This process's desk: versions count from 0 again after a restart.
    let instance = Guid.NewGuid().ToString "N"
    let mutable training: Task = Task.CompletedTask
    let mutable disposed = false
    let query = session.Config.Spec.Query

    let settings: DeskSettings =
        {
            Seed = session.Config.Spec.Seed
            Initial = session.Config.Spec.Initial
            Classes = pool.Classes
        }

    let warn (w: LabelWarning) = eprintfn $"{LabelWarning.message w}"

    /// A complete batch, then the labels held, into the session; then the session is saved.
    let store (batch: BatchLabels option) (extras: (int * int)[]) =
        match batch with
        | Some b when b.Kind = InitialBatch -> session.Label(BatchLabels.pairs b)
        | Some b when b.Kind = QueryBatch -> session.Accept(BatchLabels.pairs b) |> Result.map ignore
        | _ -> Ok()
        |> Result.bind (fun () -> if extras.Length = 0 then Ok() else session.Label extras)
        |> Result.bind (fun () -> session.Save files.Folder)
        |> Result.mapError ExperimentError.message

    /// The images offered while the model trains: the last model's least sure unlabelled images (the margin
    /// strategy's own query), or a seeded random draw before any model.
    let prefetchItems () =
        let count = min query session.Pool.UnlabelledCount

        match session.Model with
        | Some _ ->
            session.QueryWith(Waal.Strategies.Margin.strategy, count)
            |> Result.mapError ExperimentError.message
        | None ->
            Ok(Pool.draw (Rng.key session.Config.Spec.Seed session.Round (Rng.Named "prefetch")) count session.Pool)

    /// Runs one event, then the events its effects answer with, until none is left. Gate held. The reply is
    /// the step's refusal, or a failure while carrying out an effect (the desk is then Failed, the labels
    /// written so far kept).
    let rec run (event: DeskEvent) : Result<unit, Refusal> =
        let next, effects = LabellingDesk.step settings session.Progress state event
        state <- next
        perform effects []

    /// Carries out effects in order; their answers run after the step's last effect.
    and perform (effects: DeskEffect list) (answers: DeskEvent list) : Result<unit, Refusal> =
        match effects with
        | [] ->
            List.rev answers
            |> List.fold (fun reply answer -> reply |> Result.bind (fun () -> run answer)) (Ok())
        | effect :: rest ->
            let outcome =
                try
                    match effect with
                    | DeskEffect.WriteBatch b ->
                        writeBatchFile files.Batch (Some b)
                        Done
                    | DeskEffect.WritePrefetch f ->
                        writeBatchFile files.Prefetch f
                        Done
                    | DeskEffect.Store(batch, extras) -> Answer(DeskEvent.Stored(store batch extras))
                    | DeskEffect.Save ->
                        Answer(DeskEvent.Saved(session.Save files.Folder |> Result.mapError ExperimentError.message))
                    | DeskEffect.StartTraining ->
                        startTraining ()
                        Done
                    | DeskEffect.Refuse r -> Refused r
                with e ->
                    Threw $"{e.GetType().Name}: {e.Message}"

            match outcome with
            | Done -> perform rest answers
            | Answer event -> perform rest (event :: answers)
            | Refused r -> Error r
            | Threw why ->
                run (DeskEvent.Crashed why) |> ignore
                Error { Status = 500; Message = why }

    /// The background training: images offered meanwhile, then the next proposal.
    and startTraining () =
        progress.Value <- ("training", 0, 1)

        // A desk being disposed starts nothing (the next start of the session trains).
        if not disposed then
            training <- Task.Run(Action(fun () -> train ()))

    and train () : unit =
        // While this runs, only this thread uses the session's networks.
        let offered =
            if lock gate (fun () -> state.Prefetch.IsSome) then
                [||]
            else
                match
                    (try
                        prefetchItems ()
                     with e ->
                         Error $"{e.GetType().Name}: {e.Message}")
                with
                | Ok items -> items
                | Error why ->
                    // Labelling goes on without images offered early; the reason is not hidden.
                    warn (NothingOffered(files.Prefetch, why))
                    [||]

        lock gate (fun () -> run (DeskEvent.Offered offered) |> ignore)

        let proposed =
            try
                session.Propose(cancel.Token, query)
                |> Result.map ignore
                |> Result.mapError ExperimentError.message
                |> Some
            with
            | :? OperationCanceledException -> None
            | e -> Some(Error $"{e.GetType().Name}: {e.Message}")

        match proposed with
        | None -> ()
        | Some r -> lock gate (fun () -> run (DeskEvent.Proposed r) |> ignore)

    let checkLive () =
        if disposed then
            raise (ObjectDisposedException "Desk")

    /// Opens the desk: reads the batch being labelled (kept if its round and items still match the session)
    /// and decides what comes next; a complete batch left by a killed process is stored now.
    static member internal Start(files: Files, session, pool, source, root, progress) =
        let desk = new Desk(files, session, pool, source, root, progress)
        desk.Resume() |> Result.map (fun () -> desk)

    member private _.Resume() =
        lock gate (fun () ->
            let batch, aside = readBatchFileOrKeepAside pool.Count pool.Classes files.Batch

            let prefetch, aside' =
                readBatchFileOrKeepAside pool.Count pool.Classes files.Prefetch

            List.iter warn (aside @ aside')

            match run (DeskEvent.Opened(batch, prefetch)) with
            | Error r when r.Status = 500 -> Error r.Message
            | _ -> Ok())

    member private _.Apply(edit: Edit) : Result<unit, Refusal> =
        lock gate (fun () ->
            checkLive ()
            run (DeskEvent.Edited edit))

    /// The class names.
    member _.Classes = pool.ClassNames
    /// The pool's images.
    member _.PoolImages = pool
    /// The session folder's files.
    member _.Files = files

    /// The image file of a pool index (None outside the pool): only indices come from a client.
    member _.ImageFile(index: int) =
        if index >= 0 && index < pool.Files.Length then
            Some(Path.Combine(root, pool.Files[index]))
        else
            None

    /// Labels one item of the batch shown.
    member this.Give(index: int, label: int) = this.Apply(Edit.Give(index, label))
    /// Labels several items of the batch, all or none: one refused label leaves the batch as it was.
    member this.GiveAll(pairs: (int * int)[]) = this.Apply(Edit.GiveAll pairs)
    /// Takes back the last label of the batch.
    member this.Undo() = this.Apply Edit.Undo
    /// Asks an item again after the others.
    member this.Skip(index: int) = this.Apply(Edit.Skip index)

    /// Every label given: the session's, the batch's in progress, the ones given while the model trained.
    member _.Labels() =
        lock gate (fun () -> LabellingDesk.labels session.Progress state)

    /// The batch being labelled, with the model's class probabilities for its items when a model is trained
    /// (one row of `Classes` per item).
    member _.PendingWithProbabilities() =
        lock gate (fun () ->
            match state.Status, state.Batch with
            | DeskStatus.Labelling, Some b -> Some(b, session.Probabilities b.Indices |> Result.toOption)
            | _ -> None)

    /// The state the page shows, as JSON.
    member _.StateJson() : string =
        lock gate (fun () ->
            {
                PageJson.Instance = instance
                PageJson.Desk = state
                PageJson.Progress = session.Progress
                PageJson.PoolImages = pool
                PageJson.Source = source
                PageJson.HasTest = session.HasTest
                PageJson.Training = progress.Value
            })
        |> PageJson.write

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

/// A new session in `files`: created from the configuration, seeded with the known labels, its source recorded
/// in label.json, saved.
let private createSession files config source pool test sink (pairs: (int * int)[]) =
    Session.create config pool test sink
    |> Result.mapError SessionFailed
    |> Result.bind (fun (s: Session.Session) ->
        let created =
            result {
                if pairs.Length > 0 then
                    do! s.Label pairs |> Result.mapError SessionFailed

                AtomicFile.writeText
                    (files: Files).Label
                    (recordedJson
                        {
                            Source = source
                            DataDir = Path.GetFullPath config.Settings.DataDir
                        })

                do! s.Save files.Folder |> Result.mapError SessionFailed
                return s
            }

        if Result.isError created then
            (s :> IDisposable).Dispose()

        created)

/// Opens (or creates) a session folder and its desk. A new folder records its source in label.json and is
/// seeded with the known labels; an existing one is reopened with the source and options it was started with
/// (the given configuration is then not used).
let openDesk
    (folder: string)
    (config: Configuration)
    (source: Source)
    (knownLabels: string option)
    : Result<Desk * IDisposable * string list, LabelError> =
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
            result {
                let! data = readData config source
                let pool, _, _ = data
                let! pairs = seeds pool
                return Some(data, pairs)
            }

    result {
        let! early = early
        let! folderLock = lockSession files

        let opened =
            result {
                let cell = ref ("", 0, 0)
                let sink = sinkInto cell
                let resuming = File.Exists files.Layout.Spec

                let! config, source, notes =
                    if resuming then
                        readSession files.Folder
                        |> Result.map (fun (saved, source) ->
                            saved, source, [ $"resuming {files.Folder} (its own options and images)" ])
                    else
                        Ok(config, source, [])

                let! pool, test, skipped =
                    match early with
                    | Some(data, _) -> Ok data
                    | None -> readData config source

                let notes =
                    notes
                    @ [
                        for e in skipped do
                            $"skipped {DataError.file e}: {DataError.line e}"
                    ]

                let! s =
                    if resuming then
                        Session.load files.Folder pool test sink |> Result.mapError SessionFailed
                    else
                        match early with
                        | Some(_, pairs) -> Ok pairs
                        | None -> seeds pool
                        |> Result.bind (createSession files config source pool test sink)

                let root = Path.GetFullPath config.Settings.DataDir

                let! desk =
                    try
                        Desk.Start(files, s, pool, source, root, cell)
                    with e ->
                        Error e.Message
                    |> Result.mapError (fun why ->
                        (s :> IDisposable).Dispose()
                        StartFailed why)

                return desk, folderLock, notes
            }

        if Result.isError opened then
            folderLock.Dispose()

        return! opened
    }
