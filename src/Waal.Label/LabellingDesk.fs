namespace Waal.Label

open Waal.Core

/// What the labelling desk is doing.
[<RequireQualifiedAccess>]
type internal DeskStatus =
    /// A batch waits for labels.
    | Labelling
    /// Training and the next query run in the background.
    | Training
    /// A stopping rule fired, or every image is labelled.
    | Finished of why: string
    /// Training, or storing a batch, failed; the labels are kept, and a restart tries again.
    | Failed of why: string

/// A request the desk refused: an HTTP status and why.
type internal Refusal =
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

/// What a person does on the page to the batch shown (the batch being labelled, or while the model trains, the
/// images offered meanwhile).
[<RequireQualifiedAccess>]
type internal Edit =
    /// Labels one item.
    | Give of index: int * label: int
    /// Labels several items, all or none.
    | GiveAll of (int * int)[]
    /// Takes back the last label.
    | Undo
    /// Asks an item again after the others.
    | Skip of index: int

/// What happens to the desk: a person's edits, and the answers to the effects that take time or can fail.
[<RequireQualifiedAccess>]
type internal DeskEvent =
    /// The desk opened with the batch and prefetch files found in the session folder (None: absent, or kept
    /// aside because they could not be read).
    | Opened of batch: BatchLabels option * prefetch: BatchLabels option
    | Edited of Edit
    /// The images to offer while the model trains were chosen (the answer to `StartTraining`, before the
    /// proposal ends).
    | Offered of int[]
    /// The background proposal (training and query) ended: Ok, or why it failed. A cancelled one sends nothing.
    | Proposed of Result<unit, string>
    /// The answer to `Save`.
    | Saved of Result<unit, string>
    /// The answer to `Store`: its labels went into the session, which was saved; or why not.
    | Stored of Result<unit, string>
    /// Carrying out an effect threw (a file that cannot be written, ...).
    | Crashed of why: string

/// What the shell around the desk does, in order, for one step. `Store` and `Save` are answered with an event.
[<RequireQualifiedAccess>]
type internal DeskEffect =
    /// Writes batch.json.
    | WriteBatch of BatchLabels
    /// Writes prefetch.json, or removes it (None).
    | WritePrefetch of BatchLabels option
    /// Puts a complete batch into the session (an initial batch as labels outside a round, a query batch as the
    /// labels that complete its round), then the extra labels given while the model trained, then saves the
    /// session; answered with `Stored`.
    | Store of batch: BatchLabels option * extras: (int * int)[]
    /// Saves the session (after a proposal); answered with `Saved`.
    | Save
    /// Chooses the images to offer (answered with `Offered`), then proposes the next batch in the background
    /// (answered with `Proposed`).
    | StartTraining
    /// Refuses the edit, with an HTTP status and why.
    | Refuse of Refusal

/// The desk's own state: the batch being labelled, the labels given while the model trains, what it is doing,
/// and a counter the page polls (it changes whenever what the page shows changes).
type internal DeskState =
    {
        Batch: BatchLabels option
        /// While the model trains: the images offered meanwhile; while a batch waits: the labels given to them
        /// that the batch did not take (stored with it).
        Prefetch: BatchLabels option
        Status: DeskStatus
        Version: int64
    }

/// What the desk knows of its session that does not change: the seed of the initial draw, the initial batch's
/// size and the number of classes.
type internal DeskSettings =
    {
        Seed: int64
        Initial: int
        Classes: int
    }

/// The labelling desk as a pure transition: `step settings progress state event` gives the next state and the
/// effects the shell carries out, in order. The session owns the progress (the pool, the rounds, the pending
/// batch); the desk reads it and changes it only through `Store`. Labels are written (WriteBatch,
/// WritePrefetch) before they are acknowledged, so a process killed between any two effects loses none.
module internal LabellingDesk =
    /// A desk that has not read its files yet.
    let initial =
        {
            Batch = None
            Prefetch = None
            Status = DeskStatus.Labelling
            Version = 0L
        }

    /// True when a batch file read from a session folder is the batch still being labelled: a query batch of
    /// the pending round with the same items, or an initial batch before any label. A file left from a batch
    /// already stored is not.
    let isCurrent (progress: Progress) (b: BatchLabels) =
        match b.Kind, progress.Pending with
        | QueryBatch, Some p -> b.Round = progress.Round && b.Indices = p.Indices
        | InitialBatch, None -> progress.Pool.LabelledCount = 0
        | _ -> false

    let private finishedWhy (progress: Progress) =
        match progress.Stopped with
        | Some why -> $"the stopping rule fired: {why}"
        | None -> "every image of the pool is labelled"

    let private failed why state =
        { state with
            Status = DeskStatus.Failed why
            Version = state.Version + 1L
        },
        []

    /// The held labels of a prefetch batch not in the session yet.
    let private extras (progress: Progress) (prefetch: BatchLabels option) =
        prefetch
        |> Option.map BatchLabels.pairs
        |> Option.defaultValue [||]
        |> Array.filter (fun (i, _) -> not (Pool.isLabelled progress.Pool i))

    /// A batch with every label goes into the session, with the labels held.
    let private complete (progress: Progress) (state: DeskState) (b: BatchLabels) =
        let held =
            extras progress state.Prefetch
            |> Array.filter (fun (i, _) -> not (Array.contains i b.Indices))

        state, [ DeskEffect.Store(Some b, held) ]

    /// What comes next when no batch is being labelled, or the session moved on.
    let private advance (settings: DeskSettings) (progress: Progress) (state: DeskState) =
        let state =
            { state with
                Version = state.Version + 1L
            }

        match progress.Pending with
        | Some p ->
            let b =
                match state.Batch with
                | Some b when isCurrent progress b -> b
                | _ ->
                    // Images of the new batch labelled while the model trained keep their labels.
                    let fresh = BatchLabels.start progress.Round QueryBatch p.Indices

                    match state.Prefetch with
                    | None -> fresh
                    | Some f ->
                        BatchLabels.pairs f
                        |> Array.filter (fun (i, _) -> Array.contains i p.Indices)
                        |> Array.fold
                            (fun b (i, l) -> BatchLabels.give settings.Classes i l b |> Result.defaultValue b)
                            fresh

            // What the batch took is no longer held; unlabelled prefetched images are dropped.
            let held =
                state.Prefetch
                |> Option.bind (fun f ->
                    BatchLabels.keep (fun i -> f.Labels.ContainsKey i && not (Array.contains i p.Indices)) f)

            let state =
                { state with
                    Batch = Some b
                    Prefetch = held
                    Status = DeskStatus.Labelling
                }

            let written = [ DeskEffect.WritePrefetch held; DeskEffect.WriteBatch b ]

            if BatchLabels.isComplete b then
                let state, effects = complete progress state b
                state, written @ effects
            else
                state, written
        | None when progress.Stopped.IsSome || progress.Pool.UnlabelledCount = 0 ->
            let state = { state with Batch = None }

            match state.Prefetch with
            // The labels held go into the session first; `Stored` comes back here with nothing held.
            | Some f -> state, [ DeskEffect.Store(None, extras progress (Some f)) ]
            | None ->
                { state with
                    Status = DeskStatus.Finished(finishedWhy progress)
                },
                []
        | None when progress.Pool.LabelledCount = 0 ->
            let b =
                match state.Batch with
                | Some b when isCurrent progress b && b.Round = progress.Round -> b
                | _ ->
                    let count = min settings.Initial progress.Pool.UnlabelledCount
                    BatchLabels.start progress.Round InitialBatch (Round.drawInitial settings.Seed count progress)

            let state =
                { state with
                    Batch = Some b
                    Status = DeskStatus.Labelling
                }

            if BatchLabels.isComplete b then
                let state, effects = complete progress state b
                state, DeskEffect.WriteBatch b :: effects
            else
                state, [ DeskEffect.WriteBatch b ]
        | None ->
            { state with
                Batch = None
                Status = DeskStatus.Training
            },
            [ DeskEffect.StartTraining ]

    /// An edit applied to a batch of a pool with `classes` classes (GiveAll: all or none).
    let apply (classes: int) (edit: Edit) (b: BatchLabels) =
        match edit with
        | Edit.Give(i, l) -> BatchLabels.give classes i l b
        | Edit.GiveAll pairs ->
            pairs
            |> Array.fold (fun acc (i, l) -> acc |> Result.bind (BatchLabels.give classes i l)) (Ok b)
        | Edit.Undo -> BatchLabels.undo b
        | Edit.Skip i -> BatchLabels.skip i b

    let private refuse status message state =
        state, [ DeskEffect.Refuse { Status = status; Message = message } ]

    let private edited (settings: DeskSettings) (progress: Progress) (state: DeskState) (edit: Edit) =
        match state.Status, state.Batch, state.Prefetch with
        | DeskStatus.Labelling, Some b, _ ->
            match apply settings.Classes edit b with
            | Error e -> state, [ DeskEffect.Refuse(Refusal.ofLabelling e) ]
            | Ok next ->
                let state =
                    { state with
                        Batch = Some next
                        Version = state.Version + 1L
                    }

                if BatchLabels.isComplete next then
                    let state, effects = complete progress state next
                    state, DeskEffect.WriteBatch next :: effects
                else
                    state, [ DeskEffect.WriteBatch next ]
        | DeskStatus.Training, _, Some f ->
            // Labelling the images offered while the model trains.
            match apply settings.Classes edit f with
            | Error e -> state, [ DeskEffect.Refuse(Refusal.ofLabelling e) ]
            | Ok next ->
                { state with
                    Prefetch = Some next
                    Version = state.Version + 1L
                },
                [ DeskEffect.WritePrefetch(Some next) ]
        | DeskStatus.Training, _, None -> refuse 409 "the model is training; the next batch comes when it is done" state
        | DeskStatus.Finished why, _, _ -> refuse 409 $"labelling has finished: {why}" state
        | DeskStatus.Failed why, _, _ -> refuse 409 $"the desk stopped after an error: {why}" state
        | DeskStatus.Labelling, None, _ -> refuse 409 "no batch is being labelled" state

    /// One transition. `progress` is the session's progress when the event happens.
    let step (settings: DeskSettings) (progress: Progress) (state: DeskState) (event: DeskEvent) =
        match event with
        | DeskEvent.Opened(batch, prefetch) ->
            // Labels a killed process had already stored are not held twice.
            let held =
                prefetch
                |> Option.bind (BatchLabels.keep (fun i -> not (Pool.isLabelled progress.Pool i)))

            advance
                settings
                progress
                { state with
                    Batch = batch
                    Prefetch = held
                }
        | DeskEvent.Edited edit -> edited settings progress state edit
        | DeskEvent.Offered indices when
            indices.Length > 0
            && state.Prefetch.IsNone
            && state.Status = DeskStatus.Training
            ->
            let offered = BatchLabels.start progress.Round PrefetchBatch indices

            { state with
                Prefetch = Some offered
                Version = state.Version + 1L
            },
            [ DeskEffect.WritePrefetch(Some offered) ]
        | DeskEvent.Offered _ -> state, []
        | DeskEvent.Proposed(Error why) -> failed why state
        | DeskEvent.Proposed(Ok()) -> state, [ DeskEffect.Save ]
        | DeskEvent.Saved(Ok()) -> advance settings progress state
        | DeskEvent.Stored(Ok()) ->
            let cleared =
                [
                    if state.Prefetch.IsSome then
                        DeskEffect.WritePrefetch None
                ]

            let state, effects =
                advance
                    settings
                    progress
                    { state with
                        Batch = None
                        Prefetch = None
                    }

            state, cleared @ effects
        | DeskEvent.Saved(Error why)
        | DeskEvent.Stored(Error why)
        | DeskEvent.Crashed why -> failed why state

    /// Every label given: the session's, the batch's, then the ones held from the training time that neither has.
    let givenLabels (stored: (int * int)[]) (inBatch: (int * int)[]) (held: (int * int)[]) =
        let taken = Set.ofArray (Array.map fst (Array.append stored inBatch))
        Array.concat [ stored; inBatch; held |> Array.filter (fun (i, _) -> not (taken.Contains i)) ]

    /// The (index, label) pairs a pool's label state holds.
    let storedLabels (pool: Pool) =
        Pool.labelled pool |> Array.map (fun i -> i, Pool.labelOf pool i |> Option.get)

    /// Every label given in a desk's state over the session's progress.
    let labels (progress: Progress) (state: DeskState) =
        let pairs = Option.map BatchLabels.pairs >> Option.defaultValue [||]
        givenLabels (storedLabels progress.Pool) (pairs state.Batch) (pairs state.Prefetch)

    /// The batch the page shows: the one being labelled, or while the model trains, the images offered.
    let shown (state: DeskState) =
        match state.Status, state.Batch, state.Prefetch with
        | DeskStatus.Labelling, Some b, _ -> Some b
        | DeskStatus.Training, _, Some f -> Some f
        | _ -> None

    /// Labels given while the model trained that wait for the batch to be stored with them.
    let held (state: DeskState) =
        match state.Status, state.Prefetch with
        | DeskStatus.Labelling, Some f -> f.Labels.Count
        | _ -> 0
