namespace Waal.Core

/// What one round of an experiment produced.
type RoundRecord =
    {
        Round: int
        /// Labels the model of this round was trained with.
        Labelled: int
        TestAccuracy: float
        /// Accuracy on the validation split (training images outside the pool, `--validation`); NaN without one.
        ValidationAccuracy: float
        TrainSeconds: float
        QuerySeconds: float
        EvalSeconds: float
        /// Optimiser steps taken in training (the training budget).
        TrainIterations: int64
        /// The indices queried at the end of the round (empty in the last round).
        Queried: int[]
        /// What the strategy measured about its query, by name (WAAL: the critic's AUC, ...; empty for most).
        Signals: (string * float) list
        /// The model's predicted class of each stop-set item (empty when the learner has no stop set).
        StopPredictions: int[]
        /// The stopping signals (Stopping.signals): stop_kappa, stop_agreement, stop_uncertainty.
        StopSignals: (string * float) list
        /// The rule that ended the experiment after this round, with why.
        Stopped: string option
    }

/// A batch a round proposed, waiting for its labels: the round's record is complete except that the batch
/// has not been labelled yet. It is part of the persisted state, so a process that dies while a person labels
/// restarts with the same batch.
type PendingBatch =
    {
        /// The record of the round that proposed it (its `Queried` are the batch, in query order).
        Record: RoundRecord
    }

    /// The pool indices waiting for labels, in query order.
    member p.Indices = p.Record.Queried

/// An experiment's progress: the pool, every completed round (oldest first), and the batch waiting for labels.
type Progress =
    {
        Pool: Pool
        Records: RoundRecord list
        Pending: PendingBatch option
    }

    /// The round the next proposal belongs to (the pending batch's round while one waits).
    member p.Round = p.Records.Length

    /// Why the experiment stopped early, if a stopping rule fired.
    member p.Stopped = p.Records |> List.tryPick (fun r -> r.Stopped)

/// The effects a round needs, passed in as values: nothing in a round reads a global.
type Learner<'model, 'error> =
    {
        /// Trains a fresh model on the labelled part of the pool in the given round, before a query of k items
        /// (what the round will query, or would on its last round); returns it and its step count.
        Train: Pool -> int -> int -> Result<'model * int64, 'error>
        /// Test accuracy of a model (NaN when there is no test data).
        Evaluate: 'model -> Result<float, 'error>
        /// Accuracy on the validation split (NaN when there is none): what settings are chosen on, so the test
        /// set is touched only for final tables.
        Validate: 'model -> Result<float, 'error>
        /// Up to k unlabelled indices to label next, chosen in the given round.
        Query: 'model -> Pool -> int -> int -> Result<int[], 'error>
        /// Named measurements of the model and its query of k items in a round that queried (may be empty).
        Signals: 'model -> Pool -> int -> int -> Result<(string * float) list, 'error>
        /// The model's predicted classes on the fixed stop set and its mean uncertainty (1 - max p) there.
        StopSet: 'model -> Result<int[] * float, 'error>
        /// Frees what the model holds (native memory).
        Release: 'model -> unit
    }

/// Why a round failed; the round number is always given.
type RoundError<'error> =
    /// The learner failed in a stage ("train", "evaluate", "query").
    | LearnerFailed of round: int * stage: string * error: 'error
    /// A query that broke the contract (duplicates, labelled or unknown indices, wrong count).
    | InvalidQuery of round: int * detail: string
    /// The labels given were refused: not exactly the pending batch, or refused by the pool.
    | LabelsRefused of round: int * error: PoolError
    /// `accept` without a pending batch, or `propose` while one waits.
    | OutOfTurn of round: int * detail: string

/// The round as two pure halves over `Progress`: `propose` (train, evaluate, query, check the query) leaves a
/// pending batch; `accept` takes labels for exactly that batch and completes the round. Whatever produces the
/// labels in between (the dataset's hidden labels, a C# IOracle, a person at a web page hours later in another
/// process) is outside the transition.
module Round =
    /// Checks a query against the contract: min(k, |U|) distinct unlabelled indices.
    let checkQuery (pool: Pool) (k: int) (picked: int[]) =
        let expected = min k pool.UnlabelledCount

        if picked.Length <> expected then
            Error $"expected {expected} indices, found {picked.Length}"
        elif (Array.distinct picked).Length <> picked.Length then
            Error "the batch holds an index twice"
        else
            match
                picked
                |> Array.tryFind (fun i -> i < 0 || i >= pool.Size || Pool.isLabelled pool i)
            with
            | Some i when i < 0 || i >= pool.Size -> Error $"index {i} is outside the pool of {pool.Size}"
            | Some i -> Error $"index {i} is already labelled"
            | None -> Ok picked

    /// True when rounds 0 .. lastRound are all complete, or a stopping rule ended the experiment.
    let isFinished (lastRound: int) (progress: Progress) =
        progress.Pending.IsNone
        && (progress.Records.Length > lastRound || progress.Stopped.IsSome)

    /// Trains on the labelled set, evaluates, measures the stop set, and (unless it is the last round, nothing is
    /// unlabelled, or a stopping rule fires) queries k items (fewer when a label budget allows fewer). Returns the next progress and the trained model, which the caller owns (to checkpoint, keep or
    /// release); on an error the model is released here. With a non-empty query the progress holds it as the
    /// pending batch; otherwise the round is complete. The clock returns seconds.
    let propose
        (learner: Learner<'model, 'error>)
        (clock: unit -> float)
        (rules: StopRule list)
        (k: int)
        (lastRound: int)
        (progress: Progress)
        : Result<Progress * 'model, RoundError<'error>> =
        let round = progress.Round
        let pool = progress.Pool

        if progress.Pending.IsSome then
            Error(OutOfTurn(round, "a batch is waiting for labels: accept it first"))
        elif progress.Stopped.IsSome then
            Error(OutOfTurn(round, $"the experiment stopped ({progress.Stopped.Value})"))
        elif round > lastRound then
            Error(OutOfTurn(round, $"every round 0..{lastRound} is complete"))
        else
            let t0 = clock ()
            // The round's batch: what the stopping rules allow (a label budget cuts it), at most |U|. Known
            // before training, so the trainer and the query see the same k.
            let k = min (Stopping.allowedQuery rules pool.LabelledCount k) pool.UnlabelledCount

            match learner.Train pool round k with
            | Error e -> Error(LearnerFailed(round, "train", e))
            | Ok(model, iterations) ->
                let outcome =
                    try
                        result {
                            let t1 = clock ()

                            let failed stage r =
                                r |> Result.mapError (fun e -> LearnerFailed(round, stage, e))

                            let! accuracy = learner.Evaluate model |> failed "evaluate"
                            let! validation = learner.Validate model |> failed "evaluate"
                            let! stopPredictions, uncertainty = learner.StopSet model |> failed "stop set"
                            let t2 = clock ()

                            // The previous completed round's predictions on the same stop set (a record from a
                            // run without one has none).
                            let previous =
                                progress.Records
                                |> List.tryLast
                                |> Option.map (fun r -> r.StopPredictions)
                                |> Option.filter (fun p -> p.Length = stopPredictions.Length && p.Length > 0)

                            let stopSignals = Stopping.signals previous stopPredictions uncertainty

                            let stopped =
                                Stopping.fired
                                    rules
                                    pool.LabelledCount
                                    ((progress.Records |> List.map (fun r -> r.StopSignals)) @ [ stopSignals ])

                            let! picked =
                                if round >= lastRound || pool.UnlabelledCount = 0 || stopped.IsSome || k = 0 then
                                    Ok [||]
                                else
                                    learner.Query model pool round k
                                    |> failed "query"
                                    |> Result.bind (fun picked ->
                                        checkQuery pool k picked |> Result.mapError (fun d -> InvalidQuery(round, d)))

                            let t3 = clock ()

                            let! signals =
                                if picked.Length = 0 then
                                    Ok []
                                else
                                    learner.Signals model pool round picked.Length |> failed "signals"

                            let record =
                                {
                                    Round = round
                                    Labelled = pool.LabelledCount
                                    TestAccuracy = accuracy
                                    ValidationAccuracy = validation
                                    TrainSeconds = t1 - t0
                                    QuerySeconds = t3 - t2
                                    EvalSeconds = t2 - t1
                                    TrainIterations = iterations
                                    Queried = picked
                                    Signals = signals
                                    StopPredictions = stopPredictions
                                    StopSignals = stopSignals
                                    Stopped = stopped
                                }

                            if picked.Length = 0 then
                                return
                                    { progress with
                                        Records = progress.Records @ [ record ]
                                    }
                            else
                                return
                                    { progress with
                                        Pending = Some { Record = record }
                                    }
                        }
                    with _ ->
                        learner.Release model
                        reraise ()

                match outcome with
                | Ok next -> Ok(next, model)
                | Error e ->
                    learner.Release model
                    Error e

    /// Adds labels outside a round (the initial set, or extra labels between rounds): refused, the progress
    /// unchanged, while a batch waits for labels or when the pool refuses an index or a label.
    let label (items: (int * int)[]) (progress: Progress) : Result<Progress, RoundError<'error>> =
        match progress.Pending with
        | Some p ->
            Error(
                OutOfTurn(
                    progress.Round,
                    $"a batch of {p.Indices.Length} proposed in round {progress.Round} is waiting for labels: accept it first"
                )
            )
        | None ->
            Pool.label progress.Round items progress.Pool
            |> Result.mapError (fun e -> LabelsRefused(progress.Round, e))
            |> Result.map (fun pool -> { progress with Pool = pool })

    /// `count` unlabelled indices drawn at random from the key (seed, round, "initial"): the initial batch.
    let drawInitial (seed: int64) (count: int) (progress: Progress) =
        Pool.draw (Rng.key seed progress.Round Rng.InitialDraw) count progress.Pool

    /// Round 0 of a benchmark over a pool whose labels are known (`hidden`, one per item): `initial` items drawn
    /// as `drawInitial` draws them, labelled with their hidden labels.
    let withHiddenInitial (seed: int64) (initial: int) (hidden: int[]) (classes: int) : Result<Progress, PoolError> =
        Pool.create hidden.Length classes
        |> Result.bind (fun empty ->
            let start =
                {
                    Pool = empty
                    Records = []
                    Pending = None
                }

            let drawn = drawInitial seed initial start

            Pool.label 0 (drawn |> Array.map (fun i -> i, hidden[i])) empty
            |> Result.map (fun pool -> { start with Pool = pool }))

    /// Labels the pending batch and completes its round: `labels` must give one label to every pending index
    /// and to nothing else (in any order). Refused, with the progress unchanged, otherwise.
    let accept (labels: (int * int)[]) (progress: Progress) : Result<Progress * RoundRecord, RoundError<'error>> =
        let round = progress.Round

        match progress.Pending with
        | None -> Error(OutOfTurn(round, "no batch is waiting for labels"))
        | Some pending ->
            let expected = Set.ofArray pending.Indices
            let given = labels |> Array.map fst

            match given |> Array.tryFind (fun i -> not (expected.Contains i)) with
            | Some i -> Error(LabelsRefused(round, MalformedLog("labels", $"index {i} is not in the pending batch")))
            | None when given.Length < expected.Count ->
                let missing = Set.difference expected (Set.ofArray given) |> Seq.head

                Error(
                    LabelsRefused(round, MalformedLog("labels", $"index {missing} of the pending batch has no label"))
                )
            | None ->
                Pool.label (round + 1) labels progress.Pool
                |> Result.mapError (fun e -> LabelsRefused(round, e))
                |> Result.map (fun pool ->
                    {
                        Pool = pool
                        Records = progress.Records @ [ pending.Record ]
                        Pending = None
                    },
                    pending.Record)
