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

/// What the caller can observe and control: progress of long work, and a hook after each persisted round.
type Hooks =
    {
        /// Where long work reports its steps.
        Sink: ProgressSink
        /// Called after a round is persisted (the CLI prints it; tests inject failures here).
        AfterRound: RoundRecord -> unit
        /// Lines of information (data loaded, folder, ...).
        Info: string -> unit
    }

/// No output, no hooks.
let quiet =
    {
        Sink = ProgressSink.none
        AfterRound = ignore
        Info = ignore
    }

/// The commit the library was built from, as the build recorded it (SourceLink's revision after the '+' of the
/// informational version; "-dirty" when tracked files differed from it), or "unknown" outside a git clone.
let internal commit () =
    let info =
        typeof<ExperimentError>
            .Assembly.GetCustomAttributes(typeof<Reflection.AssemblyInformationalVersionAttribute>, false)
        |> Array.tryHead
        |> Option.map (fun a -> (a :?> Reflection.AssemblyInformationalVersionAttribute).InformationalVersion)

    match info with
    | Some v when v.Contains '+' -> v[v.IndexOf '+' + 1 ..]
    | _ -> "unknown"

/// The machine a run ran on, as a report names it: the processor's model, the logical processors and the OS.
let internal machine () =
    let model =
        try
            File.ReadLines "/proc/cpuinfo"
            |> Seq.tryFind (fun l -> l.StartsWith "model name")
            |> Option.map (fun l -> l[l.IndexOf ':' + 1 ..].Trim())
        with
        | :? IOException
        | :? UnauthorizedAccessException -> None

    let cpu =
        model
        |> Option.defaultValue (Runtime.InteropServices.RuntimeInformation.OSArchitecture.ToString())

    $"{cpu}, {Environment.ProcessorCount} logical processors, {Runtime.InteropServices.RuntimeInformation.OSDescription}"

/// The software versions written into spec.json, with the commit that built them and when the run started (UTC):
/// what makes "the plan came before the runs" a fact that git and the run folders show.
let versions () =
    let version (t: Type) = t.Assembly.GetName().Version |> string

    [
        "waal", version typeof<ExperimentError>
        "commit", commit ()
        "started", DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", Globalization.CultureInfo.InvariantCulture)
        "machine", machine ()
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
let private saveCheckpoint (layout: RunFolder.Layout) (round: int) (nets: Nets.Networks) =
    let name = $"round-{round:D3}"
    let folder = Path.Combine(layout.Checkpoint, name)
    Checkpoint.save folder nets
    AtomicFile.writeText (Path.Combine(layout.Checkpoint, "latest")) name

    for old in Directory.GetDirectories(layout.Checkpoint, "round-*") do
        if Path.GetFileName old <> name then
            Directory.Delete(old, true)

/// dataset.json: what the run's data is (class names, image shape, the normalisation, the pool's and the test
/// split's files, what was skipped), for people, for `waal export` and for moving a run.
/// The network "auto" (or the name given) resolves to for these inputs, as spec.json records it.
let private resolvedNetwork (p: Workbench.Inputs) =
    match p.NetworkInputs with
    | NetworkInputs.Embeddings -> Some(Architecture.name Head)
    | inputs ->
        Architecture.resolve p.Config.Spec.Network inputs p.PoolImages.Channels p.PoolImages.Height p.PoolImages.Width
        |> Result.toOption
        |> Option.map Architecture.name

let private datasetJson (p: Workbench.Inputs) =
    RunFolder.datasetJson
        p.Config.Spec.Dataset
        (Path.GetFullPath p.Config.Settings.DataDir)
        p.PoolImages
        p.Test.Value
        p.Normalisation
        (p.Skipped |> List.map (fun e -> DataError.file e, DataError.line e))

/// Runs the rounds that remain, persisting the state after every half-round; data and spec are already checked.
let private proceed (layout: RunFolder.Layout) (p: Workbench.Inputs) (hooks: Hooks) (start: Progress) =
    let spec = p.Config.Spec

    Workbench.openOn hooks.Sink p
    |> Result.bind (fun bench ->
        use bench = bench
        let network, why = bench.Network

        let chosen =
            if spec.Network = "auto" || spec.Network = "" then
                $"auto: {why}"
            else
                "--network"

        hooks.Info $"network: {Architecture.name network} ({chosen})"

        let recorded =
            match bench.Backbone with
            | None -> Ok()
            | Some r -> catchIo layout.Backbone (fun () -> RunFolder.writeBackbone layout r)

        let learner = bench.Learner hooks.Sink

        // The oracle: the dataset's hidden labels of the pool items.
        let oracle (indices: int[]) =
            indices |> Array.map (fun i -> i, p.PoolImages.Labels[i])

        let clock = Stopwatch.StartNew()
        let seconds () = clock.Elapsed.TotalSeconds

        let save progress =
            catchIo layout.Progress (fun () -> RunFolder.saveProgress layout p.Naming p.Originals progress)

        let rec loop (progress: Progress) =
            if Round.isFinished spec.Rounds progress then
                Ok()
            else
                match progress.Pending with
                | Some pending ->
                    Round.accept (oracle pending.Indices) progress
                    |> Result.mapError ExperimentError.ofRound
                    |> Result.bind (fun (next, record) ->
                        save next
                        |> Result.bind (fun () ->
                            hooks.AfterRound record
                            loop next))
                | None ->
                    Round.propose learner seconds spec.Stopping.Rules spec.Query spec.Rounds progress
                    |> Result.mapError ExperimentError.ofRound
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

        recorded |> Result.bind (fun () -> loop start))

/// Holds the folder's lock for the work, or says who does (nothing is written then). A replacement (`run
/// --force`) that a killed process left half done is settled first (RunFolder.recoverReplaced).
let private locked (folder: string) (work: unit -> Result<unit, ExperimentError>) =
    let layout = { RunFolder.Layout.Folder = folder }

    match
        RunFolder.lockFolder layout
        |> Result.mapError (function
            | RunFolder.HeldBy d -> FolderBusy(folder, d)
            | RunFolder.CannotLock d -> WriteFailed(folder, d))
    with
    | Error e -> Error e
    | Ok hold ->
        use _ = hold

        catchIo layout.Replaced (fun () -> RunFolder.recoverReplaced layout)
        |> Result.bind work

/// Starts an experiment in `folder`: writes spec.json, draws and labels the initial set (round 0's labels,
/// from the key (seed, 0, "initial")), and runs every round. A folder that already holds an experiment is
/// refused unless `force`. Everything is checked and serialised before anything in the folder changes; `force`
/// then moves the old experiment's files aside and deletes them only once the new one has written its first
/// files (spec.json, dataset.json, progress.json), so a run that fails before that leaves the old experiment as
/// it was. One process at a time writes a folder.
let run (config: Configuration) (folder: string) (force: bool) (hooks: Hooks) : Result<unit, ExperimentError> =
    let layout = { RunFolder.Layout.Folder = folder }

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

    let labelled (e: PoolError) = ExperimentError.LabelsRefused(0, e)

    // The first files, serialised before anything in the folder changes (progress.json at the start holds only
    // the label log's integers).
    let firstFiles (p: Workbench.Inputs) =
        try
            Ok(SpecJson.toJsonResolved (resolvedNetwork p) (versions ()) p.Config, datasetJson p)
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

    // Under the lock: the old experiment set aside, the first files written (or the old one back as it was).
    let start (p: Workbench.Inputs) (specText: string) (datasetBytes: byte[]) (first: Progress) =
        result {
            // Checked again under the lock (a replacement settled by it may have brought one back).
            do! held ()

            do!
                catchIo folder (fun () ->
                    RunFolder.removeStaleTemporaries folder
                    RunFolder.setAside layout)

            let written =
                catchIo folder (fun () ->
                    AtomicFile.writeText layout.Spec specText
                    AtomicFile.write layout.Dataset datasetBytes
                    RunFolder.saveProgress layout p.Naming p.Originals first)

            match written with
            | Error e ->
                // The old experiment comes back as it was.
                do! catchIo folder (fun () -> RunFolder.restoreReplaced layout)
                return! Error e
            | Ok() ->
                do! catchIo folder (fun () -> RunFolder.discardReplaced layout)
                hooks.Info $"strategy: {Options.describe p.Config.Spec}"

                hooks.Info
                    $"pool: {p.PoolImages.Count} images, test: {p.Test.Value.Count} images, {p.PoolImages.Classes} classes"

                return! proceed layout p hooks first
        }

    if File.Exists folder then
        Error(NotAnExperiment(folder, "is a file; expected a folder for the results"))
    else
        result {
            do! held ()
            let! p = Workbench.load config
            let spec = p.Config.Spec

            let! first =
                Round.withHiddenInitial spec.Seed spec.Initial p.PoolImages.Labels p.PoolImages.Classes
                |> Result.mapError labelled

            let! specText, datasetBytes = firstFiles p
            return! locked folder (fun () -> start p specText datasetBytes first)
        }

/// Continues the experiment in `folder` from its persisted state: a batch that was waiting for labels is
/// labelled as it was proposed (not proposed again). With the same threads on the CPU, the result equals an
/// uninterrupted run's: every round's randomness is keyed by (seed, round, purpose).
let resume (folder: string) (hooks: Hooks) : Result<unit, ExperimentError> =
    let layout = { RunFolder.Layout.Folder = folder }

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
        match RunFolder.readSpecResolved layout with
        | Error detail -> Error(NotAnExperiment(layout.Spec, detail))
        | Ok config ->
            Workbench.load config
            |> Result.bind (fun p ->
                locked folder (fun () ->
                    match RunFolder.readState layout p.Config with
                    | Error detail -> Error(NotAnExperiment(layout.Progress, detail))
                    | Ok progress when progress.Pool.Size <> p.PoolImages.Count ->
                        Error(
                            NotAnExperiment(
                                layout.Progress,
                                $"its pool has {progress.Pool.Size} items, the spec's data {p.PoolImages.Count}"
                            )
                        )
                    | Ok progress ->
                        let waiting =
                            match progress.Pending with
                            | Some b -> $", a batch of {b.Indices.Length} waiting for labels"
                            | None -> ""

                        hooks.Info
                            $"resuming after {progress.Records.Length} completed round(s) of {p.Config.Spec.Rounds + 1}{waiting}"

                        RunFolder.removeStaleTemporaries folder

                        catchIo folder (fun () ->
                            AtomicFile.write layout.Dataset (datasetJson p)

                            RunFolder.saveProgress layout p.Naming p.Originals progress)
                        |> Result.bind (fun () -> proceed layout p hooks progress)))
