/// The active-learning loop with its effects at the edge: load the data, fold `Round.step` over the pool, and
/// persist every completed round before the next one starts, so a run can be resumed from its folder.
module Waal.Experiments.Runner

open System
open System.Diagnostics
open System.IO
open TorchSharp
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Strategies

/// Why a run could not start or continue. Each case has a stable code (see `code`).
type RunError =
    /// Spec fields out of range.
    | SpecInvalid of SpecError list
    /// The strategy is not registered.
    | UnknownStrategy of name: string
    /// The data could not be read.
    | DataFailed of DataError
    /// The spec asks for more than the dataset holds (field, message).
    | DoesNotFit of field: string * message: string
    /// The output folder already holds an experiment.
    | OutputExists of folder: string
    /// A folder that is not (or no longer) a readable experiment.
    | NotAnExperiment of path: string * detail: string
    /// The requested device is not there.
    | DeviceFailed of detail: string
    /// A round failed (training diverged, scores not finite, ...).
    | RoundFailed of RoundError<LearnError>
    /// Writing results failed.
    | WriteFailed of path: string * detail: string

/// Codes and one-line messages.
module RunError =
    /// The stable code.
    let code =
        function
        | SpecInvalid _ -> "EXP001"
        | UnknownStrategy _ -> "EXP002"
        | DataFailed e -> DataError.code e
        | DoesNotFit _ -> "EXP003"
        | OutputExists _ -> "EXP004"
        | NotAnExperiment _ -> "EXP005"
        | DeviceFailed _ -> "EXP006"
        | RoundFailed _ -> "EXP007"
        | WriteFailed _ -> "EXP008"

    /// `error CODE: where: message`.
    let line (e: RunError) =
        let where, message =
            match e with
            | SpecInvalid errors ->
                let first = List.head errors

                let more =
                    if errors.Length > 1 then
                        $" (and {errors.Length - 1} more)"
                    else
                        ""

                $"--{first.Field}", first.Message + more
            | UnknownStrategy name ->
                "--strategy", $"""unknown strategy '{name}'; expected one of {String.Join(", ", Registry.names)}"""
            | DataFailed d -> DataError.file d, DataError.message d
            | DoesNotFit(field, message) -> $"--{field}", message
            | OutputExists folder ->
                folder,
                "already holds an experiment (spec.json); continue it with 'waal resume', or pass --force to start over"
            | NotAnExperiment(path, detail) -> path, detail
            | DeviceFailed detail -> "--device", detail
            | RoundFailed(LearnerFailed(round, stage, err)) -> $"round {round}", $"{stage}: {LearnError.message err}"
            | RoundFailed(InvalidQuery(round, detail)) -> $"round {round}", $"query: {detail}"
            | RoundFailed(LabelsRefused(round, err)) -> $"round {round}", $"labels: {Errors.poolMessage err}"
            | WriteFailed(path, detail) -> path, detail

        $"error {code e}: {where}: {message}"

/// What the caller can observe and control: progress of long work, and a hook after each persisted round.
type Hooks =
    {
        Progress: ProgressSink
        /// Called after a round is persisted (the CLI prints it; tests inject failures here).
        AfterRound: RoundRecord -> unit
        /// Lines of information (data loaded, folder, ...).
        Info: string -> unit
    }

/// No output, no hooks.
let quiet =
    {
        Progress = ProgressSink.none
        AfterRound = ignore
        Info = ignore
    }

/// The software versions written into spec.json.
let versions () =
    let version (t: Type) = t.Assembly.GetName().Version |> string

    [
        "waal", version typeof<RunError>
        "TorchSharp", version typeof<torch>
        "libtorch", "2.10.0"
        ".NET", Environment.Version.ToString()
    ]

/// Loads a dataset's training and test splits from its folder.
let loadSplits (dataset: string) (folder: string) : Result<Dataset * Dataset, DataError> =
    match dataset with
    | "fashion-mnist" -> Load.fashionMnist folder
    | "cifar10" ->
        Cifar10.readTrain folder
        |> Result.bind (fun tr -> Cifar10.readTest folder |> Result.map (fun te -> tr, te))
    | "svhn" ->
        SvhnMat.read (Path.Combine(folder, "train_32x32.mat"))
        |> Result.bind (fun tr ->
            SvhnMat.read (Path.Combine(folder, "test_32x32.mat"))
            |> Result.map (fun te -> tr, te))
    | other -> Error(Unsupported(folder, "dataset", $"unknown dataset '{other}'"))

let private catchIo (path: string) (f: unit -> 'a) =
    try
        Ok(f ())
    with
    | :? IOException as e -> Error(WriteFailed(path, e.Message))
    | :? UnauthorizedAccessException as e -> Error(WriteFailed(path, e.Message))

/// Saves a round's networks as checkpoint/round-NNN/ and then points checkpoint/latest at it, so the
/// checkpoint that `latest` names is always whole; older rounds are removed afterwards.
let private saveCheckpoint (layout: Results.Layout) (round: int) (nets: Nets.Networks) =
    let name = $"round-{round:D3}"
    let folder = Path.Combine(layout.Checkpoint, name)
    Checkpoint.save folder nets
    Results.writeTextAtomic (Path.Combine(layout.Checkpoint, "latest")) name

    for old in Directory.GetDirectories(layout.Checkpoint, "round-*") do
        if Path.GetFileName old <> name then
            Directory.Delete(old, true)

/// Runs the rounds that remain, persisting each; data and spec are already checked.
let private proceed
    (layout: Results.Layout)
    (spec: ExperimentSpec)
    (strategy: Strategy)
    (poolData: Dataset)
    (testData: Dataset)
    (hooks: Hooks)
    (start: Progress)
    =
    match Device.resolve spec.Device with
    | Error detail -> Error(DeviceFailed detail)
    | Ok device ->
        Device.configure spec.Threads


        use poolT = Tensors.ofNamed spec.Dataset device poolData
        use testT = Tensors.ofNamed spec.Dataset device testData
        let truth = testData.Labels

        let ctx =
            {
                Spec = spec
                Device = device
                Pool = poolT
                Progress = hooks.Progress
            }

        let learner: Learner<Nets.Networks, LearnError> =
            {
                Train =
                    fun pool round ->
                        strategy.Train ctx pool round
                        |> Result.map (fun (nets, iterations) ->
                            saveCheckpoint layout round nets
                            nets, iterations)
                Evaluate =
                    fun nets ->
                        let predicted = Scoring.predict nets testT spec.ScoreBatch hooks.Progress
                        Ok(Metrics.accuracy predicted truth)
                Query = strategy.Query ctx
                Release = fun nets -> (nets :> IDisposable).Dispose()
            }

        // The oracle: the dataset's hidden labels of the pool items.
        let oracle (indices: int[]) =
            indices |> Array.map (fun i -> poolData.Labels[i])

        let clock = Stopwatch.StartNew()

        let saved progress record =
            Results.saveProgress layout progress
            hooks.AfterRound record
            Ok()

        let _, result =
            Round.run learner oracle (fun () -> clock.Elapsed.TotalSeconds) spec.Query spec.Rounds saved start

        result |> Result.mapError RoundFailed

/// Loads the data a spec names and checks the spec fits it (pool size, initial labels).
let private prepare (spec: ExperimentSpec) =
    match Spec.validate spec with
    | Error errors -> Error(SpecInvalid errors)
    | Ok spec ->
        match Registry.tryFind spec.Strategy with
        | None -> Error(UnknownStrategy spec.Strategy)
        | Some strategy ->
            match loadSplits spec.Dataset spec.DataDir with
            | Error e -> Error(DataFailed e)
            | Ok(train, test) ->
                match spec.Pool with
                | Some p when p > train.Count ->
                    Error(
                        DoesNotFit(
                            "pool",
                            $"the pool of {p} is larger than the {train.Count} training images of {spec.Dataset}"
                        )
                    )
                | _ ->
                    let poolData = Dataset.take (spec.Pool |> Option.defaultValue train.Count) train

                    if spec.Initial > poolData.Count then
                        Error(
                            DoesNotFit(
                                "initial",
                                $"{spec.Initial} initial labels do not fit in a pool of {poolData.Count}"
                            )
                        )
                    else
                        Ok(spec, strategy, poolData, test)

/// Starts an experiment in `folder`: writes spec.json, draws and labels the initial set (round 0's labels,
/// from the key (seed, 0, "initial")), and runs every round. A folder that already holds an experiment is
/// refused unless `force`, which removes that experiment's files (and nothing else) first.
let run (spec: ExperimentSpec) (folder: string) (force: bool) (hooks: Hooks) : Result<unit, RunError> =
    let layout = { Results.Layout.Folder = folder }

    if File.Exists folder then
        Error(NotAnExperiment(folder, "is a file; expected a folder for the results"))
    elif File.Exists layout.Spec && not force then
        Error(OutputExists folder)
    else
        prepare spec
        |> Result.bind (fun (spec, strategy, poolData, test) ->
            catchIo folder (fun () ->
                for f in [ layout.Spec; layout.Rounds; layout.Labels; layout.Progress ] do
                    if File.Exists f then
                        File.Delete f

                if Directory.Exists layout.Checkpoint then
                    Directory.Delete(layout.Checkpoint, true)

                Results.removeStaleTemporaries folder

                Results.writeTextAtomic layout.Spec (Spec.toJson (versions ()) spec))
            |> Result.bind (fun () ->
                hooks.Info $"pool: {poolData.Count} images, test: {test.Count} images, {poolData.Classes} classes"

                let empty =
                    Pool.create poolData.Count poolData.Classes
                    |> Result.defaultWith (failwithf "%A")

                let initial = Pool.draw (Rng.key spec.Seed 0 "initial") spec.Initial empty

                match Pool.label 0 (initial |> Array.map (fun i -> i, poolData.Labels[i])) empty with
                | Error e -> Error(RoundFailed(LabelsRefused(0, e)))
                | Ok pool ->
                    let start = { Pool = pool; Records = [] }

                    catchIo folder (fun () -> Results.saveProgress layout start)
                    |> Result.bind (fun () -> proceed layout spec strategy poolData test hooks start)))

/// Continues the experiment in `folder` from its last completed round. With the same threads on the CPU, the
/// result equals an uninterrupted run's: every round's randomness is keyed by (seed, round, purpose).
let resume (folder: string) (hooks: Hooks) : Result<unit, RunError> =
    let layout = { Results.Layout.Folder = folder }

    if not (Directory.Exists folder) then
        Error(NotAnExperiment(folder, "no such folder"))
    elif not (File.Exists layout.Spec) then
        Error(NotAnExperiment(layout.Spec, "missing: this folder holds no experiment to resume"))
    elif not (File.Exists layout.Progress) then
        Error(
            NotAnExperiment(
                layout.Progress,
                "missing: the experiment never completed its set-up; start it again with 'waal run --force'"
            )
        )
    else
        match Spec.ofJson (File.ReadAllText layout.Spec) with
        | Error errors ->
            let e = List.head errors
            Error(NotAnExperiment(layout.Spec, $"{e.Field}: {e.Message}"))
        | Ok spec ->
            prepare spec
            |> Result.bind (fun (spec, strategy, poolData, test) ->
                match Results.readProgress layout.Progress with
                | Error detail -> Error(NotAnExperiment(layout.Progress, detail))
                | Ok progress when progress.Pool.Size <> poolData.Count ->
                    Error(
                        NotAnExperiment(
                            layout.Progress,
                            $"its pool has {progress.Pool.Size} items, the spec's data {poolData.Count}"
                        )
                    )
                | Ok progress ->
                    hooks.Info $"resuming after {progress.Records.Length} completed round(s) of {spec.Rounds + 1}"
                    Results.removeStaleTemporaries folder

                    catchIo folder (fun () -> Results.saveProgress layout progress)
                    |> Result.bind (fun () -> proceed layout spec strategy poolData test hooks progress))
