/// The round as two pure halves, and the stopping rules.
module Waal.Core.Tests.RoundTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core
open Waal.Core.Tests.Common

/// A learner over plain values: its "model" is the round number, it queries the lowest unlabelled indices.
/// It exercises the pure transition; the real, torch-backed learner is tested in the experiment suite.
let private counting: Learner<int, string> =
    {
        Train = fun _ round _ -> Ok(round, 10L)
        Evaluate = fun round -> Ok(0.5 + 0.1 * float round)
        Validate = fun round -> Ok(0.4 + 0.1 * float round)
        Query = fun _ pool _ k -> Ok(Pool.unlabelled pool |> Array.truncate k)
        Signals = fun _ _ round _ -> Ok [ "round", float round ]
        // Twenty stop-set items; round r predicts class 1 for the first max(0, 8 - 4r) of them (so rounds 2 and
        // later agree completely) with uncertainty 1 / (r + 2).
        StopSet =
            fun round ->
                Ok(Array.init 20 (fun i -> if i < max 0 (8 - 4 * round) then 1 else i % 3), 1.0 / float (round + 2))
        Release = ignore
    }

/// Runs propose and accept (labels from `label`) until rounds 0 .. lastRound are complete.
let private runAllWith rules learner label clock k lastRound start =
    let rec go progress =
        if Round.isFinished lastRound progress then
            Ok progress
        else
            match progress.Pending with
            | Some p ->
                Round.accept (p.Indices |> Array.map (fun i -> i, label i)) progress
                |> Result.bind (fun (next, _) -> go next)
            | None ->
                Round.propose learner clock rules k lastRound progress
                |> Result.bind (fst >> go)

    go start

let private runAll learner label clock k lastRound start =
    runAllWith [] learner label clock k lastRound start

let private startOf pool =
    {
        Pool = pool
        Records = []
        Pending = None
    }

let private rounds =
    testList
        "Round"
        [
            property
                "train, query and signals see the round's batch: k cut by a label budget and by |U|"
                (Arb.fromGen (Gen.zip3 (Gen.choose (2, 60)) (Gen.choose (1, 15)) (Gen.choose (2, 40))))
                (fun (size, k, budget) ->
                    let pool = Pool.create size 3 |> ok |> Pool.label 0 [| (0, 1) |] |> ok
                    let seen = Collections.Generic.List<string * int * int>()

                    let recording =
                        { counting with
                            Train =
                                fun pool round k ->
                                    seen.Add("train", round, k)
                                    counting.Train pool round k
                            Query =
                                fun model pool round k ->
                                    seen.Add("query", round, k)
                                    counting.Query model pool round k
                            Signals =
                                fun model pool round k ->
                                    seen.Add("signals", round, k)
                                    counting.Signals model pool round k
                        }

                    let clock () = 0.0

                    let final =
                        runAllWith [ LabelBudget budget ] recording (fun _ -> 0) clock k 6 (startOf pool)
                        |> ok

                    // Every round's batch, from the labels it started with (the label budget and |U| cut it).
                    let expected =
                        [
                            for r in final.Records do
                                r.Round, min (min k (max 0 (budget - r.Labelled))) (size - r.Labelled)
                        ]
                        |> dict

                    seen
                    |> Seq.forall (fun (stage, round, k') ->
                        let want = expected[round]

                        match stage with
                        | "signals" -> k' = final.Records[round].Queried.Length && k' = want
                        | _ -> k' = want))

            property
                "a run of R rounds labels k more items per round and records rounds 0..R"
                (Arb.fromGen (Gen.zip3 (Gen.choose (1, 60)) (Gen.choose (1, 15)) (Gen.choose (0, 6))))
                (fun (size, k, r) ->
                    let pool = Pool.create size 3 |> ok |> Pool.label 0 [| (0, 1) |] |> ok
                    let mutable t = 0.0

                    let clock () =
                        t <- t + 1.0
                        t

                    match runAll counting (fun i -> i % 3) clock k r (startOf pool) with
                    | Error _ -> false
                    | Ok final ->
                        final.Records.Length = r + 1
                        && final.Pending.IsNone
                        && final.Records |> List.forall (fun x -> x.Labelled = min size (1 + x.Round * k))
                        && final.Pool.LabelledCount = min size (1 + r * k)
                        && (List.last final.Records).Queried.Length = 0
                        && final.Records
                           |> List.forall (fun x -> x.TrainSeconds = 1.0 && x.EvalSeconds = 1.0))

            test "propose leaves the batch pending; accept takes labels for exactly that batch, in any order" {
                let pool = Pool.create 10 3 |> ok |> Pool.label 0 [| (0, 1) |] |> ok
                let start = startOf pool

                let proposed, model =
                    Round.propose counting (fun () -> 0.0) [] 3 5 start
                    |> Result.defaultWith (failwithf "%A")

                Expect.equal model 0 "the caller gets the model"
                Expect.equal proposed.Records [] "the round is not complete yet"
                Expect.equal proposed.Pool pool "nothing labelled yet"
                let pending = proposed.Pending |> Option.get
                Expect.equal pending.Indices [| 1; 2; 3 |] "the query, in query order"
                Expect.equal proposed.Round 0 "still round 0"

                match Round.propose counting (fun () -> 0.0) [] 3 5 proposed with
                | Error(OutOfTurn(0, _)) -> ()
                | other -> failtestf "a second proposal while one waits: %A" other

                let refused labels =
                    match Round.accept labels proposed with
                    | Error(LabelsRefused(0, _)) -> ()
                    | other -> failtestf "expected LabelsRefused for %A, found %A" labels other

                refused [| (1, 0); (2, 0) |]
                refused [| (1, 0); (2, 0); (3, 0); (4, 0) |]
                refused [| (1, 0); (2, 0); (9, 0) |]
                refused [| (1, 0); (2, 0); (3, 7) |]

                match Round.accept [| (3, 2); (1, 0); (2, 1) |] proposed with
                | Ok(next, record) ->
                    Expect.equal next.Pending None "nothing pending"
                    Expect.equal next.Records [ record ] "round 0 complete"
                    Expect.equal (Pool.labelOf next.Pool 3) (Some 2) "labels applied"
                    Expect.equal (Pool.log next.Pool).Batches.[1].Round 1 "labelled as round 1's batch"
                | Error e -> failtestf "refused the right labels: %A" e

                match Round.accept [| (1, 0) |] start with
                | Error(OutOfTurn(0, _)) -> ()
                | other -> failtestf "accept with nothing pending: %A" other
            }

            test "a query that repeats an index or picks a labelled one fails with the round named; nothing changes" {
                let pool = Pool.create 10 2 |> ok |> Pool.label 0 [| (0, 1) |] |> ok
                let mutable released = 0

                let bad picks =
                    { counting with
                        Query = fun _ _ _ _ -> Ok picks
                        Release = fun _ -> released <- released + 1
                    }

                let start = startOf pool

                match Round.propose (bad [| 1; 1 |]) (fun () -> 0.0) [] 2 3 start with
                | Error(InvalidQuery(0, detail)) -> Expect.stringContains detail "twice" "duplicate"
                | other -> failtestf "expected InvalidQuery, found %A" other

                match Round.propose (bad [| 0; 2 |]) (fun () -> 0.0) [] 2 3 start with
                | Error(InvalidQuery(0, detail)) -> Expect.stringContains detail "already labelled" "labelled"
                | other -> failtestf "expected InvalidQuery, found %A" other

                Expect.equal released 2 "a failed round releases its model"

                let failing =
                    { counting with
                        Evaluate = fun _ -> Error "no test set"
                    }

                Expect.equal
                    (Round.propose failing (fun () -> 0.0) [] 2 3 start)
                    (Error(LearnerFailed(0, "evaluate", "no test set")))
                    "the stage and round"
            }
        ]

let private stopping =
    let rule =
        Gen.oneof
            [
                Gen.choose (1, 100000) |> Gen.map LabelBudget
                Gen.zip (Gen.choose (1, 1000)) (Gen.choose (1, 9))
                |> Gen.map (fun (t, w) -> KappaAtLeast(float t / 1000.0, w))
                Gen.zip (Gen.choose (1, 1000)) (Gen.choose (1, 9))
                |> Gen.map (fun (t, w) -> AgreementAtLeast(float t / 1000.0, w))
                Gen.choose (0, 1000) |> Gen.map (fun t -> UncertaintyAtMost(float t / 1000.0))
            ]

    let labels =
        Gen.zip (Gen.choose (1, 40)) (Gen.choose (1, 5))
        |> Gen.bind (fun (n, c) ->
            Gen.zip (Gen.arrayOfLength n (Gen.choose (0, c))) (Gen.arrayOfLength n (Gen.choose (0, c))))

    let pool = Pool.create 30 3 |> ok |> Pool.label 0 [| (0, 1); (1, 2) |] |> ok

    testList
        "Stopping"
        [
            property "rules read back from their text" (Arb.fromGen (Gen.listOf rule)) (fun rules ->
                Stopping.parse (Stopping.toText rules) = Ok rules)

            test "bad rules are refused naming what was found and what is expected" {
                for text in
                    [
                        "labels>=0"
                        "kappa>=1.5"
                        "kappa>=0.9/0"
                        "uncertainty<=-1"
                        "accuracy>=0.9"
                        "kappa"
                    ] do
                    match Stopping.parse text with
                    | Error m ->
                        Expect.stringContains m "is not a rule" text
                        Expect.stringContains m "labels>=N" text
                    | Ok r -> failtestf "%s read as %A" text r

                Expect.equal (Stopping.parse " none ") (Ok []) "none"
                Expect.equal (Stopping.parse "") (Ok []) "empty"
            }

            property
                "agreement is in [0, 1], kappa at most 1, both 1 for identical predictions and symmetric"
                (Arb.fromGen labels)
                (fun (a, b) ->
                    let k, g = Stopping.kappa a b, Stopping.agreement a b

                    g >= 0.0
                    && g <= 1.0
                    && k <= 1.0 + 1e-12
                    && Stopping.kappa a a = 1.0
                    && Stopping.agreement a a = 1.0
                    && abs (k - Stopping.kappa b a) < 1e-12)

            test "Cohen's kappa by hand: 20 items, p_o = 0.7, p_e = 0.5, kappa = 0.4" {
                // a says 1 ten times, b says 1 ten times; they agree on 7 ones and 7 zeros.
                let a = Array.init 20 (fun i -> if i < 10 then 1 else 0)
                let b = Array.init 20 (fun i -> if i < 7 || i >= 17 then 1 else 0)
                Expect.floatClose Accuracy.veryHigh (Stopping.agreement a b) 0.7 "p_o"
                Expect.floatClose Accuracy.veryHigh (Stopping.kappa a b) 0.4 "kappa"
            }

            test "stabilising predictions stop the run once the mean kappa over the window reaches the threshold" {
                match
                    runAllWith [ KappaAtLeast(0.99, 2) ] counting (fun i -> i % 3) (fun () -> 0.0) 2 9 (startOf pool)
                with
                | Error e -> failtestf "%A" e
                | Ok final ->
                    // Rounds 2, 3 and 4 predict alike: kappa 1 at rounds 3 and 4 fills the window of 2.
                    Expect.equal final.Records.Length 5 "rounds 0..4"
                    Expect.isTrue (Round.isFinished 9 final) "finished"
                    let last = List.last final.Records
                    Expect.isEmpty last.Queried "the stopping round queries nothing"
                    Expect.equal final.Stopped last.Stopped "the progress says why"
                    Expect.stringStarts last.Stopped.Value "kappa>=0.99/2: mean kappa 1" "which rule, and the value"

                    Expect.equal
                        (final.Records.Head.StopSignals |> List.map fst)
                        [ "stop_uncertainty" ]
                        "no kappa in round 0"

                    Expect.isTrue
                        (final.Records |> List.take 4 |> List.forall (fun r -> r.Stopped.IsNone))
                        "only the last"

                    match Round.propose counting (fun () -> 0.0) [] 2 9 final with
                    | Error(OutOfTurn(5, why)) -> Expect.stringContains why "stopped" "no round after a stop"
                    | other -> failtestf "expected OutOfTurn, got %A" other
            }

            test "a label budget cuts the last query to fit and ends the run when reached" {
                match runAllWith [ LabelBudget 9 ] counting (fun i -> i % 3) (fun () -> 0.0) 3 9 (startOf pool) with
                | Error e -> failtestf "%A" e
                | Ok final ->
                    Expect.equal (final.Records |> List.map (fun r -> r.Labelled)) [ 2; 5; 8; 9 ] "2 + 3 + 3 + 1"
                    Expect.equal final.Pool.LabelledCount 9 "exactly the budget"
                    Expect.stringStarts final.Stopped.Value "labels>=9: 9 labels" "which rule"
            }

            test "low uncertainty stops the run; without rules every round runs" {
                match
                    runAllWith [ UncertaintyAtMost 0.2 ] counting (fun i -> i % 3) (fun () -> 0.0) 1 9 (startOf pool)
                with
                | Ok final ->
                    // 1 / (r + 2) <= 0.2 first at round 3.
                    Expect.equal final.Records.Length 4 "rounds 0..3"
                    Expect.stringStarts final.Stopped.Value "uncertainty<=0.2: mean uncertainty 0.2" "which rule"
                | Error e -> failtestf "%A" e

                match runAll counting (fun i -> i % 3) (fun () -> 0.0) 1 9 (startOf pool) with
                | Ok final ->
                    Expect.equal final.Records.Length 10 "all rounds"
                    Expect.isNone final.Stopped "never stopped"
                | Error e -> failtestf "%A" e
            }

            property
                "the stop set is the same for a seed, distinct, in the pool, and of the asked size"
                (Arb.fromGen (Gen.zip3 (Gen.choose (0, 1000)) (Gen.choose (1, 300)) (Gen.choose (1, 500))))
                (fun (seed, size, poolSize) ->
                    let s = Stopping.stopSet (int64 seed) size poolSize

                    s = Stopping.stopSet (int64 seed) size poolSize
                    && s.Length = min size poolSize
                    && (Array.distinct s).Length = s.Length
                    && s |> Array.forall (fun i -> i >= 0 && i < poolSize))
        ]

let all = testList "Core" [ stopping; rounds ]
