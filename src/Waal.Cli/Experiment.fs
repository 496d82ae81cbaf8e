/// `waal run`, `waal resume` and `waal report`: the spec from the command line, progress on the terminal.
module Waal.Cli.Experiment

open System
open System.IO
open Argu
open Spectre.Console
open Waal.Cli.Args
open Waal.Core
open Waal.Experiments
open Waal.Learning

/// The folder a dataset name means when none is given.
let defaultFolder (dataset: string) =
    match dataset with
    | "fashion-mnist" ->
        Environment.GetEnvironmentVariable "WAAL_FASHION_MNIST"
        |> Option.ofObj
        |> Option.defaultValue "/usr/share/datasets/fashion-mnist"
        |> Some
    | _ -> None

/// The dataset name and folder of a `--dataset name[=DIR]` value, or the error line.
let dataset (text: string) : Result<string * string, string> =
    let name, folder =
        match text.IndexOf '=' with
        | -1 -> text, defaultFolder text
        | i -> text[.. i - 1], Some text[i + 1 ..]

    match folder with
    | _ when not (List.contains name Spec.datasets) ->
        let known = String.Join(", ", Spec.datasets)
        Error $"error EXP001: --dataset: unknown dataset '{name}'; expected one of {known}"
    | None -> Error $"error EXP001: --dataset: {name} needs its folder: --dataset {name}=DIR"
    | Some folder -> Ok(name, folder)

/// The spec a `waal run` command line describes, or the line of the first problem.
let spec (args: ParseResults<RunArgs>) : Result<ExperimentSpec, string> =
    match dataset (args.GetResult RunArgs.Dataset) with
    | Error line -> Error line
    | Ok(name, folder) ->
        let strategy = args.TryGetResult RunArgs.Strategy |> Option.defaultValue "waal"
        let reference = Spec.defaults name folder

        // The baselines default to their own reference training (baselines.md), WAAL to the CPU protocol's.
        let d =
            if strategy = "waal" then
                reference
            else
                { reference with
                    Train = Spec.baselineTrain name reference.Train
                }

        let budget =
            args.TryGetResult RunArgs.Train_Budget
            |> Option.map (function
                | BudgetArg.Epochs -> EpochsOverLabelled
                | BudgetArg.Match_Waal -> MatchWaal)

        let adversary =
            args.TryGetResult RunArgs.Adversary
            |> Option.map (function
                | AdversaryArg.Wasserstein -> Wasserstein
                | AdversaryArg.H_Divergence -> HDivergence)

        let waalScore =
            args.TryGetResult RunArgs.Waal_Score
            |> Option.map (function
                | ScoreArg.Combined -> Combined
                | ScoreArg.Uncertainty -> UncertaintyOnly
                | ScoreArg.Diversity -> DiversityOnly)

        let imbalance =
            args.TryGetResult RunArgs.Imbalance
            |> Option.map (function
                | ImbalanceArg.Reference -> Imbalance.Reference
                | ImbalanceArg.Paper -> Imbalance.Paper
                | ImbalanceArg.One -> Imbalance.One)

        let gpSign =
            args.TryGetResult RunArgs.Gp_Sign
            |> Option.map (function
                | GpSignArg.Reference -> ReferenceSign
                | GpSignArg.Wgan_Gp -> WganGpSign)

        let critic =
            args.TryGetResult RunArgs.Critic
            |> Option.map (function
                | Sigmoid -> SigmoidOutput
                | Linear -> LinearOutput)

        let device =
            args.TryGetResult RunArgs.Device
            |> Option.map (function
                | Auto -> AutoDevice
                | Cpu -> CpuDevice
                | Cuda -> CudaDevice)

        let bound =
            args.TryGetResult RunArgs.Bound
            |> Option.map (function
                | Mixed -> Uncertainty.Mixed
                | L1 -> Uncertainty.L1
                | L2 -> Uncertainty.L2
                | Worst_Case -> Uncertainty.WorstCase)

        let s =
            { d with
                Strategy = strategy
                Initial = args.TryGetResult RunArgs.Initial |> Option.defaultValue d.Initial
                Query = args.TryGetResult RunArgs.Query |> Option.defaultValue d.Query
                Rounds = args.TryGetResult RunArgs.Rounds |> Option.defaultValue d.Rounds
                Seed = args.TryGetResult RunArgs.Seed |> Option.defaultValue d.Seed
                Pool = args.TryGetResult RunArgs.Pool |> Option.orElse d.Pool
                Threads = args.TryGetResult RunArgs.Threads |> Option.defaultValue d.Threads
                Device = device |> Option.defaultValue d.Device
                ScoreBatch = args.TryGetResult RunArgs.Score_Batch |> Option.defaultValue d.ScoreBatch
                Train =
                    {
                        Epochs = args.TryGetResult RunArgs.Epochs |> Option.defaultValue d.Train.Epochs
                        Batch = args.TryGetResult RunArgs.Batch |> Option.defaultValue d.Train.Batch
                        LearningRate = args.TryGetResult RunArgs.Lr |> Option.defaultValue d.Train.LearningRate
                        Momentum = args.TryGetResult RunArgs.Momentum |> Option.defaultValue d.Train.Momentum
                        Budget = budget |> Option.defaultValue d.Train.Budget
                    }
                Method =
                    {
                        Alpha = args.TryGetResult RunArgs.Alpha |> Option.defaultValue d.Method.Alpha
                        Selection = args.TryGetResult RunArgs.Selection |> Option.defaultValue d.Method.Selection
                        Imbalance = imbalance |> Option.defaultValue d.Method.Imbalance
                        GpSign = gpSign |> Option.defaultValue d.Method.GpSign
                        GpWeight = args.TryGetResult RunArgs.Gp_Weight |> Option.defaultValue d.Method.GpWeight
                        CriticOutput = critic |> Option.defaultValue d.Method.CriticOutput
                        Bound = bound |> Option.defaultValue d.Method.Bound
                        Augment = args.Contains RunArgs.Augment
                        Adversary = adversary |> Option.defaultValue d.Method.Adversary
                        Score = waalScore |> Option.defaultValue d.Method.Score
                    }
            }

        Ok s

let private roundLine (r: RoundRecord) =
    $"round {r.Round}: {r.Labelled} labels, test accuracy {100.0 * r.TestAccuracy:F2} %%, train {r.TrainSeconds:F1} s ({r.TrainIterations} iterations), query {r.QuerySeconds:F1} s, eval {r.EvalSeconds:F1} s"

/// Plain progress lines (not a terminal): one line when a phase starts, one when it ends.
let private plainHooks (out: TextWriter) : Runner.Hooks =
    let mutable phase = ""
    let mutable started = DateTime.UtcNow

    {
        Progress =
            {
                Start =
                    fun name total ->
                        phase <- name
                        started <- DateTime.UtcNow
                        out.WriteLine $"{name}: {total} steps"
                Advance = ignore
                Finish = fun () -> out.WriteLine $"{phase}: done in {(DateTime.UtcNow - started).TotalSeconds:F1} s"
            }
        AfterRound = fun r -> out.WriteLine(roundLine r)
        Info = out.WriteLine
    }

/// Runs `work` with Spectre.Console progress bars when stdout is a terminal, else with plain lines.
let private withProgress (out: TextWriter) (work: Runner.Hooks -> Result<unit, Runner.RunError>) =
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
                        Progress =
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

let private finish (out: TextWriter) (err: TextWriter) (folder: string) (result: Result<unit, Runner.RunError>) =
    match result with
    | Ok() ->
        out.WriteLine
            $"results: {Path.GetFullPath folder} (spec.json, rounds.csv, labels.json, progress.json, checkpoint/)"

        0
    | Error e ->
        err.WriteLine(Runner.RunError.line e)

        match e with
        | Runner.RoundFailed _
        | Runner.WriteFailed _ -> 1
        | _ -> 2

/// `waal run`.
let run (out: TextWriter) (err: TextWriter) (args: ParseResults<RunArgs>) =
    match spec args with
    | Error line ->
        err.WriteLine line
        2
    | Ok s ->
        let folder = args.GetResult RunArgs.Out

        withProgress out (fun hooks -> Runner.run s folder (args.Contains RunArgs.Force) hooks)
        |> finish out err folder

/// `waal resume`.
let resume (out: TextWriter) (err: TextWriter) (args: ParseResults<ResumeArgs>) =
    let folder = args.GetResult ResumeArgs.Folder

    withProgress out (fun hooks -> Runner.resume folder hooks)
    |> finish out err folder

/// `waal report`.
let report (out: TextWriter) (err: TextWriter) (args: ParseResults<ReportArgs>) =
    match Report.write (args.GetResult ReportArgs.Runs) (args.GetResult ReportArgs.Out) with
    | Ok(md, png) ->
        out.WriteLine $"report: {md}"
        out.WriteLine $"learning curve: {png}"
        0
    | Error message ->
        err.WriteLine $"error EXP005: {message}"
        2

/// `waal query-times`.
let queryTimes (out: TextWriter) (err: TextWriter) (args: ParseResults<QueryTimesArgs>) =
    match dataset (args.GetResult QueryTimesArgs.Dataset) with
    | Error line ->
        err.WriteLine line
        2
    | Ok(name, folder) ->
        let d = Spec.defaults name folder

        let spec =
            { d with
                Pool = Some(args.TryGetResult QueryTimesArgs.Pool |> Option.defaultValue 50000)
                Initial = args.TryGetResult QueryTimesArgs.Initial |> Option.defaultValue d.Initial
                Query = args.TryGetResult QueryTimesArgs.Query |> Option.defaultValue d.Query
                Seed = args.TryGetResult QueryTimesArgs.Seed |> Option.defaultValue d.Seed
                Threads = args.TryGetResult QueryTimesArgs.Threads |> Option.defaultValue d.Threads
                ScoreBatch = args.TryGetResult QueryTimesArgs.Score_Batch |> Option.defaultValue d.ScoreBatch
                Train =
                    { d.Train with
                        Epochs = args.TryGetResult QueryTimesArgs.Epochs |> Option.defaultValue d.Train.Epochs
                    }
            }

        let mutable timings = []

        let result =
            withProgress out (fun hooks -> QueryTimes.run spec hooks |> Result.map (fun t -> timings <- t))

        match result with
        | Ok() ->
            QueryTimes.table timings |> List.iter out.WriteLine
            0
        | Error e ->
            err.WriteLine(Runner.RunError.line e)
            2
