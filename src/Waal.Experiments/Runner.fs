/// The active-learning loop with its effects at the edge: load the data, alternate `Round.propose` and
/// `Round.accept` (the dataset's hidden labels are the oracle), and persist the state after each half, so a run
/// can be resumed from its folder, a pending batch included. Persistence happens here and only here.
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
    /// Another process is writing the folder.
    | FolderBusy of folder: string * detail: string

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
        | FolderBusy _ -> "EXP009"

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
            | RoundFailed(OutOfTurn(round, detail)) -> $"round {round}", detail
            | WriteFailed(path, detail) -> path, detail
            | FolderBusy(folder, detail) -> folder, detail

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

/// What a checked configuration runs on.
type private Prepared =
    {
        Config: Configuration
        Entry: Datasets.Entry
        Strategy: Strategy
        PoolData: Dataset
        TestData: Dataset
        /// The training images after the pool (--validation); empty without one.
        ValidationData: Dataset
        Skipped: DataError list
        /// The pool's normalisation (computed once: a folder's is a pass over every pixel).
        Normalisation: Normalisation
    }

/// Where a configuration's dataset is and how a folder's files become images.
let sourceOf (config: Configuration) : Datasets.Source =
    {
        DataDir = config.Settings.DataDir
        TestDir = config.Settings.TestDir
        Images = config.Spec.Images
    }

/// The image options a dataset stored in files cannot honour (empty for folder datasets).
let private folderOnly (entry: Datasets.Entry) (config: Configuration) : SpecError list =
    if entry.IsFolder then
        []
    else
        let given = Options.defaults entry.Profile config.Spec.Strategy config.Spec.Preset

        [
            for name in [ "image-size"; "channels"; "skip-bad-images"; "holdout"; "test-dir" ] do
                let v = Options.get name config

                if v <> Options.get name given then
                    {
                        Field = name
                        Message =
                            $"applies to folder datasets only; {config.Spec.Dataset} has its own test split and image shape (found '{v}')"
                    }
        ]

/// What the pool's indices and labels stand for.
let private namingOf (d: Dataset) : Naming option =
    Some
        {
            ClassNames = d.ClassNames
            Files = d.Files
        }

/// dataset.json: what the run's data is (class names, image shape, the normalisation, the pool's and the test
/// split's files, what was skipped), for people, for `waal export` and for moving a run.
let private datasetJson (p: Prepared) =
    Results.datasetJson
        p.Config.Spec.Dataset
        (Path.GetFullPath p.Config.Settings.DataDir)
        p.PoolData
        p.TestData
        p.Normalisation
        (p.Skipped |> List.map (fun e -> DataError.file e, DataError.line e))

/// Runs the rounds that remain, persisting the state after every half-round; data and spec are already checked.
let private proceed (layout: Results.Layout) (p: Prepared) (hooks: Hooks) (start: Progress) =
    let spec = p.Config.Spec
    let settings = p.Config.Settings

    match Device.resolve settings.Device with
    | Error detail -> Error(DeviceFailed detail)
    | Ok device ->
        Device.configure settings.Threads

        use poolT = Tensors.ofDataset device p.Normalisation p.PoolData
        use testT = Tensors.ofDataset device p.Normalisation p.TestData
        let truth = p.TestData.Labels

        let validationT =
            if p.ValidationData.Count > 0 then
                Some(Tensors.ofDataset device p.Normalisation p.ValidationData)
            else
                None

        use _validation =
            { new IDisposable with
                member _.Dispose() =
                    validationT |> Option.iter (fun t -> (t :> IDisposable).Dispose())
            }

        let ctx =
            {
                Spec = spec
                Settings = settings
                Device = device
                Pool = poolT
                Progress = hooks.Progress
            }

        let stopSet = Stopping.stopSet spec.Seed spec.Stopping.StopSet p.PoolData.Count

        let learner: Learner<Nets.Networks, LearnError> =
            {
                Train = p.Strategy.Train ctx
                Evaluate =
                    fun nets ->
                        let predicted = Scoring.predict nets testT settings.ScoreBatch hooks.Progress
                        Ok(Metrics.accuracy predicted truth)
                Validate =
                    fun nets ->
                        match validationT with
                        | None -> Ok Double.NaN
                        | Some v ->
                            let predicted =
                                Scoring.predictAs "validation" nets v settings.ScoreBatch hooks.Progress

                            Ok(Metrics.accuracy predicted p.ValidationData.Labels)
                Query = p.Strategy.Query ctx
                Signals = p.Strategy.Signals ctx
                StopSet =
                    fun nets ->
                        Scoring.probabilitiesAs "stop set" nets poolT stopSet settings.ScoreBatch hooks.Progress
                        |> Stopping.summarise poolT.Classes
                        |> Ok
                Release = fun nets -> (nets :> IDisposable).Dispose()
            }

        // The oracle: the dataset's hidden labels of the pool items.
        let oracle (indices: int[]) =
            indices |> Array.map (fun i -> i, p.PoolData.Labels[i])

        let clock = Stopwatch.StartNew()
        let seconds () = clock.Elapsed.TotalSeconds

        let save progress =
            catchIo layout.Progress (fun () ->
                Results.saveProgress layout (namingOf p.PoolData) (p.PoolData.Count / p.Config.Spec.Repeat) progress)

        let rec loop (progress: Progress) =
            if Round.isFinished spec.Rounds progress then
                Ok()
            else
                match progress.Pending with
                | Some pending ->
                    Round.accept (oracle pending.Indices) progress
                    |> Result.mapError RoundFailed
                    |> Result.bind (fun (next, record) ->
                        save next
                        |> Result.bind (fun () ->
                            hooks.AfterRound record
                            loop next))
                | None ->
                    Round.propose learner seconds spec.Stopping.Rules spec.Query spec.Rounds progress
                    |> Result.mapError RoundFailed
                    |> Result.bind (fun (next, nets) ->
                        let saved =
                            try
                                catchIo layout.Checkpoint (fun () -> saveCheckpoint layout progress.Round nets)
                            finally
                                learner.Release nets

                        saved
                        |> Result.bind (fun () -> save next)
                        |> Result.bind (fun () ->
                            if next.Pending.IsNone then
                                hooks.AfterRound(List.last next.Records)

                            loop next))

        loop start

/// Loads the data a configuration names and checks the spec fits it (pool size, initial labels).
let private prepare (config: Configuration) =
    match Options.validate config with
    | Error errors -> Error(SpecInvalid errors)
    | Ok config ->
        let spec = config.Spec

        match Registry.tryFind spec.Strategy, Datasets.find spec.Dataset with
        | None, _ -> Error(UnknownStrategy spec.Strategy)
        | _, Error message -> Error(SpecInvalid [ { Field = "dataset"; Message = message } ])
        | Some _, Ok entry when not (List.isEmpty (folderOnly entry config)) ->
            Error(SpecInvalid(folderOnly entry config))
        | Some strategy, Ok entry ->
            match entry.Load(sourceOf config) with
            | Error e -> Error(DataFailed e)
            | Ok {
                     Train = train
                     Test = test
                     Skipped = skipped
                 } ->
                match Nets.resolve spec.Network train.Channels train.Height train.Width, spec.Pool with
                | Error message, _ -> Error(SpecInvalid [ { Field = "network"; Message = message } ])
                | Ok _, Some p when p > train.Count ->
                    Error(
                        DoesNotFit(
                            "pool",
                            $"the pool of {p} is larger than the {train.Count} training images of {spec.Dataset}"
                        )
                    )
                | _ ->
                    let originals = Dataset.take (spec.Pool |> Option.defaultValue train.Count) train

                    if test.Count = 0 then
                        let how =
                            if config.Settings.TestDir = "" then
                                "the held-out part (--holdout) is empty: every class needs at least 2 images, or give --test-dir"
                            else
                                "the test folder holds no image"

                        Error(
                            DoesNotFit(
                                (if config.Settings.TestDir = "" then
                                     "holdout"
                                 else
                                     "test-dir"),
                                how
                            )
                        )
                    elif spec.Validation > train.Count - originals.Count then
                        Error(
                            DoesNotFit(
                                "validation",
                                $"{spec.Validation} validation images do not fit after a pool of {originals.Count}: {spec.Dataset} has {train.Count} training images (give a smaller --pool)"
                            )
                        )
                    elif spec.Repeat > 1 && train.Stored.IsSome then
                        Error(
                            DoesNotFit(
                                "repeat",
                                $"{spec.Dataset}'s images are read from a folder's decode cache; a repeated pool is built in memory, for the datasets stored in one file (fashion-mnist, cifar10, svhn)"
                            )
                        )
                    elif spec.Initial > originals.Count * spec.Repeat then
                        Error(
                            DoesNotFit(
                                "initial",
                                $"{spec.Initial} initial labels do not fit in a pool of {originals.Count * spec.Repeat}"
                            )
                        )
                    else
                        let poolData =
                            Dataset.repeat (Rng.key spec.Seed 0 Rng.RepeatNoise) spec.Repeat spec.RepeatNoise originals

                        Ok
                            {
                                Config = config
                                Entry = entry
                                Strategy = strategy
                                PoolData = poolData
                                TestData = test
                                ValidationData =
                                    Dataset.select (Array.init spec.Validation (fun i -> originals.Count + i)) train
                                Skipped = skipped
                                Normalisation = entry.Normalisation poolData
                            }

/// Holds the folder's lock for the work, or says who does (nothing is written then). A replacement (`run
/// --force`) that a killed process left half done is settled first (Results.recoverReplaced).
let private locked (folder: string) (work: unit -> Result<unit, RunError>) =
    let layout = { Results.Layout.Folder = folder }

    match
        Results.lockFolder layout
        |> Result.mapError (function
            | Results.HeldBy d -> FolderBusy(folder, d)
            | Results.CannotLock d -> WriteFailed(folder, d))
    with
    | Error e -> Error e
    | Ok hold ->
        use _ = hold

        catchIo layout.Replaced (fun () -> Results.recoverReplaced layout)
        |> Result.bind work

/// Starts an experiment in `folder`: writes spec.json, draws and labels the initial set (round 0's labels,
/// from the key (seed, 0, "initial")), and runs every round. A folder that already holds an experiment is
/// refused unless `force`. Everything is checked and serialised before anything in the folder changes; `force`
/// then moves the old experiment's files aside and deletes them only once the new one has written its first
/// files (spec.json, dataset.json, progress.json), so a run that fails before that leaves the old experiment as
/// it was. One process at a time writes a folder.
let run (config: Configuration) (folder: string) (force: bool) (hooks: Hooks) : Result<unit, RunError> =
    let layout = { Results.Layout.Folder = folder }

    // spec.json records the data folders as absolute paths, so the run folder can move (or be resumed from
    // anywhere) and still find its files.
    let absolute (path: string) =
        if String.IsNullOrWhiteSpace path then
            path
        else
            Path.GetFullPath path

    let config =
        { config with
            Settings =
                { config.Settings with
                    DataDir = absolute config.Settings.DataDir
                    TestDir = absolute config.Settings.TestDir
                }
        }

    let held () =
        if File.Exists layout.Spec && not force then
            Error(OutputExists folder)
        else
            Ok()

    if File.Exists folder then
        Error(NotAnExperiment(folder, "is a file; expected a folder for the results"))
    else
        held ()
        |> Result.bind (fun () -> prepare config)
        |> Result.bind (fun p ->
            let spec = p.Config.Spec

            let initial =
                Pool.create p.PoolData.Count p.PoolData.Classes
                |> Result.mapError (fun e -> RoundFailed(LabelsRefused(0, e)))
                |> Result.bind (fun empty ->
                    let drawn = Pool.draw (Rng.key spec.Seed 0 Rng.InitialDraw) spec.Initial empty

                    Pool.label 0 (drawn |> Array.map (fun i -> i, p.PoolData.Labels[i])) empty
                    |> Result.mapError (fun e -> RoundFailed(LabelsRefused(0, e))))

            initial
            |> Result.bind (fun pool ->
                let start =
                    {
                        Pool = pool
                        Records = []
                        Pending = None
                    }

                // The first files, serialised before anything in the folder changes (progress.json at the start
                // holds only the label log's integers).
                let firstFiles =
                    try
                        Ok(SpecJson.toJson (versions ()) p.Config, datasetJson p)
                    with e ->
                        Error(
                            SpecInvalid
                                [
                                    {
                                        Field = "spec"
                                        Message = $"cannot be recorded: {e.Message}"
                                    }
                                ]
                        )

                firstFiles
                |> Result.bind (fun (specText, datasetBytes) ->
                    locked folder (fun () ->
                        // Checked again under the lock (a replacement settled by it may have brought one back).
                        held ()
                        |> Result.bind (fun () ->
                            catchIo folder (fun () ->
                                Results.removeStaleTemporaries folder
                                Results.setAside layout)
                            |> Result.bind (fun () ->
                                let written =
                                    catchIo folder (fun () ->
                                        Results.writeTextAtomic layout.Spec specText
                                        Results.writeAtomic layout.Dataset datasetBytes

                                        Results.saveProgress
                                            layout
                                            (namingOf p.PoolData)
                                            (p.PoolData.Count / p.Config.Spec.Repeat)
                                            start)

                                match written with
                                | Error e ->
                                    // The old experiment comes back as it was.
                                    catchIo folder (fun () -> Results.restoreReplaced layout)
                                    |> Result.bind (fun () -> Error e)
                                | Ok() ->
                                    catchIo folder (fun () -> Results.discardReplaced layout)
                                    |> Result.bind (fun () ->
                                        hooks.Info $"strategy: {Options.describe p.Config.Spec}"

                                        hooks.Info
                                            $"pool: {p.PoolData.Count} images, test: {p.TestData.Count} images, {p.PoolData.Classes} classes"

                                        proceed layout p hooks start)))))))

/// Continues the experiment in `folder` from its persisted state: a batch that was waiting for labels is
/// labelled as it was proposed (not proposed again). With the same threads on the CPU, the result equals an
/// uninterrupted run's: every round's randomness is keyed by (seed, round, purpose).
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
        match Datasets.readSpecFile layout.Spec with
        | Error errors ->
            let e = List.head errors
            Error(NotAnExperiment(layout.Spec, $"{e.Field}: {e.Message}"))
        | Ok config ->
            prepare config
            |> Result.bind (fun p ->
                locked folder (fun () ->
                    match
                        Results.readProgress layout.Progress
                        |> Result.bind (Results.checkStopSet p.Config.Spec.Stopping.StopSet layout.Progress)
                    with
                    | Error detail -> Error(NotAnExperiment(layout.Progress, detail))
                    | Ok progress when progress.Pool.Size <> p.PoolData.Count ->
                        Error(
                            NotAnExperiment(
                                layout.Progress,
                                $"its pool has {progress.Pool.Size} items, the spec's data {p.PoolData.Count}"
                            )
                        )
                    | Ok progress ->
                        let waiting =
                            match progress.Pending with
                            | Some b -> $", a batch of {b.Indices.Length} waiting for labels"
                            | None -> ""

                        hooks.Info
                            $"resuming after {progress.Records.Length} completed round(s) of {p.Config.Spec.Rounds + 1}{waiting}"

                        Results.removeStaleTemporaries folder

                        catchIo folder (fun () ->
                            Results.writeAtomic layout.Dataset (datasetJson p)

                            Results.saveProgress
                                layout
                                (namingOf p.PoolData)
                                (p.PoolData.Count / p.Config.Spec.Repeat)
                                progress)
                        |> Result.bind (fun () -> proceed layout p hooks progress)))
