/// An interactive active-learning session, for callers that label themselves (a person, a file, a service):
/// the pool state moves by the core's pure transitions, and the session holds the networks of the last
/// training beside it. The C# facade is a thin translation of this module.
module Waal.Experiments.Session

open System
open System.IO
open System.Threading
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Strategies

/// What a session works on and with. `Test` (with its hidden labels) is optional: without it, no evaluation.
type Session =
    {
        Spec: ExperimentSpec
        Strategy: Strategy
        Context: Context
        PoolData: Dataset
        Test: (Dataset * Tensors.DataTensors) option
        Pool: Pool
        /// Completed trainings (the round the next training belongs to).
        Round: int
        Model: Nets.Networks option
    }

    interface IDisposable with
        member s.Dispose() =
            s.Model |> Option.iter (fun m -> (m :> IDisposable).Dispose())
            (s.Context.Pool :> IDisposable).Dispose()
            s.Test |> Option.iter (fun (_, t) -> (t :> IDisposable).Dispose())

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
    | NotTrained op -> $"{op} needs a trained model: train first"
    | NoTestData -> "no test data was given, so there is nothing to evaluate on"
    | SessionFile(path, detail) -> $"{path}: {detail}"

/// A progress sink that stops the work between steps when the token is cancelled.
let cancellable (token: CancellationToken) (sink: ProgressSink) =
    { sink with
        Advance =
            fun n ->
                token.ThrowIfCancellationRequested()
                sink.Advance n
    }

/// Opens a session over a pool (and optional test set) with an empty label state.
let create (spec: ExperimentSpec) (poolData: Dataset) (test: Dataset option) (progress: ProgressSink) =
    match Spec.validate spec, Registry.tryFind spec.Strategy with
    | Error errors, _ -> Error(SpecProblem errors)
    | _, None -> Error(NoSuchStrategy spec.Strategy)
    | Ok spec, Some strategy ->
        match Device.resolve spec.Device with
        | Error d -> Error(NoDevice d)
        | Ok device ->
            Device.configure spec.Threads


            let tensors = Tensors.ofNamed spec.Dataset device poolData

            Pool.create poolData.Count poolData.Classes
            |> Result.mapError LabelsRefused
            |> Result.map (fun pool ->
                {
                    Spec = spec
                    Strategy = strategy
                    Context =
                        {
                            Spec = spec
                            Device = device
                            Pool = tensors
                            Progress = progress
                        }
                    PoolData = poolData
                    Test = test |> Option.map (fun t -> t, Tensors.ofNamed spec.Dataset device t)
                    Pool = pool
                    Round = 0
                    Model = None
                })

/// `count` unlabelled indices drawn at random from the key (seed, round, "initial"): an initial batch to label.
let drawInitial (count: int) (s: Session) =
    Pool.draw (Rng.key s.Spec.Seed s.Round "initial") count s.Pool

/// Adds labels; refused (the session unchanged) if any index or label is invalid.
let label (items: (int * int)[]) (s: Session) =
    Pool.label s.Round items s.Pool
    |> Result.mapError LabelsRefused
    |> Result.map (fun pool -> { s with Pool = pool })

/// Trains fresh networks with the strategy's trainer on the labelled items; the previous ones are released.
/// Returns the session one round further and the number of training steps.
let train (token: CancellationToken) (s: Session) =
    let ctx =
        { s.Context with
            Progress = cancellable token s.Context.Progress
        }

    s.Strategy.Train ctx s.Pool s.Round
    |> Result.mapError LearnFailed
    |> Result.map (fun (nets, steps) ->
        s.Model |> Option.iter (fun m -> (m :> IDisposable).Dispose())

        { s with
            Model = Some nets
            Round = s.Round + 1
        },
        steps)

/// The strategy's next `count` unlabelled indices, from the last trained networks.
let query (token: CancellationToken) (count: int) (s: Session) =
    match s.Model with
    | None -> Error(NotTrained "a query")
    | Some nets ->
        let ctx =
            { s.Context with
                Progress = cancellable token s.Context.Progress
            }

        s.Strategy.Query ctx nets s.Pool (s.Round - 1) count
        |> Result.mapError LearnFailed

/// Test accuracy of the last trained networks.
let evaluate (s: Session) =
    match s.Model, s.Test with
    | None, _ -> Error(NotTrained "evaluation")
    | _, None -> Error NoTestData
    | Some nets, Some(test, tensors) ->
        let predicted = Scoring.predict nets tensors s.Spec.ScoreBatch s.Context.Progress
        Ok(Metrics.accuracy predicted test.Labels)

/// Saves the session into a folder: spec.json, labels.json (the label log), session.json (the round), and the
/// weights of the last trained networks; every file atomically.
let save (folder: string) (s: Session) =
    try
        let layout = { Results.Layout.Folder = folder }
        Results.writeTextAtomic layout.Spec (Spec.toJson (Runner.versions ()) s.Spec)
        Results.writeAtomic layout.Labels (LabelLogJson.toBytes (Pool.log s.Pool))
        Results.writeTextAtomic (Path.Combine(folder, "session.json")) $"{{\"round\": {s.Round}}}"
        s.Model |> Option.iter (Checkpoint.save layout.Checkpoint)
        Ok()
    with
    | :? IOException as e -> Error(SessionFile(folder, e.Message))
    | :? UnauthorizedAccessException as e -> Error(SessionFile(folder, e.Message))

/// Reopens a saved session over the same pool (and optional test set): the label log is replayed, the
/// networks of the last training are loaded.
let load (folder: string) (poolData: Dataset) (test: Dataset option) (progress: ProgressSink) =
    let layout = { Results.Layout.Folder = folder }

    let read (path: string) =
        if File.Exists path then
            Ok(File.ReadAllText path)
        else
            Error(SessionFile(path, "missing"))

    read layout.Spec
    |> Result.bind (fun text ->
        Spec.ofJson text
        |> Result.mapError (fun e -> SessionFile(layout.Spec, message (SpecProblem e))))
    |> Result.bind (fun spec ->
        read layout.Labels
        |> Result.bind (fun text ->
            LabelLogJson.ofString text
            |> Result.bind Pool.ofLog
            |> Result.mapError (fun e -> SessionFile(layout.Labels, Errors.poolMessage e)))
        |> Result.bind (fun pool ->
            if pool.Size <> poolData.Count then
                Error(
                    SessionFile(
                        layout.Labels,
                        $"the saved pool has {pool.Size} items, the data given {poolData.Count}"
                    )
                )
            else
                read (Path.Combine(folder, "session.json"))
                |> Result.bind (fun text ->
                    try
                        use doc = Text.Json.JsonDocument.Parse text
                        Ok(doc.RootElement.GetProperty("round").GetInt32())
                    with e ->
                        Error(SessionFile(Path.Combine(folder, "session.json"), e.Message)))
                |> Result.bind (fun round ->
                    create spec poolData test progress
                    |> Result.map (fun s ->
                        let model =
                            if Directory.Exists layout.Checkpoint then
                                let d = poolData

                                let nets =
                                    Nets.create
                                        s.Context.Device
                                        d.Channels
                                        d.Height
                                        d.Width
                                        d.Classes
                                        (Training.criticOutput spec.Method)

                                Checkpoint.load layout.Checkpoint nets
                                Some nets
                            else
                                None

                        { s with
                            Pool = pool
                            Round = round
                            Model = model
                        }))))
