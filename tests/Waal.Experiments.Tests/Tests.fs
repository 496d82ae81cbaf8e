module Waal.Experiments.Tests.Tests

open System
open System.IO
open Expecto
open Waal.Core
open Waal.Experiments

let private fashion = Waal.Testing.Environment.fashion

/// A small but real WAAL experiment: 1,500 pool images, 100 initial labels, 2 queries of 100, 1 epoch.
let private small seed =
    { Spec.defaults "fashion-mnist" fashion with
        Pool = Some 1500
        Initial = 100
        Query = 100
        Rounds = 2
        Seed = seed
        Threads = 2
        Train =
            { (Spec.defaults "fashion-mnist" fashion).Train with
                Epochs = 1
            }
    }

let private temp () =
    let dir =
        Path.Combine(Path.GetTempPath(), "waal-exp-tests-" + Guid.NewGuid().ToString "N")

    Directory.CreateDirectory dir |> ignore
    dir

let private ok what =
    function
    | Ok v -> v
    | Error e -> failtestf "%s: %s" what (Runner.RunError.line e)

/// The accuracy columns of rounds.csv (round, labeled, test_accuracy), which must be reproducible.
let private accuracyColumns (folder: string) =
    File.ReadAllLines(Path.Combine(folder, "rounds.csv"))
    |> Array.map (fun l -> String.Join(",", l.Split(',')[0..2]))

let private labelLog (folder: string) =
    File.ReadAllText(Path.Combine(folder, "labels.json"))

let private queried (folder: string) =
    match Results.readProgress (Path.Combine(folder, "progress.json")) with
    | Ok p -> p.Records |> List.map (fun r -> r.Queried)
    | Error e -> failtest e

exception private InjectedCrash of int

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
                    "round,labeled,test_accuracy,train_seconds,query_seconds,eval_seconds,train_iterations"
                    "header: the six fixed columns, then the training budget"

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
                Expect.isEmpty (Directory.GetFiles(dir, "*.tmp", SearchOption.AllDirectories)) "no temporary files left"
                let spec = Spec.ofJson (File.ReadAllText(Path.Combine(dir, "spec.json")))
                Expect.equal spec (Ok(small 1L)) "spec.json reads back as the spec"
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
                let tiny = { small 1L with Rounds = 0 }
                Runner.run tiny dir false Runner.quiet |> ok "first"
                let before = File.ReadAllText(Path.Combine(dir, "rounds.csv"))

                match Runner.run tiny dir false Runner.quiet with
                | Error(Runner.OutputExists _ as e) ->
                    Expect.stringStarts (Runner.RunError.line e) "error EXP004: " "code"
                | other -> failtestf "expected OutputExists, found %A" other

                Expect.equal (File.ReadAllText(Path.Combine(dir, "rounds.csv"))) before "the refused run wrote nothing"
                Runner.run { tiny with Seed = 2L } dir true Runner.quiet |> ok "forced"

                let expectCode code result =
                    match result with
                    | Error e -> Expect.stringStarts (Runner.RunError.line e) $"error {code}: " (Runner.RunError.line e)
                    | Ok() -> failtestf "expected %s" code

                expectCode "EXP001" (Runner.run { tiny with Query = 0 } (temp ()) false Runner.quiet)
                expectCode "EXP002" (Runner.run { tiny with Strategy = "oracle" } (temp ()) false Runner.quiet)
                expectCode "EXP003" (Runner.run { tiny with Pool = Some 70000 } (temp ()) false Runner.quiet)
                expectCode "EXP003" (Runner.run { tiny with Initial = 2000 } (temp ()) false Runner.quiet)
                expectCode "DATA001" (Runner.run { tiny with DataDir = "/nonexistent" } (temp ()) false Runner.quiet)
                expectCode "EXP005" (Runner.resume (temp ()) Runner.quiet)
                File.WriteAllText(Path.Combine(dir, "spec.json"), """{"dataset": 42}""")
                expectCode "EXP005" (Runner.resume dir Runner.quiet)
                Directory.Delete(dir, true)
            }
        ]

let private report =
    testList
        "Report"
        [
            test "two seeds make one group with mean +- std; report.md and a PNG learning curve are written" {
                let a, b, out = temp (), temp (), temp ()
                let tiny seed = { small seed with Rounds = 1 }
                Runner.run (tiny 1L) a false Runner.quiet |> ok "seed 1"
                Runner.run (tiny 2L) b false Runner.quiet |> ok "seed 2"

                match Report.write [ a; b ] out with
                | Error e -> failtest e
                | Ok(md, png) ->
                    let text = File.ReadAllText md
                    Expect.stringContains text "| waal | 2 | " "one group of two runs"
                    Expect.stringContains text " +- " "mean +- std"
                    Expect.stringContains text "AUBC" "area under the budget curve"
                    Expect.stringContains text "training iterations per round" "the training budget"
                    let bytes = File.ReadAllBytes png
                    Expect.equal bytes[1..3] "PNG"B "a PNG file"
                    Expect.isGreaterThan bytes.Length 10000 "with a picture in it"

                let runs = [ a; b ] |> List.map (Report.readRun >> Result.defaultWith failwith)
                let g = Report.group runs
                Expect.equal g.Length 1 "runs differing only in the seed group together"

                let acc l =
                    runs
                    |> List.map (fun r -> (r.Rows |> List.find (fun x -> x.Labelled = l)).TestAccuracy)

                let m, s = Report.meanStd (acc 100)
                Expect.floatClose Accuracy.veryHigh m (List.average (acc 100)) "mean"
                Expect.isGreaterThanOrEqual s 0.0 "std"

                match Report.write [ a; temp () ] out with
                | Error e -> Expect.stringContains e "spec.json" "a folder without a run is named"
                | Ok _ -> failtest "expected an error"

                for d in [ a; b; out ] do
                    Directory.Delete(d, true)
            }
        ]

let private labels =
    testList
        "Report labels"
        [
            test "groups of one strategy are labelled by what differs; seeds alone make one group" {
                let run strategy budget epochs seed : Report.Run =
                    let d = Spec.defaults "fashion-mnist" fashion

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
                    }

                let groups =
                    Report.group
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
        ]

let all =
    testList "Experiments" [ testSequenced experiments; testSequenced report; labels ]
