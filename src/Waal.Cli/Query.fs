/// `waal query`: a run's next batch with its last trained networks, in one process, as one shard, as the merge of
/// the shards, or all of it on Slurm: N array tasks each score a shard, a job that depends on them merges
/// (docs/cluster.md). Slurm is the engine: the command writes the two job scripts beside --out, submits them with
/// sbatch and watches squeue; it schedules nothing itself.
module Waal.Cli.Query

open System
open System.Diagnostics
open System.IO
open System.Text
open System.Text.RegularExpressions
open System.Threading
open Argu
open Waal.Cli.Args
open Waal.Core
open Waal.Experiments
open Waal.Strategies

let private printBatch (out: TextWriter) (path: string) (o: QueryShards.Opened) (indices: int[]) =
    let shown = indices |> Array.truncate 20 |> Array.map string |> String.concat " "
    let more = if indices.Length > 20 then " ..." else ""
    out.WriteLine $"round {o.Round}, {o.Strategy}: {indices.Length} items: {shown}{more}"
    out.WriteLine $"batch: {Path.GetFullPath path}"

let private fail (err: TextWriter) (e: ExperimentError) =
    err.WriteLine(ExperimentError.line e)

    match e with
    | WriteFailed _ -> 1
    | Interrupted _ -> 143
    | _ -> 2

/// Parses `S/N`.
let private shardOf (text: string) =
    match text.Split '/' with
    | [| s; n |] ->
        match Int32.TryParse s, Int32.TryParse n with
        | (true, s), (true, n) when n >= 1 && s >= 0 && s < n -> Some(s, n)
        | _ -> None
    | _ -> None

let private local (out: TextWriter) (err: TextWriter) (args: ParseResults<QueryArgs>) =
    let folder = args.GetResult QueryArgs.Run_Folder
    let target = args.GetResult QueryArgs.Out

    let work (hooks: Runner.Hooks) =
        QueryShards.openRun folder hooks.Sink
        |> Result.bind (fun o ->
            use o = o

            match args.TryGetResult QueryArgs.Shard, args.TryGetResult QueryArgs.Merge with
            | Some text, _ ->
                let s, n = (shardOf text).Value
                let items, terms = QueryShards.scoreShard o s n

                QueryShards.writeShard target o s n items terms
                |> Result.map (fun () ->
                    out.WriteLine
                        $"shard {s} of {n}: {items.Length} of {o.Unlabelled.Length} unlabelled items scored: {Path.GetFullPath target}")
            | None, Some files ->
                QueryShards.merge o files
                |> Result.bind (fun batch ->
                    QueryShards.writeBatch target o batch
                    |> Result.map (fun () -> printBatch out target o batch))
            | None, None ->
                QueryShards.queryAll o
                |> Result.bind (fun batch ->
                    QueryShards.writeBatch target o batch
                    |> Result.map (fun () -> printBatch out target o batch)))

    match Experiment.withProgress out (Experiment.interruptible folder work) with
    | Ok() -> 0
    | Error e -> fail err e

let private shell = Waal.Jobs.Slurm.shell

/// How a job runs this very command: `dotnet waal.dll` when it was started so, else its own executable.
let private selfCommand () =
    let host = Environment.ProcessPath
    let entry = Reflection.Assembly.GetEntryAssembly().Location

    if Path.GetFileNameWithoutExtension host = "dotnet" then
        $"{shell host} {shell entry}"
    else
        shell host

let private slurm (out: TextWriter) (err: TextWriter) (args: ParseResults<QueryArgs>) (shards: int) =
    let folder = Path.GetFullPath(args.GetResult QueryArgs.Run_Folder)
    let target = Path.GetFullPath(args.GetResult QueryArgs.Out)
    // The shard files, the job scripts and the logs: beside the batch, in TARGET.shards/.
    let work = target + ".shards"

    // Checked here, before anything is submitted (the pool itself is read by the tasks, not by this process).
    let checkedRun =
        QueryShards.checkRun folder
        |> Result.map ignore
        |> Result.mapError ExperimentError.line

    let resources: Waal.Jobs.Slurm.Resources =
        {
            Cpus = args.GetResult(QueryArgs.Cpus, defaultValue = 2)
            Memory = args.GetResult(QueryArgs.Memory, defaultValue = "4G")
            Time = args.GetResult(QueryArgs.Time, defaultValue = "")
            Partition = args.GetResult(QueryArgs.Partition, defaultValue = "")
            Account = args.GetResult(QueryArgs.Account, defaultValue = "")
            Gpus = args.GetResult(QueryArgs.Gpus, defaultValue = 0)
            Extra =
                (args.GetResult(QueryArgs.Sbatch_Args, defaultValue = ""))
                    .Split(' ', StringSplitOptions.RemoveEmptyEntries)
                |> List.ofArray
        }

    let header (name: string) (array: string) (logs: string) =
        StringBuilder(Waal.Jobs.Slurm.header name array logs resources)

    let slurmLine (what: string) (e: Waal.Jobs.Slurm.SlurmError) =
        let hint =
            match e with
            | Waal.Jobs.Slurm.NotStarted _ -> " (--slurm)"
            | Waal.Jobs.Slurm.Failed _ -> ""

        ExperimentError.line (SlurmFailed(what, e.Message + hint))

    let submit (script: string) (extra: string list) =
        Waal.Jobs.Slurm.submit script extra |> Result.mapError (slurmLine script)

    match checkedRun with
    | Error line ->
        err.WriteLine line
        2
    | Ok() ->
        Directory.CreateDirectory(Path.Combine(work, "logs")) |> ignore
        let self = selfCommand ()
        let started = DateTime.UtcNow

        for old in Directory.GetFiles(work, "shard-*.bin") do
            File.Delete old

        let scoring =
            header "waal-query" $"0-{shards - 1}" (Path.Combine(work, "logs", "shard-%a.out"))

        scoring.Append("set -uo pipefail\n") |> ignore

        scoring.Append(
            $"exec {self} query {shell folder} --shard \"$SLURM_ARRAY_TASK_ID/{shards}\" --out {shell work}/shard-$SLURM_ARRAY_TASK_ID.bin\n"
        )
        |> ignore

        let merging = header "waal-query-merge" "" (Path.Combine(work, "logs", "merge.out"))
        merging.Append("set -uo pipefail\n") |> ignore

        merging.Append("# Submitted with --dependency=afterok:<the scoring job>: it runs once every shard is scored.\n")
        |> ignore

        merging.Append($"exec {self} query {shell folder} --merge {shell work}/shard-*.bin --out {shell target}\n")
        |> ignore

        let scoringScript = Path.Combine(work, "query.sbatch")
        let mergingScript = Path.Combine(work, "merge.sbatch")
        File.WriteAllText(scoringScript, scoring.ToString())
        File.WriteAllText(mergingScript, merging.ToString())

        let result =
            submit scoringScript []
            |> Result.bind (fun scoringJob ->
                submit mergingScript [ $"--dependency=afterok:{scoringJob}"; "--kill-on-invalid-dep=yes" ]
                |> Result.map (fun mergingJob -> scoringJob, mergingJob))

        match result with
        | Error line ->
            err.WriteLine line
            1
        | Ok(scoringJob, mergingJob) ->
            out.WriteLine
                $"submitted: {shards} shard(s) as slurm job {scoringJob}, the merge as job {mergingJob} (scripts and logs in {work})"

            if args.Contains QueryArgs.No_Wait then
                out.WriteLine
                    $"not waiting: the batch will be {target}; `squeue -j {scoringJob},{mergingJob}` shows the jobs"

                0
            else
                let mutable last = ""

                let report (states: string list) =
                    let scoringLeft = states |> List.filter (fun s -> s.StartsWith "waal-query ")
                    let running = scoringLeft |> List.filter (fun s -> s.EndsWith " R") |> List.length
                    let merge = states |> List.exists (fun s -> s.StartsWith "waal-query-merge ")
                    let mergeState = if merge then "waiting" else "over"

                    let line =
                        $"shards: {shards - scoringLeft.Length} done, {running} running, {scoringLeft.Length - running} pending; merge: {mergeState}"

                    if line <> last then
                        out.WriteLine line
                        last <- line

                let wait () =
                    Waal.Jobs.Slurm.waitFor
                        (TimeSpan.FromSeconds 1.0)
                        CancellationToken.None
                        [ scoringJob; mergingJob ]
                        "%j %t"
                        report
                    |> Result.map ignore
                    |> Result.mapError (slurmLine "squeue")

                match wait () with
                | Error line ->
                    err.WriteLine line
                    1
                | Ok() when File.Exists target && File.GetLastWriteTimeUtc target >= started ->
                    out.WriteLine(File.ReadAllText(Path.Combine(work, "logs", "merge.out")).TrimEnd())
                    0
                | Ok() ->
                    // The error lines of the tasks that failed, each naming its log.
                    let logs = Directory.GetFiles(Path.Combine(work, "logs"), "*.out") |> Array.sort

                    let errors =
                        [
                            for log in logs do
                                for l in Waal.Jobs.ErrorLine.allIn log do
                                    $"{l} (in {log})"
                        ]

                    if errors.IsEmpty then
                        let logs = Path.Combine(work, "logs")

                        err.WriteLine(
                            ExperimentError.line (
                                SlurmFailed(
                                    target,
                                    $"the jobs ended without writing the batch and without an error line (cancelled, killed, out of time or memory); see {logs}"
                                )
                            )
                        )
                    else
                        errors |> List.iter err.WriteLine

                    1

/// `waal query`.
let run (out: TextWriter) (err: TextWriter) (args: ParseResults<QueryArgs>) =
    let modes =
        [
            args.Contains QueryArgs.Shard
            args.Contains QueryArgs.Merge
            args.Contains QueryArgs.Slurm
        ]
        |> List.filter id
        |> List.length

    let slurmOnly =
        [
            args.Contains QueryArgs.No_Wait, "--no-wait"
            args.Contains QueryArgs.Partition, "--partition"
            args.Contains QueryArgs.Time, "--time"
            args.Contains QueryArgs.Cpus, "--cpus"
            args.Contains QueryArgs.Memory, "--memory"
            args.Contains QueryArgs.Account, "--account"
            args.Contains QueryArgs.Gpus, "--gpus"
            args.Contains QueryArgs.Sbatch_Args, "--sbatch-args"
        ]
        |> List.filter fst
        |> List.map snd

    if modes > 1 then
        err.WriteLine(CliError.usage "command line" "give one of --shard, --merge and --slurm")
        2
    elif not (args.Contains QueryArgs.Slurm) && not slurmOnly.IsEmpty then
        err.WriteLine(CliError.usage slurmOnly.Head "is an sbatch setting: it goes with --slurm N")
        2
    else
        match args.TryGetResult QueryArgs.Shard, args.TryGetResult QueryArgs.Slurm with
        | Some text, _ when (shardOf text).IsNone ->
            err.WriteLine(CliError.usage "--shard" $"expected S/N with 0 <= S < N, found '{text}'")
            2
        | _, Some n when n < 1 || n > 10000 ->
            err.WriteLine(CliError.usage "--slurm" $"expected a number of shards from 1 to 10000, found {n}")
            2
        | _, Some _ when args.TryGetResult QueryArgs.Cpus |> Option.exists (fun c -> c < 1 || c > 4096) ->
            let c = args.GetResult QueryArgs.Cpus
            err.WriteLine(CliError.usage "--cpus" $"expected 1 to 4096 CPUs per task, found {c}")
            2
        | _, Some _ when args.TryGetResult QueryArgs.Gpus |> Option.exists (fun g -> g < 1 || g > 64) ->
            let g = args.GetResult QueryArgs.Gpus
            err.WriteLine(CliError.usage "--gpus" $"expected 1 to 64 GPUs per task, found {g}")
            2
        | _ ->
            // The batch and the shard files never land in the run (the runner owns its folder) nor on a shard read.
            let folder = args.GetResult QueryArgs.Run_Folder

            let inputs =
                ("the run folder", folder)
                :: (args.GetResult(QueryArgs.Merge, defaultValue = [])
                    |> List.map (fun f -> "a shard file", f))

            match Outputs.refuse "--out" (args.GetResult QueryArgs.Out) inputs, args.TryGetResult QueryArgs.Slurm with
            | Error line, _ ->
                err.WriteLine line
                2
            | Ok(), Some n -> slurm out err args n
            | Ok(), None -> local out err args
