/// The experiment targets on a real Slurm cluster: one node (slurmctld + slurmd from Debian's slurm-wlm, munge)
/// started in a temporary folder by build/slurm-local.sh, driven through the real sbatch, squeue and scontrol.
module Waal.Build.Tests.Cluster

open System
open System.Diagnostics
open System.IO
open System.Net
open System.Net.Sockets
open System.Threading
open Expecto

let private fashion = Waal.Testing.Environment.fashion
let private repoRoot = Waal.Testing.Environment.repoRoot

/// A free TCP port on this machine (the cluster's daemons listen on two, so a cluster already running here is
/// left alone).
let private freePort () =
    use l = new TcpListener(IPAddress.Loopback, 0)
    l.Start()
    (l.LocalEndpoint :?> IPEndPoint).Port

/// Runs a program to its end with extra environment variables; the exit code and everything it printed.
let private exec (env: (string * string) list) (file: string) (args: string list) =
    Packages.run (Directory.GetCurrentDirectory()) file args env

/// The one-node cluster of this test run: started on first use, stopped by `stop` (Main, after the suite).
type private Cluster = { Folder: string; Conf: string }

let private cluster =
    lazy
        (let folder =
            Path.Combine(Path.GetTempPath(), "waal-slurm-" + Guid.NewGuid().ToString "N")

         let script = Path.Combine(repoRoot, "build", "slurm-local.sh")

         let code, log =
             exec
                 [
                     "WAAL_SLURMCTLD_PORT", string (freePort ())
                     "WAAL_SLURMD_PORT", string (freePort ())
                 ]
                 "bash"
                 [ script; "start"; folder ]

         if code <> 0 then
             failwith $"the local Slurm cluster did not start (build/slurm-local.sh start {folder}): {log}"

         {
             Folder = folder
             Conf = Path.Combine(folder, "slurm.conf")
         })

/// One folder for the suite's projects: they share the results folder, so the runner is staged (copied into
/// results/slurm/runner) once.
let private work =
    lazy
        (let dir =
            Path.Combine(Path.GetTempPath(), "waal-cluster-" + Guid.NewGuid().ToString "N")

         Directory.CreateDirectory dir |> ignore
         dir)

/// Stops the daemons by their pid files, if the cluster was started, and removes its folder.
let stop () =
    if cluster.IsValueCreated then
        let c = cluster.Value

        exec [] "bash" [ Path.Combine(repoRoot, "build", "slurm-local.sh"); "stop"; c.Folder ]
        |> ignore

        for folder in [ c.Folder; (if work.IsValueCreated then work.Value else "") ] do
            try
                if folder <> "" then
                    Directory.Delete(folder, true)
            with _ ->
                ()

let private slurm (command: string) (args: string list) =
    exec [ "SLURM_CONF", cluster.Value.Conf ] command args

/// `dotnet build PROJ -t:RunExperiments -p:WaalScheduler=slurm` with more properties, against the cluster.
let private build (proj: string) (properties: string list) =
    exec
        [ "SLURM_CONF", cluster.Value.Conf ]
        "dotnet"
        ([
            "build"
            proj
            "-t:RunExperiments"
            "-p:WaalScheduler=slurm"
            "-p:WaalSlurmPollSeconds=1"
            "-nologo"
            "-v:minimal"
            "-nodeReuse:false"
         ]
         @ properties)

let private project (items: string list) =
    let targets = Path.Combine(repoRoot, "build", "Waal.Experiments.targets")
    let body = items |> List.map (fun i -> "    " + i) |> String.concat "\n"
    $"<Project>\n  <Import Project=\"{targets}\" />\n  <ItemGroup>\n{body}\n  </ItemGroup>\n</Project>\n"

let private experiment (name: string) (data: string) (metadata: string) =
    $"<Experiment Include=\"{name}\" Dataset=\"fashion-mnist={data}\" Initial=\"40\" Query=\"20\" Epochs=\"1\" {metadata} />"

let private writeProject (name: string) (items: string list) =
    let proj = Path.Combine(work.Value, name + ".proj")
    File.WriteAllText(proj, project items)
    proj

let private results name =
    Path.Combine(work.Value, "results", name)

/// The columns of rounds.csv that a rerun reproduces (everything but the seconds).
let private accuracyColumns (folder: string) =
    let rows = File.ReadAllLines(Path.Combine(folder, "rounds.csv"))
    let header = rows[0].Split ','

    let keep =
        header
        |> Array.mapi (fun i h -> i, h)
        |> Array.filter (fun (_, h) -> not (h.EndsWith "_seconds"))
        |> Array.map fst

    rows
    |> Array.map (fun r -> let cells = r.Split ',' in keep |> Array.map (fun i -> cells[i]))

let private grid =
    test "a 2 x 2 grid runs as one sbatch job array, and a second build submits nothing" {
        let proj =
            writeProject
                "grid"
                [
                    for strategy in [ "random"; "margin" ] do
                        for seed in [ 1; 2 ] do
                            experiment
                                $"{strategy}-{seed}"
                                fashion
                                $"Strategy=\"{strategy}\" Seed=\"{seed}\" Rounds=\"1\" Pool=\"300\""
                ]

        let code, log = build proj [ "-p:WaalSlurmCpus=1" ]
        Expect.equal code 0 $"the grid's build: {log}"
        Expect.stringContains log "Waal: submitted 4 experiment(s) as slurm job" "one job for the four"
        Expect.stringContains log "4 done, 0 running, 0 pending" "it waited and showed progress"

        for strategy in [ "random"; "margin" ] do
            for seed in [ 1; 2 ] do
                let folder = results $"{strategy}-{seed}"
                let rows = File.ReadAllLines(Path.Combine(folder, "rounds.csv"))
                Expect.equal rows.Length 3 $"{strategy}-{seed}: header + rounds 0 and 1"
                Expect.isTrue (File.Exists(Path.Combine(folder, ".complete"))) $"{strategy}-{seed} complete"

        let script =
            File.ReadAllText(Path.Combine(work.Value, "results", "slurm", "grid.sbatch"))

        Expect.stringContains script "#SBATCH --array=0-3" "one array task per experiment"
        Expect.stringContains script "#SBATCH --requeue" "requeued on preemption"
        Expect.stringContains script "#SBATCH --cpus-per-task=1" "the CPUs asked for"

        let code, log = build proj [ "-p:WaalSlurmCpus=1" ]
        Expect.equal code 0 $"the second build: {log}"
        Expect.stringContains log "all 4 experiment(s) are up to date; nothing to run" "a no-op"
        Expect.isFalse (log.Contains "submitted") "nothing submitted"
    }

let private failing =
    test "a failing task fails the build with its error line; the next build resubmits only it" {
        let missing = Path.Combine(work.Value, "no-such-data")

        let proj =
            writeProject
                "failing"
                [
                    experiment "fine" fashion "Strategy=\"random\" Seed=\"1\" Rounds=\"0\" Pool=\"300\""
                    experiment "broken" missing "Strategy=\"random\" Seed=\"1\" Rounds=\"0\" Pool=\"300\""
                ]

        let code, log = build proj [ "-p:WaalSlurmCpus=1" ]
        Expect.notEqual code 0 $"the build fails: {log}"
        Expect.stringContains log "Experiment 'broken' (slurm task" "the failed task is named"
        Expect.stringContains log missing "with the runner's own error, which names the data folder"

        Expect.isTrue
            (Text.RegularExpressions.Regex.IsMatch(log, @"error [A-Z]+[0-9]+: Experiment 'broken'"))
            $"as an MSBuild error with the runner's code: {log}"

        Expect.isTrue (File.Exists(Path.Combine(results "fine", ".complete"))) "the other experiment completed"

        let code, log = build proj [ "-p:WaalSlurmCpus=1" ]
        Expect.notEqual code 0 "still failing"
        Expect.stringContains log "Waal: submitted 1 experiment(s)" "only the missing one is resubmitted"
        Expect.stringContains log ": broken" "and it is the broken one"
    }

let private requeued =
    test "a task requeued mid-training (scontrol requeue) resumes, and its result equals an uninterrupted run's" {
        let metadata =
            "Strategy=\"waal\" Seed=\"3\" Rounds=\"4\" Pool=\"1000\" Threads=\"2\""

        let proj = writeProject "requeue" [ experiment "long" fashion metadata ]
        let code, log = build proj [ "-p:WaalWait=false" ]
        Expect.equal code 0 $"submitted: {log}"

        let job =
            Text.RegularExpressions.Regex.Match(log, @"as slurm job ([0-9]+)").Groups[1].Value

        Expect.isNonEmpty job $"a job id in {log}"

        let taskLog =
            Path.Combine(work.Value, "results", "slurm", "logs", $"requeue-{job}_0.out")

        // Wait until round 1 is training, then requeue the task (Slurm sends SIGTERM, then puts it back in the
        // queue with a begin time about two minutes ahead, which the test brings forward).
        let clock = Stopwatch.StartNew()

        let training () =
            File.Exists taskLog && File.ReadAllText(taskLog).Contains "round 1 training"

        while not (training ()) && clock.Elapsed < TimeSpan.FromMinutes 3.0 do
            Thread.Sleep 200

        Expect.isTrue (training ()) "round 1 began training"
        printfn $"requeue: round 1 training after {clock.Elapsed.TotalSeconds:F1} s"
        let code, out = slurm "scontrol" [ "requeue"; $"{job}_0" ]
        Expect.equal code 0 $"scontrol requeue: {out}"

        // Requeued, it passes through completing (CG) to pending (PD, reason BeginTime); bring its start forward
        // until the task's log shows the second run's first line. (Right after `scontrol requeue` squeue may still
        // say R, or for a moment list nothing: the queue's state alone does not say the task ran again.)
        let again () =
            File.ReadAllText(taskLog).Contains "restart 1"

        let rec release () =
            if not (again ()) then
                if clock.Elapsed > TimeSpan.FromMinutes 5.0 then
                    failwith $"the requeued task never ran again: {File.ReadAllText taskLog}"

                let _, state = slurm "squeue" [ "-h"; "-r"; "-j"; job; "-o"; "%t" ]

                if state.Trim().StartsWith "PD" then
                    slurm "scontrol" [ "update"; $"jobid={job}_0"; "StartTime=now" ] |> ignore

                Thread.Sleep 300
                release ()

        release ()

        release ()
        printfn $"requeue: running again after {clock.Elapsed.TotalSeconds:F1} s"

        let code, log = build proj []
        Expect.equal code 0 $"collected: {log}"
        let text = File.ReadAllText taskLog
        Expect.stringContains text "error EXP016" "the first run stopped at a safe point on SIGTERM"
        Expect.stringContains text "restart 1" "the task ran again"
        Expect.stringContains text "resuming after" "and resumed from the folder instead of starting over"

        // The same experiment uninterrupted, by the same runner, on the CPU with the same threads.
        let reference = Path.Combine(work.Value, "reference")

        let runner = Path.Combine(work.Value, "results", "slurm", "runner", "waal.dll")

        let args =
            File.ReadAllLines(Path.Combine(results "long", "experiment.args"))
            |> List.ofArray

        printfn $"requeue: collected after {clock.Elapsed.TotalSeconds:F1} s"
        let code, out = exec [] "dotnet" ([ runner; "run" ] @ args @ [ "--out"; reference ])
        printfn $"requeue: reference run done after {clock.Elapsed.TotalSeconds:F1} s"
        Expect.equal code 0 $"the uninterrupted run: {out}"

        Expect.equal
            (File.ReadAllBytes(Path.Combine(results "long", "labels.json")))
            (File.ReadAllBytes(Path.Combine(reference, "labels.json")))
            "labels.json: byte for byte"

        Expect.equal
            (accuracyColumns (results "long"))
            (accuracyColumns reference)
            "rounds.csv, every column but the seconds"
    }

let private shardedQuery =
    test "a query in 4 shards on Slurm (an array, then a dependent merge) picks the one-process batch" {
        let waal =
            Path.Combine(repoRoot, "src", "Waal.Cli", "bin", "Release", "net10.0", "waal.dll")

        let run = Path.Combine(work.Value, "query-run")

        let code, out =
            exec
                []
                "dotnet"
                [
                    waal
                    "run"
                    "--dataset"
                    $"fashion-mnist={fashion}"
                    "--strategy"
                    "waal"
                    "--seed"
                    "4"
                    "--pool"
                    "2000"
                    "--initial"
                    "40"
                    "--query"
                    "20"
                    "--rounds"
                    "0"
                    "--epochs"
                    "1"
                    "--threads"
                    "1"
                    "--out"
                    run
                ]

        Expect.equal code 0 $"the run: {out}"
        let one = Path.Combine(work.Value, "one.json")
        let code, out = exec [] "dotnet" [ waal; "query"; run; "--out"; one ]
        Expect.equal code 0 $"the one-process query: {out}"
        let sharded = Path.Combine(work.Value, "sharded.json")

        let code, out =
            exec
                [ "SLURM_CONF", cluster.Value.Conf ]
                "dotnet"
                [ waal; "query"; run; "--slurm"; "4"; "--cpus"; "1"; "--out"; sharded ]

        Expect.equal code 0 $"the sharded query: {out}"
        Expect.stringContains out "submitted: 4 shard(s) as slurm job" "one array of 4"
        Expect.stringContains out "shards: 4 done" "it waited for the shards"

        for s in 0..3 do
            Expect.isTrue (File.Exists(Path.Combine(sharded + ".shards", $"shard-{s}.bin"))) $"shard {s} written"

        let indices (file: string) =
            File.ReadAllLines file |> Array.find (fun l -> l.Contains "\"indices\"")

        Expect.equal (indices sharded) (indices one) "the same batch, in the same order"
    }

/// The cluster tests, one at a time (they share the cluster and the results folder).
let all = testSequenced (testList "Slurm" [ grid; failing; requeued; shardedQuery ])
