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

/// Why a session call failed.
type SessionError =
    | SpecProblem of SpecError list
    | NoSuchStrategy of string
    | NoDevice of string
    | LabelsRefused of PoolError
    | LearnFailed of LearnError
    | NotTrained of operation: string
    | NoTestData
    | SessionFile of path: string * detail: string
    /// A call that does not fit the round's state (labels with no pending batch, a proposal while one waits).
    | OutOfTurn of detail: string

/// One line per error.
let message (e: SessionError) =
    match e with
    | SpecProblem errors -> errors |> List.map (fun e -> $"{e.Field}: {e.Message}") |> String.concat "; "
    | NoSuchStrategy name ->
        let known = String.Join(", ", Registry.names)
        $"unknown strategy '{name}'; expected one of {known}"
    | NoDevice detail -> detail
    | LabelsRefused e -> Errors.poolMessage e
    | LearnFailed e -> LearnError.message e
    | NotTrained op -> $"{op} needs a trained model: propose a batch first"
    | NoTestData -> "no test data was given, so there is nothing to evaluate on"
    | SessionFile(path, detail) -> $"{path}: {detail}"
    | OutOfTurn detail -> detail

/// A progress sink that stops the work between steps when the token is cancelled.
let cancellable (token: CancellationToken) (sink: ProgressSink) =
    { sink with
        Advance =
            fun n ->
                token.ThrowIfCancellationRequested()
                sink.Advance n
    }

let private roundError (e: RoundError<LearnError>) =
    match e with
    | LearnerFailed(_, _, err) -> LearnFailed err
    | InvalidQuery(round, detail) -> LearnFailed(BadInput $"round {round}: query: {detail}")
    | RoundError.LabelsRefused(_, err) -> LabelsRefused err
    | RoundError.OutOfTurn(_, detail) -> OutOfTurn detail

/// A session: it owns the pool's (and test set's) tensors and the networks of the last training, and frees
/// them when disposed. Not thread-safe: one call at a time (the facade serialises them).
[<Sealed>]
type Session
    private
    (
        config: Configuration,
        entry: Datasets.Entry,
        strategy: Strategy,
        device: TorchSharp.torch.Device,
        poolTensors: Tensors.ImageTensors,
        test: (Dataset * Tensors.ImageTensors) option,
        progress: Progress,
        progressSink: ProgressSink,
        naming: Naming option
    ) =
    let mutable state = progress
    let mutable model: Nets.Networks option = None
    let mutable disposed = false

    let context (token: CancellationToken) =
        {
            Spec = config.Spec
            Settings = config.Settings
            Device = device
            Pool = poolTensors
            Progress = cancellable token progressSink
        }

    let stopSet =
        Stopping.stopSet config.Spec.Seed config.Spec.Stopping.StopSet poolTensors.Count

    let learner (token: CancellationToken) : Learner<Nets.Networks, LearnError> =
        let ctx = context token

        {
            Train = strategy.Train ctx
            Evaluate =
                fun nets ->
                    match test with
                    | None -> Ok nan
                    | Some(data, tensors) ->
                        let predicted = Scoring.predict nets tensors config.Settings.ScoreBatch ctx.Progress
                        Ok(Metrics.accuracy predicted data.Labels)
            // A session is labelled by a person: no validation split.
            Validate = fun _ -> Ok nan
            Query = strategy.Query ctx
            Signals = strategy.Signals ctx
            StopSet =
                fun nets ->
                    Scoring.probabilitiesAs "stop set" nets poolTensors stopSet config.Settings.ScoreBatch ctx.Progress
                    |> Stopping.summarise poolTensors.Classes
                    |> Ok
            Release = fun nets -> (nets :> IDisposable).Dispose()
        }

    let replaceModel (next: Nets.Networks option) =
        model |> Option.iter (fun m -> (m :> IDisposable).Dispose())
        model <- next

    let checkLive () =
        if disposed then
            raise (ObjectDisposedException "Session")

    /// Opens a session over a pool (and optional test set) in a given state.
    static member internal Open(config: Configuration, poolData: Dataset, test: Dataset option, state: Progress, sink) =
        match Options.validate config with
        | Error errors -> Error(SpecProblem errors)
        | Ok config ->
            match Registry.tryFind config.Spec.Strategy, Datasets.find config.Spec.Dataset with
            | None, _ -> Error(NoSuchStrategy config.Spec.Strategy)
            | _, Error m -> Error(SpecProblem [ { Field = "dataset"; Message = m } ])
            | Some strategy, Ok entry ->
                match Device.resolve config.Settings.Device with
                | Error d -> Error(NoDevice d)
                | Ok device ->
                    Device.configure config.Settings.Threads
                    let norm = entry.Normalisation poolData
                    let poolT = Tensors.ofDataset device norm poolData

                    let testT =
                        try
                            test |> Option.map (fun t -> t, Tensors.ofDataset device norm t)
                        with _ ->
                            (poolT :> IDisposable).Dispose()
                            reraise ()

                    Ok(
                        new Session(
                            config,
                            entry,
                            strategy,
                            device,
                            poolT,
                            testT,
                            state,
                            sink,
                            Some
                                {
                                    ClassNames = poolData.ClassNames
                                    Files = poolData.Files
                                }
                        )
                    )

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
    member _.HasTest = test.IsSome

    /// Adds labels outside a round (the initial set, or extra labels between rounds); refused, the session
    /// unchanged, when a batch waits for labels or any index or label is invalid.
    member _.Label(items: (int * int)[]) =
        checkLive ()

        match state.Pending with
        | Some p ->
            Error(
                OutOfTurn
                    $"a batch of {p.Indices.Length} proposed in round {state.Round} is waiting for labels: accept it first"
            )
        | None ->
            Pool.label state.Round items state.Pool
            |> Result.mapError LabelsRefused
            |> Result.map (fun pool -> state <- { state with Pool = pool })

    /// `count` unlabelled indices drawn at random from the key (seed, round, "initial"): an initial batch to label.
    member _.DrawInitial(count: int) =
        checkLive ()
        Pool.draw (Rng.key config.Spec.Seed state.Round Rng.InitialDraw) count state.Pool

    /// The first half of a round: trains fresh networks on the labelled items, evaluates them (when test data
    /// was given) and queries `count` items, which then wait for labels. The previous networks are released;
    /// a cancelled or failed training leaves the state and the previous model as they were.
    member _.Propose(token: CancellationToken, count: int) =
        checkLive ()
        let clock = Diagnostics.Stopwatch.StartNew()

        Round.propose
            (learner token)
            (fun () -> clock.Elapsed.TotalSeconds)
            config.Spec.Stopping.Rules
            count
            Int32.MaxValue
            state
        |> Result.mapError roundError
        |> Result.map (fun (next, nets) ->
            replaceModel (Some nets)
            state <- next
            next)

    /// The second half: labels for exactly the pending batch (one per index, in any order) complete the round.
    member _.Accept(labels: (int * int)[]) =
        checkLive ()

        Round.accept labels state
        |> Result.mapError roundError
        |> Result.map (fun (next, record) ->
            state <- next
            record)

    /// Class probabilities of pool items under the last trained networks (one row of `Classes` per index).
    member _.Probabilities(indices: int[]) =
        checkLive ()

        match model with
        | None -> Error(NotTrained "prediction")
        | Some nets ->
            Ok(Scoring.probabilitiesAs "predict" nets poolTensors indices config.Settings.ScoreBatch ProgressSink.none)

    /// Test accuracy of the last trained networks.
    member _.Evaluate() =
        checkLive ()

        match model, test with
        | None, _ -> Error(NotTrained "evaluation")
        | _, None -> Error NoTestData
        | Some nets, Some(data, tensors) ->
            let predicted = Scoring.predict nets tensors config.Settings.ScoreBatch progressSink
            Ok(Metrics.accuracy predicted data.Labels)

    /// Saves the session into a folder in the runner's format: spec.json, progress.json (with the pending
    /// batch), labels.json and rounds.csv, and the last networks' weights; every file atomically.
    member _.Save(folder: string) =
        checkLive ()

        try
            let layout = { Results.Layout.Folder = folder }
            Results.writeTextAtomic layout.Spec (SpecJson.toJson (Runner.versions ()) config)
            Results.saveProgress layout naming state.Pool.Size state
            model |> Option.iter (Checkpoint.save layout.Checkpoint)
            Ok()
        with
        | :? IOException as e -> Error(SessionFile(folder, e.Message))
        | :? UnauthorizedAccessException as e -> Error(SessionFile(folder, e.Message))

    /// Loads saved networks into this session (after `Open` from a saved folder).
    member internal _.LoadModel(folder: string) =
        let d = poolTensors

        let nets =
            Nets.createNamed
                config.Spec.Network
                device
                d.Channels
                d.Height
                d.Width
                d.Classes
                (Training.criticOutput config.Spec.Method)

        match Checkpoint.load folder nets with
        | Ok() ->
            replaceModel (Some nets)
            Ok()
        | Error(file, why) ->
            (nets :> IDisposable).Dispose()
            Error(SessionFile(file, why))

    interface IDisposable with
        member _.Dispose() =
            if not disposed then
                disposed <- true
                replaceModel None
                (poolTensors :> IDisposable).Dispose()
                test |> Option.iter (fun (_, t) -> (t :> IDisposable).Dispose())

/// Opens a session over a pool (and optional test set) with nothing labelled.
let create (config: Configuration) (poolData: Dataset) (test: Dataset option) (progress: ProgressSink) =
    Pool.create poolData.Count poolData.Classes
    |> Result.mapError LabelsRefused
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
    let layout = { Results.Layout.Folder = folder }

    Datasets.readSpecFile layout.Spec
    |> Result.mapError (fun e -> SessionFile(layout.Spec, message (SpecProblem e)))
    |> Result.bind (fun config ->
        if not (File.Exists layout.Progress) then
            Error(SessionFile(layout.Progress, "missing"))
        else
            Results.readProgress layout.Progress
            |> Result.bind (Results.checkStopSet config.Spec.Stopping.StopSet layout.Progress)
            |> Result.mapError (fun detail -> SessionFile(layout.Progress, detail))
            |> Result.bind (fun state ->
                if state.Pool.Size <> poolData.Count then
                    Error(
                        SessionFile(
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
