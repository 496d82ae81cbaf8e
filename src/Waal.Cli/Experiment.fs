/// `waal run`, `waal resume` and `waal report`: the spec from the command line, progress on the terminal.
module Waal.Cli.Experiment

open System
open System.IO
open System.Runtime.InteropServices
open System.Threading
open Argu
open Spectre.Console
open Waal.Cli.Args
open Waal.Core
open Waal.Data
open Waal.Experiments
open Waal.Learning

/// The configuration a command line's options describe (see CommandLine.ofCommandLine).
let configOf (tokens: string list) = CommandLine.ofCommandLine tokens

/// The usage lines of the option table, for `waal run --help`.
let optionsUsage () =
    let profile =
        (Datasets.find "fashion-mnist" |> Result.map (fun e -> e.Profile))
        |> Result.defaultWith failwith

    let waal =
        Datasets.defaults "fashion-mnist" "waal"
        |> Result.map (fun c -> Options.describe c.Spec)
        |> Result.defaultWith failwith

    [
        $"The default waal is {waal}: the critic shapes the features through WAAL's training, and"
        "--waal-score combined puts its term in the query (docs/findings.md §6 measured both)."
        ""
        "EXPERIMENT OPTIONS (defaults for fashion-mnist, waal and the recommended preset; --preset reference gives the"
        "published protocols; every one is also a spec.json field and an MSBuild Experiment metadata in PascalCase):"
        for o in Options.all do
            let d =
                o.Default
                    {
                        Profile = profile
                        Strategy = "waal"
                        Preset = RecommendedPreset
                    }

            let shown = if d = "" then "" else $" (default {d})"

            let formerly =
                o.Formerly |> List.map (fun n -> $" (formerly --{n})") |> String.concat ""

            $"    --{o.Name} <{o.Expected}>: {o.Help}{shown}{formerly}"
    ]

let private roundLine (r: RoundRecord) =
    let stopped =
        match r.Stopped with
        | Some why -> $"; stopped early, {why}"
        | None -> ""

    let validation =
        if Double.IsFinite r.ValidationAccuracy then
            $", validation {100.0 * r.ValidationAccuracy:F2} %%"
        else
            ""

    $"round {r.Round}: {r.Labelled} labels, test accuracy {100.0 * r.TestAccuracy:F2} %%{validation}, train {r.TrainSeconds:F1} s ({r.TrainIterations} iterations), query {r.QuerySeconds:F1} s, eval {r.EvalSeconds:F1} s{stopped}"

/// Plain progress lines (not a terminal: a log, a build, a Slurm task): one line when a phase starts, one when it
/// ends, and while a phase runs, a line every `every` seconds (the first after 3) with the steps done and an
/// estimate of the time left from them.
let internal plainHooksEvery (every: float) (out: TextWriter) : Runner.Hooks =
    let mutable phase = ""
    let mutable started = DateTime.UtcNow
    let mutable total = 0
    let mutable finished = 0
    let mutable nextAt = 3.0

    {
        Sink =
            {
                Start =
                    fun name steps ->
                        phase <- name
                        started <- DateTime.UtcNow
                        total <- steps
                        finished <- 0
                        nextAt <- min 3.0 every
                        out.WriteLine $"{name}: {steps} steps"
                Advance =
                    fun n ->
                        finished <- finished + n
                        let elapsed = (DateTime.UtcNow - started).TotalSeconds

                        if elapsed >= nextAt && finished > 0 && finished < total then
                            nextAt <- elapsed + every
                            let left = elapsed / float finished * float (total - finished)

                            out.WriteLine
                                $"{phase}: {finished} of {total} steps in {elapsed:F1} s, about {left:F0} s to go"
                Finish = fun () -> out.WriteLine $"{phase}: done in {(DateTime.UtcNow - started).TotalSeconds:F1} s"
            }
        AfterRound = fun r -> out.WriteLine(roundLine r)
        Info = out.WriteLine
    }

/// Plain progress lines every 5 seconds.
let private plainHooks (out: TextWriter) = plainHooksEvery 5.0 out

/// Runs `work` with Spectre.Console progress bars when stdout is a terminal, else with plain lines.
let internal withProgress (out: TextWriter) (work: Runner.Hooks -> Result<unit, ExperimentError>) =
    if Console.IsOutputRedirected || not (obj.ReferenceEquals(out, Console.Out)) then
        work (plainHooks out)
    else
        AnsiConsole
            .Progress()
            .AutoClear(false)
            .Columns(
                TaskDescriptionColumn(),
                ProgressBarColumn(),
                PercentageColumn(),
                ElapsedTimeColumn(),
                RemainingTimeColumn()
            )
            .Start(fun ctx ->
                let mutable task: ProgressTask option = None

                work
                    {
                        Sink =
                            {
                                Start =
                                    fun name total ->
                                        task <- Some(ctx.AddTask(Markup.Escape name, true, float (max 1 total)))
                                Advance = fun n -> task |> Option.iter (fun t -> t.Increment(float n))
                                Finish =
                                    fun () ->
                                        task |> Option.iter (fun t -> t.Value <- t.MaxValue)
                                        task <- None
                            }
                        AfterRound = fun r -> AnsiConsole.MarkupLine(Markup.Escape(roundLine r))
                        Info = fun line -> AnsiConsole.MarkupLine(Markup.Escape line)
                    })

/// Runs `work` so that SIGTERM (a scheduler preempting or requeueing the task) or SIGINT stops it at its next
/// safe point: the progress sink throws at its next step, before anything of the half-round in flight is written,
/// and the run ends with EXP016 (exit code 143). The folder is consistent at every instant anyway (atomic files);
/// this makes the stop prompt and says so. A second SIGINT ends the process at once.
let internal interruptible
    (folder: string)
    (work: Runner.Hooks -> Result<unit, ExperimentError>)
    (hooks: Runner.Hooks)
    =
    use stop = new CancellationTokenSource()
    let mutable signal = ""

    let onSignal (ctx: PosixSignalContext) =
        if not stop.IsCancellationRequested then
            ctx.Cancel <- true

            signal <-
                if ctx.Signal = PosixSignal.SIGTERM then
                    "SIGTERM"
                else
                    "SIGINT"

            stop.Cancel()

    use _ = PosixSignalRegistration.Create(PosixSignal.SIGTERM, onSignal)
    use _ = PosixSignalRegistration.Create(PosixSignal.SIGINT, onSignal)

    try
        work
            { hooks with
                Sink = Session.cancellable stop.Token hooks.Sink
            }
    with :? OperationCanceledException when stop.IsCancellationRequested ->
        Error(Interrupted(folder, signal))

let private finish (out: TextWriter) (err: TextWriter) (folder: string) (result: Result<unit, ExperimentError>) =
    match result with
    | Ok() ->
        out.WriteLine
            $"results: {Path.GetFullPath folder} (spec.json, rounds.csv, labels.json, progress.json, checkpoint/)"

        0
    | Error e ->
        err.WriteLine(ExperimentError.line e)

        match e with
        | Interrupted _ -> 143
        | RoundFailed _
        | LabelsRefused _
        | OutOfTurn _
        | WriteFailed _ -> 1
        | _ -> 2

/// `waal run`.
let run (out: TextWriter) (err: TextWriter) (args: ParseResults<RunArgs>) =
    let folder = args.GetResult RunArgs.Out

    configOf (args.GetResults RunArgs.Option_Text)
    |> Result.bind (fun s ->
        // A run never writes into the data it reads.
        Outputs.refuse
            "--out"
            folder
            [
                "the dataset's folder", s.Settings.DataDir
                "the test folder", s.Settings.TestDir
            ]
        |> Result.map (fun () -> s))
    |> function
        | Error line ->
            err.WriteLine line
            2
        | Ok s ->
            withProgress
                out
                (interruptible folder (fun hooks -> Runner.run s folder (args.Contains RunArgs.Force) hooks))
            |> finish out err folder

/// `waal resume`.
let resume (out: TextWriter) (err: TextWriter) (args: ParseResults<ResumeArgs>) =
    let folder = args.GetResult ResumeArgs.Folder

    withProgress out (interruptible folder (fun hooks -> Runner.resume folder hooks))
    |> finish out err folder

/// `waal report`.
let report (out: TextWriter) (err: TextWriter) (args: ParseResults<ReportArgs>) =
    let metric =
        match args.TryGetResult ReportArgs.Metric with
        | Some MetricArg.Validation -> ReportRuns.ValidationMetric
        | _ -> ReportRuns.TestMetric

    let families =
        args.GetResults ReportArgs.Compare
        |> List.map (fun family ->
            family.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
            |> List.ofArray
            |> List.map ReportRuns.parseComparison)

    match
        families
        |> List.concat
        |> List.tryPick (function
            | Error e -> Some e
            | Ok _ -> None)
    with
    | Some problem ->
        err.WriteLine $"error CLI001: --compare: {problem}"
        1
    | None ->
        let families = families |> List.map (List.choose Result.toOption)

        match Report.writeWith metric families (args.GetResult ReportArgs.Runs) (args.GetResult ReportArgs.Out) with
        | Ok(md, png) ->
            out.WriteLine $"report: {md}"
            out.WriteLine $"learning curve: {png}"
            0
        | Error(Report.RunUnreadable message as e) ->
            err.WriteLine $"error {Report.ReportError.code e}: {message}"
            2
        | Error(Report.WriteFailed(path, detail) as e) ->
            err.WriteLine $"error {Report.ReportError.code e}: --out: {path}: {detail}"
            1

/// `waal query-times`.
let queryTimes (out: TextWriter) (err: TextWriter) (args: ParseResults<QueryTimesArgs>) =
    let given = args.GetResults QueryTimesArgs.Option_Text

    // The paper's Table 1 pool unless the caller names one; every other value is the table's.
    let given =
        if given |> List.exists (fun t -> t = "--pool" || t.StartsWith "--pool=") then
            given
        else
            given @ [ "--pool"; string QueryTimes.tablePool ]

    match configOf given with
    | Error line ->
        err.WriteLine line
        2
    | Ok spec ->
        let mutable timings = []

        let result =
            withProgress out (fun hooks -> QueryTimes.run spec hooks |> Result.map (fun t -> timings <- t))

        match result with
        | Ok() ->
            QueryTimes.table timings |> List.iter out.WriteLine
            0
        | Error e ->
            err.WriteLine(ExperimentError.line e)
            2

/// `waal export`.
let export (out: TextWriter) (err: TextWriter) (args: ParseResults<ExportArgs>) =
    let folder = args.GetResult ExportArgs.Out
    let run = args.GetResult ExportArgs.Run_Folder

    let inputs =
        ("the run's checkpoint", Path.Combine(run, "checkpoint"))
        :: [ for f in Model.inputsOf run -> "the run", f ]

    match Outputs.refuse "--out" folder inputs with
    | Error line ->
        err.WriteLine line
        2
    | Ok() ->

        match ModelExport.export run folder with
        | Ok info ->
            let accuracy =
                if Double.IsNaN info.TestAccuracy then
                    ""
                else
                    $", test accuracy {100.0 * info.TestAccuracy:F2} %%"

            out.WriteLine
                $"model: {Path.GetFullPath folder} ({info.Network}, {info.Channels}x{info.Height}x{info.Width}, {info.Classes} classes, round {info.Round}{accuracy})"

            0
        | Error e ->
            err.WriteLine(Model.ModelError.line e)
            2

/// `waal predict`.
let predict (out: TextWriter) (err: TextWriter) (args: ParseResults<PredictArgs>) =
    let given =
        [
            "threads", args.TryGetResult PredictArgs.Threads
            "score-batch", args.TryGetResult PredictArgs.Score_Batch
        ]
        |> List.choose (fun (name, v) -> v |> Option.map (fun v -> name, string v))

    let model = args.GetResult PredictArgs.Model
    let images = args.GetResult PredictArgs.Images
    let file = args.GetResult PredictArgs.Out

    let checkedFirst =
        CommandLine.settingsOf given
        |> Result.bind (fun settings ->
            Outputs.refuse
                "--out"
                file
                ([ for f in Model.inputsOf model -> "the model", f ]
                 @ [ for i in images -> "--images", i ])
            |> Result.bind (fun () ->
                if Directory.Exists file then
                    Error $"error MODEL002: --out: {file}: is a folder; expected a file for the predictions"
                else
                    Ok settings))

    match checkedFirst with
    | Error line ->
        err.WriteLine line
        2
    | Ok settings ->
        Device.configure settings.Threads

        match Model.predictFiles model images (args.Contains PredictArgs.Skip_Bad_Images) settings.ScoreBatch with
        | Error e ->
            err.WriteLine(Model.ModelError.line e)
            2
        | Ok(info, rows, skipped) ->
            for e in skipped do
                err.WriteLine $"skipped: {DataError.line e}"

            match
                (try
                    AtomicFile.writeText file (Model.predictionsCsv info rows)
                    Ok()
                 with
                 | :? IOException as e -> Error e.Message
                 | :? UnauthorizedAccessException as e -> Error e.Message)
            with
            | Error m ->
                err.WriteLine $"error MODEL002: {file}: {m}"
                1
            | Ok() ->
                let skippedNote =
                    if skipped.IsEmpty then
                        ""
                    else
                        $", {skipped.Length} skipped"

                out.WriteLine $"predictions: {Path.GetFullPath file} ({rows.Length} images{skippedNote})"
                0
