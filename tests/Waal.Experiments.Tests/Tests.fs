module Waal.Experiments.Tests.Tests

open System
open System.IO
open Expecto
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Experiments

let private fashion = Waal.Testing.Environment.fashion

let private reference =
    let c = Datasets.reference "fashion-mnist" "waal" |> Result.defaultWith failwith

    { c with
        Settings =
            { c.Settings with
                DataDir = fashion
                Threads = 2
            }
    }

/// A configuration with its spec changed.
let private withSpec (f: ExperimentSpec -> ExperimentSpec) (c: Configuration) = { c with Spec = f c.Spec }

/// A small but real WAAL experiment: 1,500 pool images, 100 initial labels, 2 queries of 100, 1 epoch.
let private small seed =
    reference
    |> withSpec (fun s ->
        { s with
            PoolSize = Some 1500
            Initial = 100
            Query = 100
            Rounds = 2
            Seed = seed
            Train = { s.Train with Epochs = 1 }
        })

let private temp () =
    let dir =
        Path.Combine(Path.GetTempPath(), "waal-exp-tests-" + Guid.NewGuid().ToString "N")

    Directory.CreateDirectory dir |> ignore
    dir

let private ok what =
    function
    | Ok v -> v
    | Error e -> failtestf "%s: %s" what (ExperimentError.line e)

/// The accuracy columns of rounds.csv (round, labeled, test_accuracy), which must be reproducible.
let private accuracyColumns (folder: string) =
    File.ReadAllLines(Path.Combine(folder, "rounds.csv"))
    |> Array.map (fun l -> String.Join(",", l.Split(',')[0..2]))

let private labelLog (folder: string) =
    File.ReadAllText(Path.Combine(folder, "labels.json"))

let private queried (folder: string) =
    match ProgressFile.readProgress (Path.Combine(folder, "progress.json")) with
    | Ok p -> p.Records |> List.map (fun r -> r.Queried)
    | Error e -> failtest e

exception private InjectedCrash of int

/// glibc's heap statistics (all arenas).
[<Struct; Runtime.InteropServices.StructLayout(Runtime.InteropServices.LayoutKind.Sequential)>]
type private MallInfo2 =
    val Arena: unativeint
    val Ordblks: unativeint
    val Smblks: unativeint
    val Hblks: unativeint
    val Hblkhd: unativeint
    val Usmblks: unativeint
    val Fsmblks: unativeint
    val Uordblks: unativeint
    val Fordblks: unativeint
    val Keepcost: unativeint

[<Runtime.InteropServices.DllImport("libc")>]
extern MallInfo2 private mallinfo2()

/// Native memory in use (allocated and not freed) in MB: what a leak grows, whatever the allocator keeps.
let private nativeInUseMb () =
    let m = mallinfo2 ()
    float (uint64 m.Uordblks + uint64 m.Hblkhd) / 1048576.0

let private experiments =
    testList
        "Runner"
        [
            test "a run writes spec.json, rounds.csv with the exact header, the label log, progress and a checkpoint" {
                let dir = temp ()
                Runner.run (small 1L) dir false Runner.quiet |> ok "run"
                let lines = File.ReadAllLines(Path.Combine(dir, "rounds.csv"))

                Expect.equal
                    lines[0]
                    "round,labeled,test_accuracy,train_seconds,query_seconds,eval_seconds,train_iterations,stop_kappa,stop_agreement,stop_uncertainty,stopped"
                    "header: the six fixed columns, the training budget, the stopping signals"

                // 1,500 pool images, 100 + 100 k labels, 1 epoch: WAAL takes ceil(max(|L|,|U|) / 64) steps.
                Expect.equal
                    (lines[1..] |> Array.map (fun l -> l.Split(',')[6]))
                    ([| 100; 200; 300 |]
                     |> Array.map (fun l -> string (Pairing.batches (1500 - l) 64)))
                    "train_iterations (22, 21, 19)"

                Expect.equal
                    (lines[1..] |> Array.map (fun l -> l.Split(',')[0..1] |> String.concat ","))
                    [| "0,100"; "1,200"; "2,300" |]
                    "rounds and labels"

                let log =
                    LabelLogJson.ofString (labelLog dir)
                    |> Result.bind Pool.ofLog
                    |> Result.defaultWith (failwithf "%A")

                Expect.equal log.LabelledCount 300 "the label log holds every label"

                Expect.equal
                    (File.ReadAllText(Path.Combine(dir, "checkpoint", "latest")))
                    "round-002"
                    "checkpoint of the last round"

                Expect.isTrue (File.Exists(Path.Combine(dir, "checkpoint", "round-002", "critic.dat"))) "critic weights"

                // diagnostics.csv: per query, the batch's class histogram from the label log, its entropy, WAAL's
                // signals.
                let diagnostics = File.ReadAllLines(Path.Combine(dir, "diagnostics.csv"))
                let header = diagnostics[0].Split ','

                Expect.equal
                    header[13..]
                    [|
                        "batch_entropy_bits"
                        "critic_auc"
                        "critic_term_sd"
                        "uncertainty_sd"
                        "score_uncertainty_spearman"
                        "wgap_first"
                        "wgap_middle"
                        "wgap_last"
                        "critic_moved"
                        "grad_ratio"
                        "critic_off_overlap"
                    |]
                    "the columns after the class counts (no critic_holdout_auc without --critic-holdout)"

                Expect.equal diagnostics.Length 3 "two queries"

                let progress =
                    ProgressFile.readProgress (Path.Combine(dir, "progress.json"))
                    |> Result.defaultWith failwith

                for row, record in Array.zip diagnostics[1..] (progress.Records |> List.take 2 |> Array.ofList) do
                    let cells = row.Split ','
                    let counts = cells[3..12] |> Array.map int

                    let expected =
                        Metrics.histogram 10 (record.Queried |> Array.choose (Pool.labelOf log))

                    Expect.equal counts expected $"round {record.Round}: the class histogram of its batch"
                    Expect.equal (Array.sum counts) 100 "the whole batch"
                    let auc = float cells[14]
                    Expect.isTrue (auc >= 0.0 && auc <= 1.0) $"an AUC, found {auc}"

                    Expect.equal
                        (record.Signals |> List.map fst |> List.length)
                        (header.Length - 14)
                        "every signal in progress.json"

                Expect.isEmpty (Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories)) "no temporary files left"
                let spec = Datasets.readSpec (File.ReadAllText(Path.Combine(dir, "spec.json")))
                Expect.equal spec (Ok(small 1L)) "spec.json reads back as the configuration"
                Directory.Delete(dir, true)
            }

            test "the same seed twice gives identical accuracies, queried indices and label logs; another seed differs" {
                let a, b, c = temp (), temp (), temp ()
                Runner.run (small 7L) a false Runner.quiet |> ok "first"
                Runner.run (small 7L) b false Runner.quiet |> ok "second"
                Runner.run (small 8L) c false Runner.quiet |> ok "other seed"
                Expect.equal (accuracyColumns b) (accuracyColumns a) "accuracy columns"
                Expect.equal (queried b) (queried a) "queried indices"
                Expect.equal (labelLog b) (labelLog a) "label log"
                Expect.notEqual (labelLog c) (labelLog a) "a different seed labels other items"

                for d in [ a; b; c ] do
                    Directory.Delete(d, true)
            }

            test "a run folder whose spec says auto keeps the network it recorded: resume and the model use it" {
                // A folder of 1x28x28 images made when "auto" picked small-cnn for folders (it picks resnet now):
                // made here by naming small-cnn, stopping after round 0, and writing the spec as that older run would
                // have. Without the record, resume and the model would build a resnet.
                let data, dir, fresh = temp (), temp (), temp ()

                let train, _ =
                    Load.fashionMnist fashion
                    |> Result.defaultWith (fun e -> failtest (DataError.line e))

                Waal.Testing.ImageFolders.write
                    Waal.Testing.ImageFolders.GreyPng
                    (Dataset.take 300 train)
                    [| "top"; "trouser"; "pullover" |]
                    20
                    data
                |> ignore

                let config (network: string) =
                    Waal.Cli.CommandLine.ofCommandLine
                        [
                            "--dataset"
                            $"folder={data}"
                            "--network"
                            network
                            "--initial"
                            "10"
                            "--query"
                            "10"
                            "--rounds"
                            "2"
                            "--epochs"
                            "1"
                            "--floor"
                            "64"
                            "--threads"
                            "2"
                        ]
                    |> Result.defaultWith failtest

                let crashing =
                    { Runner.quiet with
                        AfterRound =
                            fun r ->
                                if r.Round = 0 then
                                    raise (InjectedCrash r.Round)
                    }

                Expect.throwsT<InjectedCrash>
                    (fun () -> Runner.run (config "small-cnn") dir false crashing |> ignore)
                    "stopped after round 0"

                let specPath = Path.Combine(dir, "spec.json")
                let text = File.ReadAllText specPath
                Expect.equal (SpecJson.resolvedNetwork text) (Some "small-cnn") "spec.json records the network"
                let given = "\"network\": \"small-cnn\""
                Expect.stringContains text given "as given"
                File.WriteAllText(specPath, text.Replace(given, "\"network\": \"auto\""))

                Runner.resume dir Runner.quiet |> ok "resume"

                Expect.equal
                    (File.ReadAllLines(Path.Combine(dir, "rounds.csv"))).Length
                    4
                    "rounds 0 to 2, as the spec says"

                match Model.load dir with
                | Ok m ->
                    use m = m
                    Expect.equal m.Info.Network "small-cnn" "the run's model is the recorded network's"
                | Error e -> failtest $"the run folder's model: {Model.ModelError.line e}"

                // A new run with auto records what auto picks.
                Runner.run (config "auto") fresh false Runner.quiet |> ok "auto"

                Expect.equal
                    (SpecJson.resolvedNetwork (File.ReadAllText(Path.Combine(fresh, "spec.json"))))
                    (Some "resnet")
                    "auto on a folder records resnet"

                for d in [ data; dir; fresh ] do
                    Directory.Delete(d, true)
            }

            test "a failure injected after round 1, then resume, gives the uninterrupted result" {
                let whole, broken = temp (), temp ()
                Runner.run (small 11L) whole false Runner.quiet |> ok "uninterrupted"

                let crashing =
                    { Runner.quiet with
                        AfterRound =
                            fun r ->
                                if r.Round = 1 then
                                    raise (InjectedCrash r.Round)
                    }

                Expect.throwsT<InjectedCrash>
                    (fun () -> Runner.run (small 11L) broken false crashing |> ignore)
                    "the run crashes"

                Expect.equal
                    (File.ReadAllLines(Path.Combine(broken, "rounds.csv"))).Length
                    3
                    "rounds 0 and 1 were persisted"

                Runner.resume broken Runner.quiet |> ok "resume"
                Expect.equal (accuracyColumns broken) (accuracyColumns whole) "accuracy columns"
                Expect.equal (queried broken) (queried whole) "queried indices"
                Expect.equal (labelLog broken) (labelLog whole) "label log"
                Runner.resume broken Runner.quiet |> ok "resuming a finished run"
                Expect.equal (accuracyColumns broken) (accuracyColumns whole) "a finished run resumes to itself"
                Directory.Delete(whole, true)
                Directory.Delete(broken, true)
            }

            test "a folder that holds an experiment is refused unless forced; bad specs and folders are typed errors" {
                let dir = temp ()
                let tiny = small 1L |> withSpec (fun s -> { s with Rounds = 0 })
                Runner.run tiny dir false Runner.quiet |> ok "first"
                let before = File.ReadAllText(Path.Combine(dir, "rounds.csv"))

                match Runner.run tiny dir false Runner.quiet with
                | Error(OutputExists _ as e) -> Expect.stringStarts (ExperimentError.line e) "error EXP004: " "code"
                | other -> failtestf "expected OutputExists, found %A" other

                Expect.equal (File.ReadAllText(Path.Combine(dir, "rounds.csv"))) before "the refused run wrote nothing"

                Runner.run (tiny |> withSpec (fun s -> { s with Seed = 2L })) dir true Runner.quiet
                |> ok "forced"

                let expectCode code result =
                    match result with
                    | Error e -> Expect.stringStarts (ExperimentError.line e) $"error {code}: " (ExperimentError.line e)
                    | Ok() -> failtestf "expected %s" code

                let runWith f =
                    Runner.run (tiny |> withSpec f) (temp ()) false Runner.quiet

                expectCode "EXP001" (runWith (fun s -> { s with Query = 0 }))
                expectCode "EXP002" (runWith (fun s -> { s with Strategy = "oracle" }))
                expectCode "EXP003" (runWith (fun s -> { s with PoolSize = Some 70000 }))
                expectCode "EXP003" (runWith (fun s -> { s with Initial = 2000 }))

                expectCode
                    "DATA001"
                    (Runner.run
                        { tiny with
                            Settings =
                                { tiny.Settings with
                                    DataDir = "/nonexistent"
                                }
                        }
                        (temp ())
                        false
                        Runner.quiet)

                expectCode "EXP005" (Runner.resume (temp ()) Runner.quiet)
                File.WriteAllText(Path.Combine(dir, "spec.json"), """{"dataset": 42}""")
                expectCode "EXP005" (Runner.resume dir Runner.quiet)
                Directory.Delete(dir, true)
            }
        ]

let private persistence =
    testList
        "Persistence"
        [
            test
                "a run resumed from a batch that waited for labels gives the uninterrupted result, without proposing it again" {
                let whole, waiting = temp (), temp ()
                Runner.run (small 5L) whole false Runner.quiet |> ok "uninterrupted"

                let progress =
                    ProgressFile.readProgress (Path.Combine(whole, "progress.json"))
                    |> Result.defaultWith failtest

                // The state right after round 0's proposal: the initial labels, and round 0's batch pending.
                let initial = (Pool.log progress.Pool).Batches.Head

                let pool =
                    Pool.create progress.Pool.Size progress.Pool.Classes
                    |> Result.bind (Pool.label 0 initial.Items)
                    |> Result.defaultWith (failwithf "%A")

                let pending =
                    {
                        Pool = pool
                        Records = []
                        Pending = Some { Record = progress.Records.Head }
                    }

                File.Copy(Path.Combine(whole, "spec.json"), Path.Combine(waiting, "spec.json"))
                RunFolder.saveProgress { Folder = waiting } None pending.Pool.Size pending
                let mutable trainings = 0

                let counting =
                    { Runner.quiet with
                        Sink =
                            { ProgressSink.none with
                                Start =
                                    fun phase _ ->
                                        if phase.StartsWith "round" && phase.EndsWith "epoch 1/1" then
                                            trainings <- trainings + 1
                            }
                    }

                Runner.resume waiting counting |> ok "resume"
                Expect.equal trainings 2 "rounds 1 and 2 trained; round 0's batch was not proposed again"
                Expect.equal (accuracyColumns waiting) (accuracyColumns whole) "accuracy columns"
                Expect.equal (queried waiting) (queried whole) "queried indices"
                Expect.equal (labelLog waiting) (labelLog whole) "label log"

                for d in [ whole; waiting ] do
                    Directory.Delete(d, true)
            }

            test "progress.json fields that contradict the label log are refused by resume, naming the field" {
                let dir = temp ()

                Runner.run (small 3L |> withSpec (fun s -> { s with Rounds = 1 })) dir false Runner.quiet
                |> ok "run"

                let path = Path.Combine(dir, "progress.json")
                let good = File.ReadAllText path
                let first = (queried dir).Head[0]

                let refused (edit: string -> string) (field: string) =
                    File.WriteAllText(path, edit good)

                    match Runner.resume dir Runner.quiet with
                    | Error(NotAnExperiment(p, detail) as e) ->
                        Expect.equal p path "the file is named"
                        Expect.stringContains detail field $"the field is named: {ExperimentError.line e}"
                    | other -> failtestf "expected EXP005 for %s, found %A" field other

                refused (fun t -> t.Replace($"\"queried\":[{first},", "\"queried\":[999999,")) "records[0].queried"
                refused (fun t -> t.Replace("\"labelled\":100", "\"labelled\":7")) "records[0].labelled"

                refused
                    (fun t ->
                        t.Replace(
                            "\"pending\":null",
                            $"\"pending\":{{\"round\":2,\"labelled\":200,\"testAccuracy\":0.5,\"trainSeconds\":1,\"querySeconds\":1,\"evalSeconds\":1,\"trainIterations\":5,\"queried\":[{first}]}}"
                        ))
                    "pending.queried"

                File.WriteAllText(path, good)
                Runner.resume dir Runner.quiet |> ok "the untouched file resumes"
                Directory.Delete(dir, true)
            }

            test "a folder held by another writer is refused with EXP009 naming the holder, and nothing is written" {
                let dir = temp ()
                let layout: RunFolder.Layout = { Folder = dir }

                use hold =
                    RunFolder.lockFolder layout |> Result.defaultWith (fun e -> failtest $"%A{e}")

                let before = Directory.GetFiles(dir, "*", SearchOption.AllDirectories) |> Array.sort

                match Runner.run (small 1L) dir true Runner.quiet with
                | Error(FolderBusy _ as e) ->
                    Expect.stringStarts (ExperimentError.line e) "error EXP009: " "code"
                    Expect.stringContains (ExperimentError.line e) $"process {Environment.ProcessId}" "the holder"
                | other -> failtestf "expected FolderBusy, found %A" other

                Expect.equal
                    (Directory.GetFiles(dir, "*", SearchOption.AllDirectories) |> Array.sort)
                    before
                    "nothing written"

                (hold :> IDisposable).Dispose()

                Runner.run (small 1L |> withSpec (fun s -> { s with Rounds = 0 })) dir true Runner.quiet
                |> ok "free again"

                Directory.Delete(dir, true)
            }

            test "native memory stays flat over 10 cancelled trainings of a large network" {
                // CIFAR-sized images take the VGG network (about 15 M parameters): a training left to the finaliser
                // on each cancellation would keep its weights, gradients and momentum, over 100 MB each time.
                let rng = Random 5
                let images = Array.zeroCreate<byte>(300 * 3 * 32 * 32)
                rng.NextBytes images
                let labels = Array.init 300 (fun i -> i % 10)

                let data =
                    Dataset.create "synthetic" images labels 3 32 32 10
                    |> Result.defaultWith (failwithf "%A")

                let config =
                    Datasets.reference "cifar10" "random"
                    |> Result.defaultWith failwith
                    |> fun c ->
                        { c with
                            Spec =
                                { c.Spec with
                                    Train = { c.Spec.Train with Batch = 2 }
                                }
                            Settings = { c.Settings with Threads = 2 }
                        }

                use cts0 = new Threading.CancellationTokenSource()
                let mutable token = cts0.Token
                let mutable cancel = ignore

                let sink =
                    { ProgressSink.none with
                        Advance = fun _ -> cancel ()
                    }

                use session =
                    Session.create config data None sink
                    |> Result.defaultWith (ExperimentError.message >> failtest)

                session.Label(Array.init 100 (fun i -> i, labels[i]))
                |> Result.defaultWith (ExperimentError.message >> failtest)

                let cancelledTraining () =
                    use cts = new Threading.CancellationTokenSource()
                    cancel <- fun () -> cts.Cancel()

                    Expect.throwsT<OperationCanceledException>
                        (fun () -> session.Propose(cts.Token, 10) |> ignore)
                        "cancelled"

                let rss () = nativeInUseMb ()

                for _ in 1..3 do
                    cancelledTraining ()

                // No .NET collection during the measured trainings: networks left to the finaliser would stay.
                GC.Collect()
                GC.WaitForPendingFinalizers()
                let before = rss ()
                Expect.isTrue (GC.TryStartNoGCRegion(200L * 1024L * 1024L)) "a region without collections"

                for _ in 1..10 do
                    cancelledTraining ()

                let collected = Runtime.GCSettings.LatencyMode <> Runtime.GCLatencyMode.NoGCRegion

                let growth = rss () - before

                if not collected then
                    GC.EndNoGCRegion()

                Expect.isFalse
                    collected
                    "the trainings allocated less than 200 MB of managed memory (no collection ran)"

                Expect.isLessThan growth 50.0 $"native memory in use grew {growth:F0} MB over 10 cancelled trainings"
                Expect.isTrue session.Model.IsNone "no half-trained model is kept"
                Expect.equal session.Progress.Records [] "the state is unchanged"
            }
        ]

let private report =
    testList
        "Report"
        [
            test "two seeds make one group with mean +- std; report.md and a PNG learning curve are written" {
                let a, b, out = temp (), temp (), temp ()

                let tiny seed =
                    small seed |> withSpec (fun s -> { s with Rounds = 1 })

                Runner.run (tiny 1L) a false Runner.quiet |> ok "seed 1"
                Runner.run (tiny 2L) b false Runner.quiet |> ok "seed 2"

                match Report.write ReportRuns.TestMetric [ a; b ] out with
                | Error e -> failtest $"%A{e}"
                | Ok(md, png) ->
                    let text = File.ReadAllText md
                    Expect.stringContains text "| waal | 2 | " "one group of two runs"
                    Expect.stringContains text " +- " "mean +- std"
                    Expect.stringContains text "AUBC" "area under the budget curve"
                    Expect.stringContains text "training iterations per round" "the training budget"
                    Expect.stringContains text "## Machine and time" "the machine and the time have a section"

                    Expect.stringContains
                        text
                        $"{Environment.ProcessorCount} logical processors"
                        "the machine the runs recorded"

                    Expect.stringContains text "| waal | 2 | 2 | " "runs, threads and seconds a run"
                    Expect.stringContains text "## WAAL's critic" "the critic's diagnostics have a section"
                    Expect.stringContains text "| waal | 0 | " "a row for the queried round"
                    let bytes = File.ReadAllBytes png
                    Expect.equal bytes[1..3] "PNG"B "a PNG file"
                    Expect.isGreaterThan bytes.Length 10000 "with a picture in it"

                let runs = [ a; b ] |> List.map (ReportRuns.readRun >> Result.defaultWith failwith)
                let g = ReportRuns.group runs
                Expect.equal g.Length 1 "runs differing only in the seed group together"

                for r in runs do
                    let auc = r.Diagnostics |> Map.find 0 |> Map.find "critic_auc"
                    Expect.isTrue (auc >= 0.0 && auc <= 1.0) $"diagnostics.csv's critic_auc is read as a number: {auc}"

                let acc l =
                    runs
                    |> List.map (fun r -> (r.Rows |> List.find (fun x -> x.Labelled = l)).TestAccuracy)

                let m, s = Metrics.meanStd (acc 100)
                Expect.floatClose Accuracy.veryHigh m (List.average (acc 100)) "mean"
                Expect.isGreaterThanOrEqual s 0.0 "std"

                match Report.write ReportRuns.TestMetric [ a; temp () ] out with
                | Error(Report.RunUnreadable e) -> Expect.stringContains e "spec.json" "a folder without a run is named"
                | other -> failtest $"expected an unreadable run, got %A{other}"

                for d in [ a; b; out ] do
                    Directory.Delete(d, true)
            }
        ]

/// Kirsch et al.'s redundant pool: every image three times with noise; diagnostics.csv counts what a batch wasted.
let private repeated =
    test "a repeated pool: three noisy copies per image, and diagnostics.csv's waste agrees with labels.json" {
        let dir = temp ()

        try
            let config =
                small 5L
                |> withSpec (fun s ->
                    { s with
                        Strategy = "margin"
                        PoolSize = Some 300
                        Repeat = 3
                        RepeatNoise = 0.03
                        Initial = 40
                        Query = 60
                        Rounds = 1
                    })

            Runner.run config dir false Runner.quiet |> ok "repeated run"

            let log =
                File.ReadAllBytes(Path.Combine(dir, "labels.json"))
                |> LabelLogJson.ofBytes
                |> Result.defaultWith (fun e -> failtest $"%A{e}")

            Expect.equal log.PoolSize 900 "300 images, three copies each"
            let initial = log.Batches |> List.find (fun b -> b.Round = 0)
            let batch = log.Batches |> List.find (fun b -> b.Round = 1)

            let originals (items: (int * int)[]) =
                items |> Array.map (fun (i, _) -> i % 300)

            let distinct = batch.Items |> originals |> Array.distinct
            let known = initial.Items |> originals |> Set.ofArray

            let labelledCopies =
                batch.Items |> originals |> Array.filter known.Contains |> Array.length

            let lines = File.ReadAllLines(Path.Combine(dir, "diagnostics.csv"))
            let header = lines[0].Split ','
            let row = lines[1].Split ','

            let cell name =
                int row[Array.findIndex ((=) name) header]

            Expect.equal (cell "batch_repeats") (60 - distinct.Length) "repeats: the batch less its distinct images"
            Expect.equal (cell "batch_labelled_copies") labelledCopies "copies of images labelled at round 0"

            // Each copy keeps its image's label: the oracle's labels of copies agree.
            let labelOf =
                dict
                    [
                        for b in log.Batches do
                            yield! b.Items
                    ]

            for (i, l) in batch.Items do
                for c in 0..2 do
                    match labelOf.TryGetValue(i % 300 + c * 300) with
                    | true, other -> Expect.equal other l $"copies of image {i % 300} share a label"
                    | _ -> ()

            Expect.stringContains
                (File.ReadAllText(Path.Combine(dir, "spec.json")))
                "\"repeat\": 3"
                "spec.json records the copies"
        finally
            Directory.Delete(dir, true)
    }

/// What makes "the plan came before the runs" a fact: spec.json names the commit that built the run and when
/// it started; the commit is the repository's HEAD (marked -dirty when tracked files differ from it).
let private provenance =
    test "spec.json records the commit that built the run and its start time" {
        let dir = temp ()

        try
            let before = DateTime.UtcNow.AddSeconds -1.0

            let config =
                small 9L
                |> withSpec (fun s ->
                    { s with
                        Strategy = "random"
                        PoolSize = Some 300
                        Initial = 40
                        Query = 40
                        Rounds = 1
                    })

            Runner.run config dir false Runner.quiet |> ok "run"
            let after = DateTime.UtcNow.AddSeconds 1.0

            use doc =
                Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "spec.json")))

            let versions = doc.RootElement.GetProperty "versions"
            let commit = versions.GetProperty("commit").GetString()

            let started =
                DateTime.Parse(
                    versions.GetProperty("started").GetString(),
                    Globalization.CultureInfo.InvariantCulture,
                    Globalization.DateTimeStyles.AdjustToUniversal
                )

            Expect.isTrue (started >= before && started <= after) $"started {started:o} within the run"

            let git (args: string) =
                let info =
                    Diagnostics.ProcessStartInfo("git", args, WorkingDirectory = Waal.Testing.Environment.repoRoot)

                info.RedirectStandardOutput <- true
                use p = Diagnostics.Process.Start info
                let out = p.StandardOutput.ReadToEnd().Trim()
                p.WaitForExit()
                out

            let head = git "rev-parse HEAD"
            Expect.isMatch commit "^[0-9a-f]{40}(-dirty)?$" "a commit id, -dirty when the tree differed"
            Expect.equal commit[..39] head "the commit the test's build came from"

            // Built from a clean tree (as CI's clone is), the commit is exact.
            if git "status --porcelain --untracked-files=no" = "" then
                Expect.equal commit head "a clean tree: no -dirty"
        finally
            Directory.Delete(dir, true)
    }

/// The imbalanced pool: the rare classes keep the first tenth of their pool images; validation is untouched.
let private imbalanced =
    test "--rare-classes keeps the first tenth of those classes in the pool, and nothing else changes" {
        let dir = temp ()

        try
            let config =
                small 4L
                |> withSpec (fun s ->
                    { s with
                        Strategy = "random"
                        PoolSize = Some 600
                        Validation = 200
                        RareClasses = [ 0; 4; 8 ]
                        RareKeep = 0.1
                        Initial = 30
                        Query = 30
                        Rounds = 1
                    })

            let train =
                match Load.fashionMnist Waal.Testing.Environment.fashion with
                | Ok(t, _) -> t
                | Error e -> failtest (DataError.line e)

            let first600 = train.Labels[..599]

            let count c =
                first600 |> Array.filter ((=) c) |> Array.length

            let expected =
                [
                    for c in 0..9 ->
                        if c = 0 || c = 4 || c = 8 then
                            int (ceil (0.1 * float (count c)))
                        else
                            count c
                ]

            match Workbench.load config with
            | Error e -> failtest (ExperimentError.line e)
            | Ok inputs ->
                let labels = inputs.PoolImages.Labels
                Expect.equal [ for c in 0..9 -> labels |> Array.filter ((=) c) |> Array.length ] expected "per class"

                // The rare classes' kept images are their first ones, in pool order (same pixels as the originals).
                let firstOf c = Array.findIndex ((=) c) first600
                let keptFirst c = Array.findIndex ((=) c) labels
                let size = 28 * 28

                for c in [ 0; 4; 8 ] do
                    Expect.sequenceEqual
                        inputs.PoolImages.Images[keptFirst c * size .. keptFirst c * size + size - 1]
                        train.Images[firstOf c * size .. firstOf c * size + size - 1]
                        $"class {c}'s first image"

                // The validation split is the 200 images after the 600 of the pool, untouched.
                Expect.sequenceEqual inputs.Validation.Value.Labels train.Labels[600..799] "validation untouched"

            Runner.run config dir false Runner.quiet |> ok "run"

            Expect.stringContains
                (File.ReadAllText(Path.Combine(dir, "spec.json")))
                "\"rareClasses\": \"0,4,8\""
                "spec.json records the rare classes"
        finally
            Directory.Delete(dir, true)
    }

let private labels =
    testList
        "Report labels"
        [
            test "groups of one strategy are labelled by what differs; seeds alone make one group" {
                let run strategy budget epochs seed : ReportRuns.Run =
                    let d = reference.Spec

                    {
                        Folder = $"{strategy}-{seed}"
                        Spec =
                            { d with
                                Strategy = strategy
                                Seed = seed
                                Train =
                                    { d.Train with
                                        Budget = budget
                                        Epochs = epochs
                                    }
                            }
                        Rows = []
                        Iterations = []
                        Stopped = None
                        Diagnostics = Map.empty
                        Machine = ""
                        Threads = 0
                    }

                let groups =
                    ReportRuns.group
                        [
                            run "random" EpochsOverLabelled 10 1L
                            run "random" EpochsOverLabelled 10 2L
                            run "random" MatchWaal 2 1L
                            run "waal" EpochsOverLabelled 2 1L
                        ]

                Expect.equal
                    (groups |> List.map (fun g -> g.Label, g.Runs.Length))
                    [ "random (10 epochs)", 2; "random (match-waal x2)", 1; "waal", 1 ]
                    "labels and sizes"
            }

            test "a label names only the settings that apply: no critic rate under SGD, no weight with the critic off" {
                let waal seed (f: MethodOptions -> MethodOptions) : ReportRuns.Run =
                    let d = reference.Spec

                    {
                        Folder = $"waal-{seed}"
                        Spec =
                            { d with
                                Strategy = "waal"
                                Seed = seed
                                Method = f d.Method
                            }
                        Rows = []
                        Iterations = []
                        Stopped = None
                        Diagnostics = Map.empty
                        Machine = ""
                        Threads = 0
                    }

                let groups =
                    ReportRuns.group
                        [
                            waal 1L (fun m ->
                                { m with
                                    CriticOptimiser = CriticSgd
                                    Score = UncertaintyOnly
                                })
                            waal 1L (fun m ->
                                { m with
                                    CriticOptimiser = CriticAdam
                                    CriticLearningRate = 1e-4
                                    Score = Combined
                                    Selection = 3.0
                                })
                        ]

                Expect.equal
                    (groups |> List.map (fun g -> g.Label))
                    [
                        "waal (waal-score uncertainty, critic-optimiser sgd)"
                        "waal (selection 3, waal-score combined, critic-optimiser adam, critic-learning-rate 0.0001, score-scale paper)"
                    ]
                    "each label lists what differs and applies to it"
            }
        ]

/// A folder dataset end to end: colour PNGs of 3 classes written from Fashion-MNIST, resized to 16x16 (the
/// residual net), the test split held out; WAAL for two queries.
let private folders =
    testList
        "Folder datasets"
        [
            test
                "a pool read a batch at a time from the decode cache file trains and queries exactly as one held in memory" {
                let data = temp ()
                let cache = temp ()
                let before = Environment.GetEnvironmentVariable "WAAL_IMAGE_CACHE"

                try
                    let train, _ =
                        Load.fashionMnist fashion
                        |> Result.defaultWith (fun e -> failtest (DataError.line e))

                    Waal.Testing.ImageFolders.write
                        Waal.Testing.ImageFolders.GreyPng
                        (Dataset.take 400 train)
                        [| "top"; "trouser"; "pullover" |]
                        30
                        data
                    |> ignore

                    let run (cacheSetting: string) =
                        Environment.SetEnvironmentVariable("WAAL_IMAGE_CACHE", cacheSetting)
                        let out = temp ()

                        let config =
                            Waal.Cli.CommandLine.ofCommandLine
                                [
                                    "--dataset"
                                    $"folder={data}"
                                    "--initial"
                                    "10"
                                    "--query"
                                    "10"
                                    "--rounds"
                                    "2"
                                    "--epochs"
                                    "1"
                                    "--floor"
                                    "64"
                                    "--threads"
                                    "2"
                                ]
                            |> Result.defaultWith failtest

                        Runner.run config out false Runner.quiet |> ok "folder run"

                        let rounds =
                            File.ReadAllLines(Path.Combine(out, "rounds.csv"))
                            |> Array.map (fun l -> String.Join(",", l.Split(',')[0..2]))

                        let labels = File.ReadAllText(Path.Combine(out, "labels.json"))
                        let norm = File.ReadAllText(Path.Combine(out, "dataset.json"))
                        Directory.Delete(out, true)
                        rounds, labels, norm

                    let stored = run cache
                    Expect.isNonEmpty (Directory.GetFiles(cache, "*.u8")) "the pixels went to the cache file"
                    let storedAgain = run cache
                    let inMemory = run "off"
                    Expect.equal storedAgain stored "read back from the cache: the same rounds, labels, normalisation"
                    Expect.equal inMemory stored "held in memory: the same rounds, labels, normalisation"
                finally
                    Environment.SetEnvironmentVariable("WAAL_IMAGE_CACHE", before)
                    Directory.Delete(data, true)
                    Directory.Delete(cache, true)
            }

            test "a folder run trains the residual net and names every file and class in its results" {
                let data = temp ()
                let out = temp ()

                try
                    let train, _ =
                        Load.fashionMnist fashion
                        |> Result.defaultWith (fun e -> failtest (DataError.line e))

                    let sample = Dataset.take 600 train
                    let names = [| "shirt"; "trouser"; "pullover" |]

                    Waal.Testing.ImageFolders.write (Waal.Testing.ImageFolders.ColourPngScaled 20) sample names 40 data
                    |> ignore

                    let config =
                        Waal.Cli.CommandLine.ofCommandLine
                            [
                                "--dataset"
                                $"folder={data}"
                                "--image-size"
                                "16"
                                "--initial"
                                "12"
                                "--query"
                                "12"
                                "--rounds"
                                "2"
                                "--epochs"
                                "2"
                                "--floor"
                                "64"
                                "--batch-size"
                                "16"
                                "--threads"
                                "2"
                            ]
                        |> Result.defaultWith failtest

                    Runner.run config out false Runner.quiet |> ok "folder run"

                    let rounds = File.ReadAllLines(Path.Combine(out, "rounds.csv"))
                    Expect.equal rounds.Length 4 "three rounds"

                    use labels =
                        Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "labels.json")))

                    let classNames =
                        labels.RootElement.GetProperty("classNames").EnumerateArray()
                        |> Seq.map (fun e -> e.GetString())
                        |> Array.ofSeq

                    Expect.equal classNames [| "pullover"; "shirt"; "trouser" |] "class names, ordinal order"

                    let items =
                        labels.RootElement.GetProperty("batches").EnumerateArray()
                        |> Seq.collect (fun b -> b.GetProperty("items").EnumerateArray())
                        |> Array.ofSeq

                    Expect.equal items.Length 36 "12 + 2 x 12 labels"

                    for item in items do
                        let path = item[2].GetString()
                        let cls = item[3].GetString()
                        Expect.equal classNames[item[1].GetInt32()] cls "the class name is the label's"
                        Expect.stringStarts path (cls + "/") "the oracle's label is the file's folder"

                        Expect.isTrue
                            (File.Exists(Path.Combine(data, path)))
                            $"{path} resolves under the dataset folder"

                    use dataset =
                        Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "dataset.json")))

                    let root = dataset.RootElement
                    Expect.equal (root.GetProperty("channels").GetInt32()) 3 "RGB"
                    Expect.equal (root.GetProperty("height").GetInt32()) 16 "resized"
                    // 40 per class, 20% held out: 8 per class.
                    Expect.equal (root.GetProperty("testSize").GetInt32()) 24 "held out"
                    Expect.equal (root.GetProperty("poolSize").GetInt32()) 96 "pool"
                    Expect.equal (root.GetProperty("normalisation").GetProperty("mean").GetArrayLength()) 3 "3 means"

                    let progress = File.ReadAllText(Path.Combine(out, "progress.json"))
                    Expect.stringContains progress "\"queriedFiles\"" "queried files in progress.json"

                    let spec = File.ReadAllText(Path.Combine(out, "spec.json"))
                    Expect.stringContains spec "\"imageSize\": 16" "the image options are in spec.json"

                    // The model afterwards: exported, it predicts the held-out test files exactly as the run's
                    // final evaluation did (the same accuracy, written exactly), and the run folder itself
                    // predicts the same probabilities as the exported model.
                    let modelDir = Path.Combine(out, "model")

                    let info =
                        ModelExport.export out modelDir
                        |> Result.defaultWith (fun e -> failtest (Model.ModelError.line e))

                    Expect.equal (info.Network, info.Round, info.ImageSize) ("resnet", 2, 16) "the last round's resnet"

                    // model.json reads back; an unknown accuracy (a pending round) is null, not a crash.
                    match Model.ofJson "m" (Text.Encoding.UTF8.GetString(Model.toJson info)) with
                    | Ok back -> Expect.equal back info "model.json round trip"
                    | Error e -> failtest (Model.ModelError.line e)

                    match
                        Model.ofJson "m" (Text.Encoding.UTF8.GetString(Model.toJson { info with TestAccuracy = nan }))
                    with
                    | Ok back -> Expect.isTrue (Double.IsNaN back.TestAccuracy) "unknown accuracy"
                    | Error e -> failtest (Model.ModelError.line e)

                    let testFiles =
                        root.GetProperty("testFiles").EnumerateArray()
                        |> Seq.map (fun e -> Path.Combine(data, e.GetString()))
                        |> List.ofSeq

                    let predictWith dir =
                        match Model.predictFiles dir testFiles false 250 with
                        | Ok(_, rows, []) -> rows
                        | Ok(_, _, skipped) -> failtestf "skipped %A" skipped
                        | Error e -> failtest (Model.ModelError.line e)

                    let exported = predictWith modelDir

                    let truth =
                        testFiles
                        |> List.map (fun f -> Array.IndexOf(classNames, Path.GetFileName(Path.GetDirectoryName f)))
                        |> Array.ofList

                    let predicted = exported |> List.map (fun (_, p) -> p.Class) |> Array.ofList

                    let final =
                        (RunCsv.readRoundsCsv (Path.Combine(out, "rounds.csv"))
                         |> Result.defaultWith failtest
                         |> List.last)

                    Expect.equal
                        (Metrics.accuracy predicted truth)
                        final.TestAccuracy
                        "the final evaluation's accuracy, exactly"

                    Expect.equal info.TestAccuracy final.TestAccuracy "model.json records it"

                    let fromRun = predictWith out

                    Expect.equal
                        (Model.predictionsCsv info fromRun)
                        (Model.predictionsCsv info exported)
                        "the run folder and the exported model predict the same"

                    // The run folder moved elsewhere still resumes (nothing left to do) and predicts.
                    let moved = out + "-moved"
                    Directory.Move(out, moved)

                    try
                        Runner.resume moved Runner.quiet |> ok "resume a moved run"
                        Expect.isOk (Model.predictFiles moved testFiles false 250) "predicts from its new place"
                    finally
                        Directory.Move(moved, out)

                    let csv = (Model.predictionsCsv info exported).Split('\n')
                    Expect.equal csv[0] "path,class,probability,pullover,shirt,trouser,margin,entropy" "the header"
                finally
                    Directory.Delete(data, true)
                    Directory.Delete(out, true)
            }

            test "a stopping rule on real predictions ends the run, rounds.csv says which, and resume has nothing to do" {
                let dir = temp ()

                try
                    let config =
                        small 5L
                        |> withSpec (fun s ->
                            { s with
                                Stopping =
                                    {
                                        Rules = [ AgreementAtLeast(0.01, 1) ]
                                        StopSet = 300
                                    }
                            })

                    Runner.run config dir false Runner.quiet |> ok "run"
                    let lines = File.ReadAllLines(Path.Combine(dir, "rounds.csv"))
                    // Round 1's predictions agree with round 0's on far more than 1 % of the stop set.
                    Expect.equal lines.Length 3 "rounds 0 and 1 of 0..2"
                    let round0, round1 = lines[1].Split ',', lines[2].Split ','

                    Expect.equal
                        (round0[7], round0[8], round0[10])
                        ("", "", "")
                        "round 0: no kappa, no agreement, no stop"

                    let kappa, agreement, uncertainty =
                        float round1[7], float round1[8], float round1[9]

                    Expect.isTrue (kappa >= -1.0 && kappa <= 1.0) $"kappa {kappa}"
                    Expect.isTrue (agreement >= 0.01 && agreement <= 1.0) $"agreement {agreement}"
                    Expect.isTrue (uncertainty > 0.0 && uncertainty < 0.9) $"uncertainty {uncertainty}"
                    // A CSV text cell (Core's Csv.text): quoted only when it holds a comma, a quote or a line break.
                    Expect.stringStarts round1[10] "agreement>=0.01/1: mean agreement" "which rule fired"

                    match ProgressFile.readProgress (Path.Combine(dir, "progress.json")) with
                    | Ok p ->
                        Expect.isSome p.Stopped "progress.json keeps the stop"
                        Expect.equal (List.last p.Records).StopPredictions.Length 300 "the stop set's predictions"
                    | Error e -> failtest e

                    let reportDir = Path.Combine(dir, "report")

                    match Report.write ReportRuns.TestMetric [ dir ] reportDir with
                    | Ok(md, _) ->
                        let text = File.ReadAllText md
                        Expect.stringContains text "Stopped early" "the report says the run stopped"
                        Expect.stringContains text "after round 1, agreement>=0.01/1" "which rule, after which round"
                    | Error e -> failtest $"%A{e}"

                    Directory.Delete(reportDir, true)
                    let before = File.ReadAllText(Path.Combine(dir, "progress.json"))
                    Runner.resume dir Runner.quiet |> ok "resume"
                    Expect.equal (File.ReadAllText(Path.Combine(dir, "progress.json"))) before "nothing more to do"
                finally
                    Directory.Delete(dir, true)
            }

            test "image options on a dataset stored in files are refused, naming the option" {
                let c =
                    Waal.Cli.CommandLine.ofCommandLine [ "--dataset"; "fashion-mnist"; "--image-size"; "32" ]
                    |> Result.defaultWith failtest

                match Runner.run c (temp ()) false Runner.quiet with
                | Error(SpecInvalid(e :: _)) -> Expect.equal e.Field "image-size" "the option"
                | other -> failtestf "expected EXP001 on image-size, got %A" other
            }
        ]

/// The one error type: every case but the data layer's carries its own code beside it, EXP and three digits.
let private codes =
    test "every ExperimentError case has its own code, written beside it, and the line starts with it" {
        let cases =
            Microsoft.FSharp.Reflection.FSharpType.GetUnionCases typeof<ExperimentError>

        let table = ExperimentError.table |> Map.ofArray

        for case in cases do
            if case.Name <> "DataFailed" then
                Expect.isTrue (table.ContainsKey case.Name) $"{case.Name} has a code"

        let values = ExperimentError.table |> Array.map snd
        Expect.equal (Array.distinct values).Length values.Length "no two cases share a code"

        for v in values do
            Expect.isMatch v "^EXP[0-9]{3}$" "the code's shape"

        let e = ExperimentError.NotTrained "prediction"
        let code = table["NotTrained"]

        Expect.equal
            (ExperimentError.line e)
            $"error {code}: prediction: needs a trained model: propose a batch first"
            "the line"

        Expect.equal
            (ExperimentError.code (DataFailed(Waal.Data.DataError.Missing "x")))
            (Waal.Data.DataError.code (Waal.Data.DataError.Missing "x"))
            "the data layer's errors keep their code"
    }

/// The model's and the report's errors say their codes the same way (Core's Code attribute).
let private otherCodes =
    test "ModelError and ReportError carry their codes beside their cases, and their lines start with them" {
        let model = ErrorCodes.table<Model.ModelError>() |> Map.ofArray
        Expect.equal model (Map.ofList [ "NotAModel", "MODEL001"; "ExportFailed", "MODEL002" ]) "the model's codes"

        Expect.equal
            (Model.ModelError.line (Model.ExportFailed("/m", "disk full")))
            "error MODEL002: /m: disk full"
            "the model's line"

        Expect.equal
            (Model.ModelError.code (Model.BadImage(Waal.Data.DataError.Missing "x")))
            (Waal.Data.DataError.code (Waal.Data.DataError.Missing "x"))
            "a bad image keeps the data layer's code"

        let report = ErrorCodes.table<Report.ReportError>() |> Map.ofArray
        Expect.equal report (Map.ofList [ "RunUnreadable", "EXP005"; "WriteFailed", "EXP008" ]) "the report's codes"
        Expect.equal (Report.ReportError.code (Report.WriteFailed("/o", "a file"))) "EXP008" "read from the case"
    }

let all =
    testList
        "Experiments"
        [
            codes
            otherCodes
            testSequenced folders
            testSequenced experiments
            testSequenced persistence
            testSequenced report
            testList "Repeated pool" [ repeated ]
            testList "Imbalanced pool" [ imbalanced ]
            testList "Provenance" [ provenance ]
            labels
        ]
