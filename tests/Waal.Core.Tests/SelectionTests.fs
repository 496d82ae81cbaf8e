/// Metrics, pairing, batch selection, the training budget and the critic diagnostics.
module Waal.Core.Tests.SelectionTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core
open Waal.Core.Tests.Common

let private metrics =
    testList
        "Metrics"
        [
            test "accuracy counts matches" {
                near 1e-12 0.75 (Metrics.accuracy [| 1; 2; 3; 4 |] [| 1; 2; 3; 0 |]) "3 of 4"
            }

            test "the area under the budget curve of a straight line is its mean" {
                let auc = Metrics.areaUnderBudgetCurve [ (3000, 0.8); (1000, 0.6); (2000, 0.7) ]
                Expect.isSome auc "three points"
                near 1e-12 0.7 auc.Value "mean of a line"
            }

            property
                "the area under the budget curve lies between the lowest and highest accuracy"
                (Arb.fromGen (Gen.nonEmptyListOf (Gen.zip (Gen.choose (0, 10000)) (Gen.choose (0, 100)))))
                (fun pts ->
                    let pts = pts |> List.distinctBy fst |> List.map (fun (l, a) -> l, float a / 100.0)
                    let auc = (Metrics.areaUnderBudgetCurve pts).Value
                    let accs = List.map snd pts
                    auc >= List.min accs - 1e-12 && auc <= List.max accs + 1e-12)
        ]

// ---------- pairing, specs and rounds ----------

let private pairing =
    testList
        "Pairing"
        [
            test
                "|L| = 1000, |U| = 49000, batch 64: 49000 pairs in 766 batches; each unlabelled item once, each labelled 49 times" {
                let labelled = Array.init 1000 id
                let unlabelled = Array.init 49000 (fun i -> 1000 + i)
                let l, u = Pairing.epoch (Rng.key 1L 0 (Rng.Named "pairs-0")) labelled unlabelled
                Expect.equal (l.Length, u.Length) (49000, 49000) "pairs"
                Expect.equal (Pairing.batches l.Length 64) 766 "batches per epoch"
                Expect.equal (Array.sort u) unlabelled "every unlabelled item exactly once"
                Expect.all (Array.countBy id l) (fun (_, n) -> n = 49) "every labelled item 49 times"
                Expect.notEqual u[..99] unlabelled[..99] "shuffled"
            }

            test "with more labelled than unlabelled items, the unlabelled ones repeat instead" {
                let l, u =
                    Pairing.epoch (Rng.key 1L 0 (Rng.Named "p")) (Array.init 10 id) [| 10; 11 |]

                Expect.equal (Array.sort l) (Array.init 10 id) "each labelled once"

                Expect.equal
                    (Array.countBy id u |> Array.sort)
                    [| (10, 5); (11, 5) |]
                    "the two unlabelled five times each"
            }
        ]

/// The dataset facts the option defaults read (the Data layer's registry has the real ones).
// ---------- batch selection, budget and the new metrics ----------

let private batchSelection =
    testList
        "BatchSelection"
        [
            property
                "every mode returns min(k, n) distinct candidates"
                (Arb.fromGen scoredWithClasses)
                (fun (candidates, scores, k, classes, e, seed) ->
                    let key = Rng.key seed 0 Rng.SoftRankKeys

                    let batches =
                        [
                            TopK.smallest k candidates scores |> ok
                            BatchSelection.softRank key 1.0 k candidates scores |> ok
                            BatchSelection.softRank key 0.0 k candidates scores |> ok
                            BatchSelection.balanced 3 k candidates scores classes |> ok
                            BatchSelection.clustered key 3 k candidates scores e |> ok
                        ]

                    batches
                    |> List.forall (fun b ->
                        b.Length = min k candidates.Length
                        && (Array.distinct b).Length = b.Length
                        && b |> Array.forall (fun c -> Array.contains c candidates)))

            property
                "soft-rank with beta = infinity is top-k, and so is a huge beta"
                (Arb.fromGen scoredWithClasses)
                (fun (candidates, scores, k, _, _, seed) ->
                    let key = Rng.key seed 0 Rng.SoftRankKeys
                    let top = TopK.smallest k candidates scores |> ok
                    // Distinct scores: with ties the top-k order is by index, which a huge beta keeps too.
                    BatchSelection.softRank key Double.PositiveInfinity k candidates scores |> ok = top
                    && Set.ofArray (BatchSelection.softRank key 1e12 k candidates scores |> ok) = Set.ofArray top)

            test "soft-rank with beta = 0 is uniform and with beta = 1 follows 1/rank (chi-square, 4000 draws)" {
                let candidates = Array.init 8 (fun i -> 100 + i)
                let scores = Array.init 8 (fun i -> float ((i * 5) % 8))

                let rankOf =
                    BatchSelection.rankOrder candidates scores
                    |> Array.mapi (fun r i -> i, r)
                    |> Map.ofArray

                let counts beta =
                    let c = Array.zeroCreate 8

                    for s in 0..3999 do
                        let pick =
                            BatchSelection.softRank (Rng.key (int64 s) 3 Rng.SoftRankKeys) beta 1 candidates scores
                            |> ok

                        let r = rankOf[pick[0] - 100]
                        c[r] <- c[r] + 1

                    c

                let chiSquare (observed: int[]) (p: float[]) =
                    Array.map2 (fun (o: int) e -> (float o - e) ** 2.0 / e) observed (p |> Array.map ((*) 4000.0))
                    |> Array.sum

                // 7 degrees of freedom: P(chi2 > 24.32) = 0.001.
                let uniform = Array.create 8 (1.0 / 8.0)
                let harmonic = Array.init 8 (fun r -> 1.0 / float (r + 1))
                let h = Array.sum harmonic
                let byRank = harmonic |> Array.map (fun x -> x / h)
                let u = chiSquare (counts 0.0) uniform
                let r = chiSquare (counts 1.0) byRank
                Expect.isLessThan u 24.32 $"beta 0: chi-square {u} against uniform"
                Expect.isLessThan r 24.32 $"beta 1: chi-square {r} against 1/rank"
                Expect.isGreaterThan (chiSquare (counts 1.0) uniform) 24.32 "beta 1 is not uniform"
            }

            property
                "class-balanced quotas are exact when every class has enough candidates"
                (Arb.fromGen (
                    gen {
                        let! perClass = Gen.choose (1, 12)
                        let! k = Gen.choose (0, 3 * perClass)
                        let! scores = Gen.arrayOfLength (3 * perClass) (Gen.choose (-9, 9) |> Gen.map float)
                        return perClass, k, scores
                    }
                ))
                (fun (perClass, k, scores) ->
                    let n = 3 * perClass
                    let candidates = Array.init n id
                    let classes = Array.init n (fun i -> i % 3)

                    let picked = BatchSelection.balanced 3 k candidates scores classes |> ok
                    let per = Metrics.histogram 3 (picked |> Array.map (fun i -> classes[i]))

                    picked.Length = k
                    && per |> Array.forall (fun c -> c = k / 3 || c = k / 3 + 1)
                    && (per |> Array.filter (fun c -> c = k / 3 + 1)).Length = k % 3)

            property
                "class-balanced: within a class, the picks are its best candidates"
                (Arb.fromGen scoredWithClasses)
                (fun (candidates, scores, k, classes, _, _) ->
                    let picked =
                        BatchSelection.balanced 3 k candidates scores classes |> ok |> Set.ofArray

                    let position = candidates |> Array.mapi (fun i c -> c, i) |> Map.ofArray

                    candidates
                    |> Array.mapi (fun i c -> i, c)
                    |> Array.forall (fun (i, c) ->
                        // an unpicked candidate never beats a picked one of its class
                        picked.Contains c
                        || picked
                           |> Seq.forall (fun p ->
                               let j = position[p]
                               classes[j] <> classes[i] || (scores[j], p) <= (scores[i], c))))

            property
                "clustered: one pick per cluster, each its cluster's best-scoring member"
                (Arb.fromGen scoredWithClasses)
                (fun (candidates, scores, k, _, e, seed) ->
                    let key = Rng.key seed 0 Rng.ClusterSeeds
                    let picked = BatchSelection.clustered key 3 k candidates scores e |> ok

                    if candidates.Length = 0 || k = 0 then
                        picked.Length = 0
                    else
                        let top, assign = BatchSelection.clusters key 3 k candidates scores e

                        let clusterOf =
                            top |> Array.mapi (fun j i -> candidates[i], assign[j]) |> Map.ofArray

                        let nonEmpty = (Array.distinct assign).Length
                        let inClusters = picked |> Array.choose (fun c -> Map.tryFind c clusterOf)
                        let scoreOf = candidates |> Array.mapi (fun i c -> c, (scores[i], c)) |> Map.ofArray

                        let bestOfEach =
                            inClusters
                            |> Array.distinct
                            |> Array.map (fun g ->
                                clusterOf
                                |> Map.filter (fun _ a -> a = g)
                                |> Map.keys
                                |> Seq.minBy (fun c -> scoreOf[c]))

                        // every non-empty cluster gives exactly its best member; the rest fill from the top
                        (Array.distinct inClusters).Length = nonEmpty
                        && bestOfEach |> Array.forall (fun b -> Array.contains b picked))

            test "every mode refuses a NaN score, naming its position" {
                let e = { Dim = 1; Values = [| 0f; 1f |] }

                for result in
                    [
                        BatchSelection.softRank (Rng.key 1L 0 Rng.SoftRankKeys) 1.0 1 [| 4; 5 |] [| 0.0; nan |]
                        BatchSelection.balanced 2 1 [| 4; 5 |] [| 0.0; nan |] [| 0; 1 |]
                        BatchSelection.clustered (Rng.key 1L 0 Rng.ClusterSeeds) 2 1 [| 4; 5 |] [| 0.0; nan |] e
                    ] do
                    match result with
                    | Error(NonFiniteScore(1, v)) when Double.IsNaN v -> ()
                    | other -> failtestf "expected NonFiniteScore at 1, found %A" other
            }
        ]

let private budget =
    let train =
        {
            Epochs = 3
            Batch = 64
            LearningRate = 0.05
            Momentum = 0.9
            WeightDecay = 0.0
            Budget = EpochsOverFloor
            Floor = 3000
            Nesterov = true
            Schedule = CosineRate
            Warmup = 1
        }

    testList
        "Budget"
        [
            test "the floor budget: every strategy E x ceil(max(|L|, M) / batch) steps; the references unchanged" {
                Expect.equal (Budget.steps train false 1000 49000) (3L * 47L) "below the floor"
                Expect.equal (Budget.steps train true 6000 44000) (3L * 94L) "above it, WAAL the same"

                let reference =
                    { train with
                        Budget = EpochsOverLabelled
                    }

                Expect.equal (Budget.steps reference false 1000 49000) (3L * 16L) "baselines: E passes over L"
                Expect.equal (Budget.steps reference true 1000 49000) (3L * 766L) "WAAL: E x max(|L|,|U|) pairs"
                Expect.equal (Budget.steps { train with Budget = MatchWaal } false 1000 49000) (3L * 766L) "match-waal"
            }

            property
                "cosine: a rising warm-up to lr, then falling to near 0; constant is constant"
                (Arb.fromGen (Gen.zip (Gen.choose (1, 400)) (Gen.choose (0, 5))))
                (fun (perEpoch, warmup) ->
                    let t = { train with Warmup = warmup }
                    let total = 10L * int64 perEpoch

                    let rates =
                        Array.init (int total) (fun s -> Budget.rate t (int64 perEpoch) total (int64 s))

                    let w = warmup * perEpoch

                    rates |> Array.forall (fun r -> r > -1e-12 && r <= t.LearningRate + 1e-12)
                    && rates[.. w - 1] |> Array.pairwise |> Array.forall (fun (a, b) -> a < b)
                    && rates[w..] |> Array.pairwise |> Array.forall (fun (a, b) -> a >= b)
                    && (w = 0 || abs (rates[w - 1] - t.LearningRate) < 1e-12)
                    && rates[int total - 1] <
                        0.01 * t.LearningRate
                        + t.LearningRate * 0.5 * (1.0 - cos (Math.PI / float (total - int64 w)))
                    && Budget.rate { t with Schedule = ConstantRate } (int64 perEpoch) total 7L = t.LearningRate)

            property
                "passRun: each pass a permutation of the items; any stretch equals that part of a longer run"
                (Arb.fromGen (Gen.zip3 (Gen.choose (1, 40)) (Gen.choose (0, 120)) (Gen.choose (0, 50))))
                (fun (n, start, count) ->
                    let items = Array.init n (fun i -> 1000 + 3 * i)
                    let keyOf q = Rng.key 9L 2 (Rng.UnlabelledPass q)
                    let long = Pairing.passRun keyOf items 0L (start + count + n)

                    Pairing.passRun keyOf items (int64 start) count = long[start .. start + count - 1]
                    && (Array.sort long[.. n - 1]) = items)
        ]

let private diagnostics =
    testList
        "Diagnostics"
        [
            property
                "AUC: separated sets 1, swapped 1 - AUC, ties one half"
                (Arb.fromGen (
                    Gen.zip (Gen.nonEmptyListOf (Gen.choose (-9, 9))) (Gen.nonEmptyListOf (Gen.choose (-9, 9)))
                ))
                (fun (a, b) ->
                    let a = a |> List.map float |> Array.ofList
                    let b = b |> List.map float |> Array.ofList
                    let ab = Metrics.auc a b |> Option.get
                    let ba = Metrics.auc b a |> Option.get
                    let shifted = Metrics.auc (a |> Array.map ((+) 100.0)) b |> Option.get
                    abs (ab + ba - 1.0) < 1e-12 && shifted = 1.0 && Metrics.auc a a = Some 0.5)

            property
                "Spearman: 1 for any increasing transform, -1 for a decreasing one"
                (Arb.fromGen (Gen.listOfLength 12 (Gen.choose (-1000, 1000))))
                (fun xs ->
                    let xs = xs |> List.distinct |> List.map float |> Array.ofList

                    let up = Metrics.spearman xs (xs |> Array.map (fun x -> x * x * x + 5.0))
                    let down = Metrics.spearman xs (xs |> Array.map (fun x -> -2.0 * x))

                    xs.Length < 2
                    || (abs (Option.get up - 1.0) < 1e-12 && abs (Option.get down + 1.0) < 1e-12))

            property
                "copies in a repeated pool: repeats are the batch less its distinct originals; labelled copies are counted"
                (Arb.fromGen (
                    gen {
                        let! originals = Gen.choose (1, 20)
                        let! copies = Gen.choose (1, 4)
                        let! batch = Gen.listOf (Gen.choose (0, originals * copies - 1))
                        let! labelled = Gen.listOf (Gen.choose (0, originals * copies - 1))
                        return originals, List.distinct batch, labelled
                    }
                ))
                (fun (originals, batch, labelled) ->
                    let batch = Array.ofList batch
                    let inBatch, ofLabelled = Metrics.copies originals labelled batch
                    let distinct = batch |> Array.map (fun i -> i % originals) |> Array.distinct
                    let known = labelled |> List.map (fun i -> i % originals) |> Set.ofList

                    inBatch = batch.Length - distinct.Length
                    && ofLabelled = (batch |> Array.filter (fun i -> known.Contains(i % originals))).Length)

            test
                "copies in a repeated pool: a batch of one image's three copies wastes two; a copy of a labelled one counts" {
                // Originals 0..9; items 3, 13 and 23 are the three copies of image 3; 15 copies the labelled 5.
                Expect.equal (Metrics.copies 10 [ 5 ] [| 3; 13; 23; 15; 7 |]) (2, 1) "two repeats, one labelled copy"
                Expect.equal (Metrics.copies 10 [] [| 0; 1; 2 |]) (0, 0) "distinct originals waste nothing"
            }

            test "Gaussian draws: the same key gives the same values; mean 0 and variance 1 over 100,000" {
                let k = Rng.key 7L 0 Rng.RepeatNoise
                let g = Rng.gaussian k 100001
                Expect.equal g (Rng.gaussian k 100001) "reproducible"
                Expect.notEqual g[..9] (Rng.gaussian (Rng.key 8L 0 Rng.RepeatNoise) 10) "another seed, other values"
                let mean = Array.average g
                let variance = g |> Array.averageBy (fun x -> (x - mean) ** 2.0)
                // Standard errors: 0.003 for the mean, 0.0045 for the variance.
                Expect.isLessThan (abs mean) 0.015 $"mean {mean}"
                Expect.isLessThan (abs (variance - 1.0)) 0.025 $"variance {variance}"
                Expect.isTrue (g |> Array.forall Double.IsFinite) "all finite"
            }

            test "a batch's class entropy: log2 C when even, 0 for one class" {
                Expect.floatClose Accuracy.high (Metrics.histogramEntropy [| 5; 5; 5; 5 |]) 2.0 "even"
                Expect.equal (Metrics.histogramEntropy [| 0; 9; 0 |]) 0.0 "one class"
                Expect.equal (Metrics.histogram 3 [ 0; 2; 2 ]) [| 1; 0; 2 |] "counts"
            }
        ]

let all = testList "Core" [ pairing; metrics; batchSelection; budget; diagnostics ]
