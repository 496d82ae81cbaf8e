/// An interactive active-learning session, for callers that label themselves (a person, a file, a service, a
/// web page hours later): the same two round halves as the runner (`Round.propose`, `Round.accept`) over a
/// state that the session persists in the runner's format, with the networks of the last training beside it.
/// The C# facade is a thin translation of this module.
module Waal.Experiments.Session

open System
open System.IO
open System.Threading
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Strategies

/// A progress sink that stops the work between steps when the token is cancelled.
let cancellable (token: CancellationToken) (sink: ProgressSink) =
    { sink with
        Advance =
            fun n ->
                token.ThrowIfCancellationRequested()
                sink.Advance n
    }

/// A session: it owns the pool's (and test set's) tensors and the networks of the last training, and frees
/// them when disposed. Not thread-safe: one call at a time (the facade serialises them).
[<Sealed>]
type Session private (bench: Workbench.Workbench, progress: Progress, progressSink: ProgressSink) =
    let config = bench.Config
    let mutable state = progress
    let mutable model: Nets.Networks option = None
    let mutable disposed = false

    let replaceModel (next: Nets.Networks option) =
        model |> Option.iter (fun m -> (m :> IDisposable).Dispose())
        model <- next

    let checkLive () =
        if disposed then
            raise (ObjectDisposedException "Session")

    /// Opens a session over a pool (and optional test set) in a given state.
    static member internal Open(config: Configuration, poolData: Dataset, test: Dataset option, state: Progress, sink) =
        Workbench.ofData config poolData test
        |> Result.bind (Workbench.openOn sink)
        |> Result.map (fun bench -> new Session(bench, state, sink))

    /// The configuration it runs with.
    member _.Config = config
    /// The state: the pool, every completed round and the batch waiting for labels.
    member _.Progress = state
    /// The label state of the pool.
    member _.Pool = state.Pool
    /// The round the next proposal belongs to (the pending batch's while one waits).
    member _.Round = state.Round
    /// The batch waiting for labels.
    member _.Pending = state.Pending
    /// The networks of the last training.
    member _.Model = model
    /// True when test data was given.
    member _.HasTest = bench.HasTest

    /// Adds labels outside a round (the initial set, or extra labels between rounds); refused, the session
    /// unchanged, when a batch waits for labels or any index or label is invalid.
    member _.Label(items: (int * int)[]) =
        checkLive ()

        Round.label items state
        |> Result.mapError ExperimentError.ofRound
        |> Result.map (fun next -> state <- next)

    /// `count` unlabelled indices drawn at random from the key (seed, round, "initial"): an initial batch to label.
    member _.DrawInitial(count: int) =
        checkLive ()
        Round.drawInitial config.Spec.Seed count state

    /// The first half of a round: trains fresh networks on the labelled items, evaluates them (when test data
    /// was given) and queries `count` items, which then wait for labels. The previous networks are released;
    /// a cancelled or failed training leaves the state and the previous model as they were.
    member _.Propose(token: CancellationToken, count: int) =
        checkLive ()
        let clock = Diagnostics.Stopwatch.StartNew()

        Round.propose
            (bench.Learner(cancellable token progressSink))
            (fun () -> clock.Elapsed.TotalSeconds)
            config.Spec.Stopping.Rules
            count
            Int32.MaxValue
            state
        |> Result.mapError ExperimentError.ofRound
        |> Result.map (fun (next, nets) ->
            replaceModel (Some nets)
            state <- next
            next)

    /// The second half: labels for exactly the pending batch (one per index, in any order) complete the round.
    member _.Accept(labels: (int * int)[]) =
        checkLive ()

        Round.accept labels state
        |> Result.mapError ExperimentError.ofRound
        |> Result.map (fun (next, record) ->
            state <- next
            record)

    /// Class probabilities of pool items under the last trained networks (one row of `Classes` per index).
    member _.Probabilities(indices: int[]) =
        checkLive ()

        match model with
        | None -> Error(NotTrained "prediction")
        | Some nets ->
            Ok(
                Scoring.probabilitiesAs
                    "predict"
                    nets
                    bench.PoolTensors
                    indices
                    config.Settings.ScoreBatch
                    ProgressSink.none
            )

    /// `count` unlabelled pool items as `strategy` would query them from the last trained networks (the
    /// spec's batch mode), without proposing a round: the state is unchanged.
    member _.QueryWith(strategy: Strategy, count: int) =
        checkLive ()

        match model with
        | None -> Error(NotTrained $"{strategy.Name}'s query")
        | Some nets ->
            strategy.Query (bench.Context ProgressSink.none) nets state.Pool state.Round count
            |> Result.mapError (fun e -> RoundFailed(state.Round, "query", e))

    /// Test accuracy of the last trained networks.
    member _.Evaluate() =
        checkLive ()

        match model with
        | None -> Error(NotTrained "evaluation")
        | Some _ when not bench.HasTest -> Error NoTestData
        | Some nets -> Ok(bench.TestAccuracy(nets, progressSink))

    /// Saves the session into a folder in the runner's format: spec.json, progress.json (with the pending
    /// batch), labels.json and rounds.csv, and the last networks' weights; every file atomically.
    member _.Save(folder: string) =
        checkLive ()

        try
            let layout = { RunFolder.Layout.Folder = folder }
            let network = Some(Architecture.name (fst bench.Network))
            AtomicFile.writeText layout.Spec (SpecJson.toJsonResolved network (Runner.versions ()) config)
            RunFolder.saveProgress layout bench.Inputs.Naming bench.Inputs.Originals state
            model |> Option.iter (Checkpoint.save layout.Checkpoint)
            Ok()
        with
        | :? IOException as e -> Error(WriteFailed(folder, e.Message))
        | :? UnauthorizedAccessException as e -> Error(WriteFailed(folder, e.Message))

    /// Loads saved networks into this session (after `Open` from a saved folder).
    member internal _.LoadModel(folder: string) =
        let nets = bench.NewNetworks()

        match Checkpoint.load folder nets with
        | Ok() ->
            replaceModel (Some nets)
            Ok()
        | Error(file, why) ->
            (nets :> IDisposable).Dispose()
            Error(NotAnExperiment(file, why))

    interface IDisposable with
        member _.Dispose() =
            if not disposed then
                disposed <- true
                replaceModel None
                (bench :> IDisposable).Dispose()

/// Opens a session over a pool (and optional test set) with nothing labelled.
let create (config: Configuration) (poolData: Dataset) (test: Dataset option) (progress: ProgressSink) =
    Pool.create poolData.Count poolData.Classes
    |> Result.mapError (fun e -> ExperimentError.LabelsRefused(0, e))
    |> Result.bind (fun pool ->
        Session.Open(
            config,
            poolData,
            test,
            {
                Pool = pool
                Records = []
                Pending = None
            },
            progress
        ))

/// Reopens a saved session over the same pool (and optional test set): the state (the pending batch included)
/// is read back and checked, the networks of the last training are loaded.
let load (folder: string) (poolData: Dataset) (test: Dataset option) (progress: ProgressSink) =
    let layout = { RunFolder.Layout.Folder = folder }

    RunFolder.readSpec layout
    |> Result.mapError (fun detail -> NotAnExperiment(layout.Spec, detail))
    |> Result.bind (fun config ->
        RunFolder.readState layout config
        |> Result.mapError (fun detail -> NotAnExperiment(layout.Progress, detail))
        |> Result.bind (fun state ->
            if state.Pool.Size <> poolData.Count then
                Error(
                    NotAnExperiment(
                        layout.Progress,
                        $"the saved pool has {state.Pool.Size} items, the data given {poolData.Count}"
                    )
                )
            else
                Session.Open(config, poolData, test, state, progress)
                |> Result.bind (fun s ->
                    if Directory.Exists layout.Checkpoint then
                        match s.LoadModel layout.Checkpoint with
                        | Ok() -> Ok s
                        | Error e ->
                            (s :> IDisposable).Dispose()
                            Error e
                    else
                        Ok s)))
