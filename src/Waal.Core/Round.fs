namespace Waal.Core

/// What one round of an experiment produced.
type RoundRecord =
    {
        Round: int
        /// Labels the model of this round was trained with.
        Labelled: int
        TestAccuracy: float
        TrainSeconds: float
        QuerySeconds: float
        EvalSeconds: float
        /// Optimiser steps taken in training (the training budget).
        TrainIterations: int64
        /// The indices queried at the end of the round (empty in the last round).
        Queried: int[]
    }

/// An experiment's progress: the pool and every completed round, oldest first.
type Progress =
    {
        Pool: Pool
        Records: RoundRecord list
    }

/// The effects a round needs, passed in as values: nothing in the loop reads a global.
type Learner<'model, 'error> =
    {
        /// Trains a fresh model on the labelled part of the pool in the given round; returns it and its step count.
        Train: Pool -> int -> Result<'model * int64, 'error>
        /// Test accuracy of a model.
        Evaluate: 'model -> Result<float, 'error>
        /// Up to k unlabelled indices to label next, chosen in the given round.
        Query: 'model -> Pool -> int -> int -> Result<int[], 'error>
        /// Frees what the model holds (native memory), once the round is done with it.
        Release: 'model -> unit
    }

/// Why a round failed; the round number is always given.
type RoundError<'error> =
    /// The learner failed in a stage ("train", "evaluate", "query").
    | LearnerFailed of round: int * stage: string * error: 'error
    /// A query that broke the contract (duplicates, labelled or unknown indices, wrong count).
    | InvalidQuery of round: int * detail: string
    /// The oracle's labels were refused by the pool.
    | LabelsRefused of round: int * error: PoolError

/// The round as a pure transition over `Progress`, given the learner, the oracle and the clock as values.
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

    /// Runs the next round: train on the labelled set, evaluate, and (unless it is the last round) query k
    /// items, label them through the oracle and add them to the pool. The clock returns seconds.
    let step
        (learner: Learner<'model, 'error>)
        (oracle: int[] -> int[])
        (clock: unit -> float)
        (k: int)
        (lastRound: int)
        (progress: Progress)
        : Result<Progress * RoundRecord, RoundError<'error>> =
        let round = progress.Records.Length
        let pool = progress.Pool
        let t0 = clock ()

        match learner.Train pool round with
        | Error e -> Error(LearnerFailed(round, "train", e))
        | Ok(model, iterations) ->
            try
                let t1 = clock ()

                match learner.Evaluate model with
                | Error e -> Error(LearnerFailed(round, "evaluate", e))
                | Ok accuracy ->
                    let t2 = clock ()

                    let queried =
                        if round >= lastRound || pool.UnlabelledCount = 0 then
                            Ok [||]
                        else
                            learner.Query model pool round k
                            |> Result.mapError (fun e -> LearnerFailed(round, "query", e))
                            |> Result.bind (fun picked ->
                                checkQuery pool k picked |> Result.mapError (fun d -> InvalidQuery(round, d)))

                    let t3 = clock ()

                    queried
                    |> Result.bind (fun picked ->
                        let next =
                            if picked.Length = 0 then
                                Ok pool
                            else
                                Pool.label (round + 1) (Array.zip picked (oracle picked)) pool
                                |> Result.mapError (fun e -> LabelsRefused(round, e))

                        next
                        |> Result.map (fun nextPool ->
                            let record =
                                {
                                    Round = round
                                    Labelled = pool.LabelledCount
                                    TestAccuracy = accuracy
                                    TrainSeconds = t1 - t0
                                    QuerySeconds = t3 - t2
                                    EvalSeconds = t2 - t1
                                    TrainIterations = iterations
                                    Queried = picked
                                }

                            {
                                Pool = nextPool
                                Records = progress.Records @ [ record ]
                            },
                            record))
            finally
                learner.Release model

    /// Runs rounds until rounds 0 .. lastRound are complete, calling `saved` after each one (to persist it);
    /// stops at the first error (of a round or of `saved`), returning it with the progress made so far.
    let run
        (learner: Learner<'model, 'error>)
        (oracle: int[] -> int[])
        (clock: unit -> float)
        (k: int)
        (lastRound: int)
        (saved: Progress -> RoundRecord -> Result<unit, RoundError<'error>>)
        (start: Progress)
        : Progress * Result<unit, RoundError<'error>> =
        let rec go progress =
            if progress.Records.Length > lastRound then
                progress, Ok()
            else
                match
                    step learner oracle clock k lastRound progress
                    |> Result.bind (fun (p, r) -> saved p r |> Result.map (fun () -> p))
                with
                | Ok next -> go next
                | Error e -> progress, Error e

        go start
