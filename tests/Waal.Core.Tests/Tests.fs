module Waal.Core.Tests.Tests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core

let private config =
    { FsCheckConfig.defaultConfig with
        maxTest = 200
    }

let private property name (arb: Arbitrary<'a>) (check: 'a -> bool) =
    testPropertyWithConfig config name (Prop.forAll arb check)

let private ok =
    function
    | Ok v -> v
    | Error e -> failwithf "unexpected error: %A" e

// ---------- generators ----------

/// A probability vector over 2..12 classes, some entries possibly exactly zero.
let private probabilities =
    gen {
        let! k = Gen.choose (2, 12)

        let! weights =
            Gen.arrayOfLength k (Gen.frequency [ 1, Gen.constant 0; 6, Gen.choose (1, 1000) ])

        let weights = if Array.sum weights = 0 then Array.create k 1 else weights
        let total = float (Array.sum weights)
        return weights |> Array.map (fun w -> float w / total)
    }

/// Strictly positive probabilities (finite logs).
let private positiveProbabilities =
    gen {
        let! k = Gen.choose (2, 12)
        let! weights = Gen.arrayOfLength k (Gen.choose (1, 1000))
        let total = float (Array.sum weights)
        return weights |> Array.map (fun w -> float w / total)
    }

let private sample =
    gen {
        let! n = Gen.choose (1, 30)
        return! Gen.arrayOfLength n (Gen.choose (-1000, 1000) |> Gen.map (fun v -> float v / 100.0))
    }

/// A pool of 1..120 items and a history of label batches, each a valid transition.
type private History =
    {
        Size: int
        Classes: int
        Batches: (int * (int * int)[]) list
    }

let private history =
    gen {
        let! size = Gen.choose (1, 120)
        let! classes = Gen.choose (1, 10)
        let! seed = Gen.choose (0, 100000)
        let! steps = Gen.choose (0, 8)
        let! sizes = Gen.arrayOfLength steps (Gen.choose (1, 40))

        let pool = Pool.create size classes |> ok

        let _, batches =
            sizes
            |> Array.indexed
            |> Array.fold
                (fun (pool, acc) (round, want) ->
                    let picks = Pool.draw (Rng.key (int64 seed) round (Rng.Named "test")) want pool

                    if picks.Length = 0 then
                        pool, acc
                    else
                        let items = picks |> Array.map (fun i -> i, (i * 7 + round) % classes)
                        Pool.label round items pool |> ok, (round, items) :: acc)
                (pool, [])

        return
            {
                Size = size
                Classes = classes
                Batches = List.rev batches
            }
    }

let private replay (h: History) =
    h.Batches
    |> List.fold (fun p (round, items) -> p |> Result.bind (Pool.label round items)) (Pool.create h.Size h.Classes)
    |> ok

/// Candidates (a random subset of 0..n-1 in random order), their finite scores, and k.
let private scored =
    gen {
        let! n = Gen.choose (0, 60)
        let! seed = Gen.choose (0, 100000)
        let! count = Gen.choose (0, n)

        let candidates =
            Rng.sample (Rng.key (int64 seed) 0 (Rng.Named "candidates")) count (Array.init n id)

        let! scores =
            Gen.arrayOfLength candidates.Length (Gen.choose (-20, 20) |> Gen.map float)

        let! k = Gen.choose (0, 70)
        return candidates, scores, k
    }

let private points =
    gen {
        let! n = Gen.choose (1, 40)
        let! dim = Gen.choose (1, 4)
        let! values = Gen.arrayOfLength (n * dim) (Gen.choose (-5, 5) |> Gen.map float32)
        return { Dim = dim; Values = values }
    }

// ---------- pool and label log ----------

let private pool =
    testList
        "Pool"
        [
            property
                "labelled and unlabelled stay disjoint and cover the pool after any valid transitions"
                (Arb.fromGen history)
                (fun h ->
                    let p = replay h
                    let l = Pool.labelled p
                    let u = Pool.unlabelled p

                    Set.intersect (set l) (set u) |> Set.isEmpty
                    && Array.append l u |> Array.sort = Array.init h.Size id
                    && l.Length = p.LabelledCount
                    && p.LabelledCount = (h.Batches |> List.sumBy (fun (_, items) -> items.Length)))

            property "rebuilding from the label log gives the same state" (Arb.fromGen history) (fun h ->
                let p = replay h
                Pool.ofLog (Pool.log p) = Ok p)

            property "the label log survives a JSON round trip" (Arb.fromGen history) (fun h ->
                let p = replay h
                let text = LabelLogJson.toString (Pool.log p)
                (LabelLogJson.ofString text |> Result.bind Pool.ofLog) = Ok p)

            property "every label given is read back" (Arb.fromGen history) (fun h ->
                let p = replay h

                h.Batches
                |> List.forall (fun (_, items) -> items |> Array.forall (fun (i, l) -> Pool.labelOf p i = Some l)))

            test "a batch that is empty, out of range, already labelled, repeated or mislabelled is refused" {
                let p = Pool.create 10 3 |> ok |> Pool.label 0 [| (2, 1); (5, 0) |] |> ok
                Expect.equal (Pool.label 1 [||] p) (Error(EmptyBatch 1)) "empty"
                Expect.equal (Pool.label 1 [| (10, 0) |] p) (Error(IndexOutOfRange(10, 10))) "past the end"
                Expect.equal (Pool.label 1 [| (-1, 0) |] p) (Error(IndexOutOfRange(-1, 10))) "negative"
                Expect.equal (Pool.label 1 [| (3, 0); (5, 2) |] p) (Error(AlreadyLabelled 5)) "labelled before"
                Expect.equal (Pool.label 1 [| (3, 0); (3, 0) |] p) (Error(DuplicateInBatch 3)) "twice in a batch"
                Expect.equal (Pool.label 1 [| (3, 3) |] p) (Error(LabelOutOfRange(3, 3, 3))) "label too large"
                Expect.equal p.LabelledCount 2 "the refused batches left the pool as it was"
                Expect.equal (Pool.create 5 0) (Error(InvalidPool(5, 0))) "no classes"
            }

            test "a malformed label log names the field" {
                let expectField text (field: string) =
                    match LabelLogJson.ofString text with
                    | Error(MalformedLog(f, _)) -> Expect.equal f field text
                    | other -> failtestf "expected MalformedLog(%s), found %A" field other

                expectField "{" "document"
                expectField "[]" "document"
                expectField """{"classes":3,"batches":[]}""" "poolSize"
                expectField """{"poolSize":"x","classes":3,"batches":[]}""" "poolSize"
                expectField """{"poolSize":4,"classes":3,"batches":[{"items":[]}]}""" "batches[0].round"
                expectField """{"poolSize":4,"classes":3,"batches":[{"round":0,"items":[[1]]}]}""" "batches[0].items[0]"

                expectField
                    """{"poolSize":4,"classes":3,"batches":[{"round":0,"items":[[1,2.5]]}]}"""
                    "batches[0].items[0][1]"
                // Well formed but impossible: the replay refuses it.
                let log =
                    LabelLogJson.ofString """{"poolSize":4,"classes":3,"batches":[{"round":0,"items":[[1,2],[1,0]]}]}"""
                    |> ok

                Expect.equal (Pool.ofLog log) (Error(DuplicateInBatch 1)) "the replay checks the batches"
            }
        ]

// ---------- random streams ----------

let private rng =
    testList
        "Rng"
        [
            test "a key's stream is a pure function of (seed, round, purpose)" {
                let k = Rng.key 7L 3 (Rng.Named "shuffle")
                Expect.equal (Rng.uniform k 50) (Rng.uniform k 50) "same key, same numbers"
                Expect.notEqual (Rng.uniform k 50) (Rng.uniform (Rng.key 7L 3 Rng.InitialDraw) 50) "another purpose"

                let purposes =
                    [
                        Rng.InitialDraw
                        Rng.RandomQuery
                        Rng.KMeansSeeds
                        Rng.BadgeSeeds
                        Rng.TorchTraining
                        Rng.BaldDropout 0
                        Rng.BaldDropout 3
                        Rng.EpochPairs 0
                        Rng.EpochPairs 1
                        Rng.PlainShuffle 0
                    ]

                Expect.equal
                    (purposes |> List.map (fun p -> (Rng.key 7L 3 p).Purpose.Name))
                    [
                        "initial"
                        "random"
                        "kmeans"
                        "badge"
                        "torch"
                        "bald"
                        "bald-3"
                        "pairs-0"
                        "pairs-1"
                        "plain-0"
                    ]
                    "the names every stored experiment's streams were drawn with"

                Expect.equal
                    (purposes
                     |> List.map (fun p -> Rng.origin (Rng.key 7L 3 p))
                     |> List.distinct
                     |> List.length)
                    purposes.Length
                    "distinct purposes, distinct streams"

                Expect.notEqual (Rng.uniform k 50) (Rng.uniform (Rng.key 7L 4 (Rng.Named "shuffle")) 50) "another round"
                Expect.notEqual (Rng.uniform k 50) (Rng.uniform (Rng.key 8L 3 (Rng.Named "shuffle")) 50) "another seed"
            }

            test "uniform doubles look uniform (mean and spread of 100,000 draws)" {
                let u = Rng.uniform (Rng.key 1L 0 (Rng.Named "moments")) 100000
                Expect.isTrue (u |> Array.forall (fun x -> x >= 0.0 && x < 1.0)) "in [0, 1)"
                Expect.floatClose { absolute = 0.005; relative = 0.0 } (Array.average u) 0.5 "mean 1/2"
                let var = u |> Array.averageBy (fun x -> (x - 0.5) ** 2.0)
                Expect.floatClose { absolute = 0.002; relative = 0.0 } var (1.0 / 12.0) "variance 1/12"
            }

            property
                "a permutation holds every index once"
                (Arb.fromGen (Gen.zip (Gen.choose (0, 500)) (Gen.choose (0, 99999))))
                (fun (n, seed) ->
                    Rng.permutation (Rng.key (int64 seed) 0 (Rng.Named "p")) n |> Array.sort = Array.init n id)

            property
                "sample draws min(k, n) distinct items of its input"
                (Arb.fromGen (Gen.zip3 (Gen.choose (0, 300)) (Gen.choose (0, 400)) (Gen.choose (0, 99999))))
                (fun (n, k, seed) ->
                    let items = Array.init n (fun i -> 3 * i + 1)
                    let s = Rng.sample (Rng.key (int64 seed) 0 (Rng.Named "s")) k items

                    s.Length = min k n
                    && (Array.distinct s).Length = s.Length
                    && s |> Array.forall (fun x -> x % 3 = 1 && x < 3 * n))

            test "NextBelow covers its range evenly" {
                let s = Rng.Stream(Rng.key 5L 0 (Rng.Named "below"))
                let counts = Array.zeroCreate 7

                for _ in 1..70000 do
                    let v = s.NextBelow 7
                    counts[v] <- counts[v] + 1

                Expect.all counts (fun c -> abs (c - 10000) < 400) "each of 7 values about 10,000 times"
            }
        ]

// ---------- query math ----------

let private near (tolerance: float) (expected: float) (actual: float) (what: string) =
    Expect.floatClose { absolute = tolerance; relative = 0.0 } actual expected what

let private uncertainty =
    testList
        "Uncertainty"
        [
            test "uniform prediction over 10 classes: L1 23.0259, L2 7.2814, u 15.1536" {
                let logp = Array.create 10 (log 0.1)
                near 1e-4 23.0259 (Uncertainty.l1 logp) "L1"
                near 1e-4 7.2814 (Uncertainty.l2 logp) "L2"
                near 1e-4 15.1536 (Uncertainty.mixed logp) "u"
                near 1e-4 2.302585 (Uncertainty.worstCase logp) "worst case"
            }

            test "p = (0.7, 0.2, 0.1): L1 4.26870, L2 2.83186, u 3.55028" {
                let logp = [| 0.7; 0.2; 0.1 |] |> Array.map log
                near 1e-5 4.26870 (Uncertainty.ofLogProbabilities Uncertainty.L1 logp) "L1"
                near 1e-5 2.83186 (Uncertainty.ofLogProbabilities Uncertainty.L2 logp) "L2"
                near 1e-5 3.55028 (Uncertainty.ofLogProbabilities Uncertainty.Mixed logp) "u"
            }

            test "p = (0.91, nine x 0.01): u = 27.68, larger = more confident" {
                let logp = Array.append [| log 0.91 |] (Array.create 9 (log 0.01))
                near 0.005 27.68 (Uncertainty.mixed logp) "u"
            }

            test "u is not monotone in entropy: it is dominated by the smallest probabilities" {
                let confident = [| 0.98; 0.01; 0.01 |]
                let torn = [| 0.6; 0.4 - 1e-6; 1e-6 |]

                Expect.isLessThan
                    (Classic.entropy confident)
                    (Classic.entropy torn)
                    "entropy calls the first more confident"

                Expect.isLessThan
                    (Uncertainty.mixed (Array.map log confident))
                    (Uncertainty.mixed (Array.map log torn))
                    "u calls the second more confident"
            }

            property "the uniform prediction minimises the WAAL uncertainty" (Arb.fromGen probabilities) (fun p ->
                let k = p.Length
                let uniform = Uncertainty.mixed (Array.create k (log (1.0 / float k)))

                [ Uncertainty.Mixed; Uncertainty.L1; Uncertainty.L2; Uncertainty.WorstCase ]
                |> List.forall (fun b ->
                    Uncertainty.ofLogProbabilities b (Array.map log p)
                    >= Uncertainty.ofLogProbabilities b (Array.create k (log (1.0 / float k))) - 1e-9)
                && Uncertainty.mixed (Array.map log p) >= uniform - 1e-9)

            property
                "every score is invariant under a relabelling of the classes"
                (Arb.fromGen (Gen.zip positiveProbabilities (Gen.choose (0, 9999))))
                (fun (p, seed) ->
                    let q =
                        Rng.permutation (Rng.key (int64 seed) 0 (Rng.Named "classes")) p.Length
                        |> Array.map (fun i -> p[i])

                    let same (f: float[] -> float) = abs (f p - f q) < 1e-9

                    same (Array.map log >> Uncertainty.mixed)
                    && same (Array.map log >> Uncertainty.worstCase)
                    && same Classic.leastConfidence
                    && same Classic.margin
                    && same Classic.negEntropy)

            property
                "the WAAL batch does not depend on the order the pool is stored in, ties included"
                (Arb.fromGen (
                    Gen.zip3
                        (Gen.arrayOfLength 6 positiveProbabilities)
                        (Gen.arrayOfLength 40 (Gen.choose (0, 5)))
                        (Gen.zip (Gen.choose (0, 9999)) (Gen.choose (1, 40)))
                ))
                (fun (distinctRows, rowOf, (seed, k)) ->
                    // 40 pool items drawn from 6 predictions (so scores tie), with ids that are not positions.
                    let ids = Array.init rowOf.Length (fun i -> 1000 + 7 * i)
                    let critic = Array.init rowOf.Length (fun i -> float (rowOf[i] % 3) / 4.0)

                    let batch (order: int[]) =
                        let scores =
                            order
                            |> Array.map (fun i ->
                                let p = distinctRows[rowOf[i]]
                                Uncertainty.combined 10.0 (Uncertainty.mixed (Array.map log p)) critic[i])

                        TopK.smallest k (order |> Array.map (fun i -> ids[i])) scores

                    let perm = Rng.permutation (Rng.key (int64 seed) 0 (Rng.Named "rows")) rowOf.Length
                    batch (Array.init rowOf.Length id) = batch perm)

            test "the combined score is u - selection x critic" {
                near 1e-12 (3.0 - 10.0 * 0.25) (Uncertainty.combined 10.0 3.0 0.25) "3 - 10 x 0.25"
            }
        ]

let private classic =
    testList
        "Classic"
        [
            property "entropy lies in [0, log C]" (Arb.fromGen probabilities) (fun p ->
                let h = Classic.entropy p
                h >= 0.0 && h <= log (float p.Length) + 1e-12)

            property
                "BALD lies in [0, H(mean)]"
                (Arb.fromGen (
                    Gen.choose (2, 6)
                    |> Gen.bind (fun k -> Gen.arrayOfLength 10 (Gen.arrayOfLength k (Gen.choose (1, 100))))
                ))
                (fun raw ->
                    let samples =
                        raw
                        |> Array.map (fun w -> let t = float (Array.sum w) in w |> Array.map (fun x -> float x / t))

                    let mean =
                        Array.init samples[0].Length (fun c -> samples |> Array.averageBy (fun s -> s[c]))

                    let mi = Classic.bald samples
                    mi >= 0.0 && mi <= Classic.entropy mean + 1e-12)

            test "BALD is zero when every pass agrees and log 2 for two certain, opposite halves" {
                near 1e-12 0.0 (Classic.bald (Array.create 10 [| 0.3; 0.7 |])) "agreement"

                let split =
                    Array.init 10 (fun t -> if t < 5 then [| 1.0; 0.0 |] else [| 0.0; 1.0 |])

                near 1e-12 (log 2.0) (Classic.bald split) "disagreement"
            }

            test "least confidence, margin and entropy on a known vector" {
                let p = [| 0.5; 0.3; 0.2 |]
                near 1e-12 0.5 (Classic.leastConfidence p) "max p"
                near 1e-12 0.2 (Classic.margin p) "top-two gap"
                near 1e-9 (-(0.5 * log 0.5 + 0.3 * log 0.3 + 0.2 * log 0.2)) (Classic.entropy p) "entropy"
                near 1e-12 0.0 (Classic.margin [| 0.5; 0.5 |]) "a tie has no margin"
            }
        ]

let private topk =
    testList
        "TopK"
        [
            property
                "a query returns min(k, |candidates|) distinct candidates"
                (Arb.fromGen scored)
                (fun (candidates, scores, k) ->
                    let chosen = TopK.smallest k candidates scores |> ok
                    let largest = TopK.largest k candidates scores |> ok

                    chosen.Length = min k candidates.Length
                    && (Array.distinct chosen).Length = chosen.Length
                    && chosen |> Array.forall (fun c -> Array.contains c candidates)
                    && largest.Length = chosen.Length)

            property
                "nothing left out scores below anything chosen"
                (Arb.fromGen scored)
                (fun (candidates, scores, k) ->
                    let chosen = TopK.smallest k candidates scores |> ok |> set

                    let score c =
                        scores[Array.findIndex ((=) c) candidates]

                    let worstChosen =
                        if chosen.IsEmpty then
                            Double.NegativeInfinity
                        else
                            chosen |> Seq.map score |> Seq.max

                    candidates
                    |> Array.forall (fun c -> chosen.Contains c || score c >= worstChosen))

            property
                "the choice does not depend on the order of the candidates"
                (Arb.fromGen (Gen.zip scored (Gen.choose (0, 9999))))
                (fun ((candidates, scores, k), seed) ->
                    let perm =
                        Rng.permutation (Rng.key (int64 seed) 0 (Rng.Named "order")) candidates.Length

                    let c2 = perm |> Array.map (fun i -> candidates[i])
                    let s2 = perm |> Array.map (fun i -> scores[i])
                    TopK.smallest k candidates scores = TopK.smallest k c2 s2)

            test "ties go to the lower index" {
                Expect.equal (TopK.smallest 2 [| 9; 4; 7 |] [| 1.0; 1.0; 1.0 |]) (Ok [| 4; 7 |]) "smallest"
                Expect.equal (TopK.largest 2 [| 9; 4; 7 |] [| 1.0; 1.0; 1.0 |]) (Ok [| 4; 7 |]) "largest"
            }

            test "a NaN or infinite score is refused" {
                match TopK.smallest 1 [| 0; 1 |] [| 0.0; nan |] with
                | Error(NonFiniteScore(1, v)) when Double.IsNaN v -> ()
                | other -> failtestf "expected NonFiniteScore at 1, found %A" other

                match TopK.smallest 1 [| 0; 1 |] [| infinity; 0.0 |] with
                | Error(NonFiniteScore(0, _)) -> ()
                | other -> failtestf "expected NonFiniteScore at 0, found %A" other

                Expect.equal
                    (TopK.smallest 1 [| 0; 1 |] [| 0.0 |])
                    (Error(LengthMismatch("scores (one per candidate)", 2, 1)))
                    "lengths"
            }
        ]

/// Brute force: the smallest radius over every choice of k new centres among the candidates.
let private bestRadius (pts: Embeddings) (centres: int[]) (candidates: int[]) (k: int) =
    let rec choose k (from: int list) =
        if k = 0 then
            [ [] ]
        else
            match from with
            | [] -> []
            | x :: rest -> (choose (k - 1) rest |> List.map (fun c -> x :: c)) @ choose k rest

    choose (min k candidates.Length) (List.ofArray candidates)
    |> List.map (fun extra -> FarthestFirst.radius pts (Array.append centres (Array.ofList extra)) candidates)
    |> List.min

let private kcenter =
    testList
        "FarthestFirst (k-center greedy)"
        [
            property
                "greedy picks min(k, |U|) distinct candidates"
                (Arb.fromGen (Gen.zip3 points (Gen.choose (0, 12)) (Gen.choose (0, 9999))))
                (fun (pts, k, seed) ->
                    let n = pts.Count
                    let perm = Rng.permutation (Rng.key (int64 seed) 0 (Rng.Named "split")) n
                    let centres = perm[.. n / 3 - 1]
                    let candidates = perm[n / 3 ..]
                    let picks = FarthestFirst.greedy pts centres candidates k

                    picks.Length = min k candidates.Length
                    && (Array.distinct picks).Length = picks.Length
                    && picks |> Array.forall (fun p -> Array.contains p candidates))

            property
                "the greedy radius is at most twice the brute-force optimum"
                (Arb.fromGen (Gen.zip3 points (Gen.choose (1, 3)) (Gen.choose (0, 9999))))
                (fun (pts, k, seed) ->
                    let n = min pts.Count 9
                    let perm = Rng.permutation (Rng.key (int64 seed) 0 (Rng.Named "split")) n
                    let centres = perm[.. n / 4 - 1]
                    let candidates = perm[n / 4 ..]

                    let greedy =
                        FarthestFirst.radius
                            pts
                            (Array.append centres (FarthestFirst.greedy pts centres candidates k))
                            candidates

                    greedy <= 2.0 * bestRadius pts centres candidates k + 1e-9)

            test "farthest-first on a line picks the far end, then the middle" {
                let pts =
                    {
                        Dim = 1
                        Values = [| 0.0f; 1.0f; 2.0f; 3.0f; 10.0f; 5.0f |]
                    }

                Expect.equal (FarthestFirst.greedy pts [| 0 |] [| 1; 2; 3; 4; 5 |] 2) [| 4; 5 |] "10 first, then 5"
            }
        ]

let private kmeanspp =
    testList
        "KMeans++"
        [
            property
                "seeds are min(k, n) distinct rows, even with repeated points"
                (Arb.fromGen (Gen.zip3 points (Gen.choose (0, 50)) (Gen.choose (0, 9999))))
                (fun (pts, k, seed) ->
                    let s =
                        KMeansPlusPlus.ofEmbeddings (Rng.key (int64 seed) 0 (Rng.Named "badge")) pts k

                    s.Length = min k pts.Count
                    && (Array.distinct s).Length = s.Length
                    && s |> Array.forall (fun i -> i >= 0 && i < pts.Count))

            test "the first seed has the largest norm, and the same key gives the same seeds" {
                let pts =
                    {
                        Dim = 2
                        Values = [| 1.0f; 0.0f; 0.0f; 3.0f; 2.0f; 2.0f; 0.0f; 0.0f |]
                    }

                let a = KMeansPlusPlus.ofEmbeddings (Rng.key 3L 1 (Rng.Named "badge")) pts 4
                Expect.equal a[0] 1 "norm 3 beats norm 2.83"
                Expect.equal a (KMeansPlusPlus.ofEmbeddings (Rng.key 3L 1 (Rng.Named "badge")) pts 4) "reproducible"
            }
        ]

let private kmeans =
    testList
        "Lloyd (k-means)"
        [
            test "three separated clusters: one centroid near each mean, one distinct pick from each cluster" {
                // Rows 0-3 near 0, rows 4-7 near 10, rows 8-11 near 20 (one dimension).
                let values =
                    [|
                        0.0f
                        0.5f
                        -0.5f
                        0.2f
                        10.0f
                        10.4f
                        9.6f
                        10.1f
                        20.0f
                        19.5f
                        20.5f
                        20.2f
                    |]

                let pts = { Dim = 1; Values = values }
                let c = Lloyd.centroids (Rng.key 1L 0 (Rng.Named "kmeans")) pts 3 10 |> Array.sort
                Expect.floatClose { absolute = 0.01; relative = 0.0 } c[0] 0.05 "cluster near 0"
                Expect.floatClose { absolute = 0.01; relative = 0.0 } c[1] 10.025 "cluster near 10"
                Expect.floatClose { absolute = 0.01; relative = 0.0 } c[2] 20.05 "cluster near 20"
                let picks = Lloyd.nearestDistinct pts c
                Expect.equal (picks |> Array.map (fun i -> i / 4) |> Array.sort) [| 0; 1; 2 |] "one per cluster"

                Expect.equal
                    (Lloyd.nearestDistinct pts [| 0.0; 0.0; 0.0 |]).Length
                    3
                    "equal centroids still pick distinct rows"

                Expect.equal (Array.distinct (Lloyd.nearestDistinct pts [| 0.0; 0.0; 0.0 |])).Length 3 "distinct"
            }
        ]

let private imbalance =
    testList
        "Imbalance"
        [
            test "C0 for (L, U, B) = (1000, 49000, 1000) is 0.4898" {
                near 5e-5 0.4898 (Imbalance.paper 1000 49000 1000) "C0"
                near 1e-12 (1000.0 / 49000.0) (Imbalance.value Imbalance.Reference 1000 49000 1000) "|L|/|U|"
                near 0.0 1.0 (Imbalance.value Imbalance.One 1000 49000 1000) "one"
            }
        ]

// ---------- Wasserstein-1 ----------

/// A random 1-Lipschitz function: piecewise linear through knots with slopes in [-1, 1].
let private lipschitz =
    gen {
        let! knots =
            Gen.arrayOfLength 6 (Gen.choose (-1000, 1000) |> Gen.map (fun v -> float v / 100.0))

        let! slopes =
            Gen.arrayOfLength 7 (Gen.choose (-100, 100) |> Gen.map (fun v -> float v / 100.0))

        let knots = Array.sort knots

        return
            fun (x: float) ->
                // Integrate the slope from 0 to x: the slope is slopes[i] between knots i-1 and i.
                let slopeAt t =
                    slopes[knots |> Array.filter (fun k -> k < t) |> Array.length]

                let points =
                    Array.concat
                        [
                            [| 0.0; x |]
                            knots |> Array.filter (fun k -> k > min 0.0 x && k < max 0.0 x)
                        ]
                    |> Array.sort

                let integral =
                    points
                    |> Array.pairwise
                    |> Array.sumBy (fun (a, b) -> slopeAt ((a + b) / 2.0) * (b - a))

                if x >= 0.0 then integral else -integral
    }

let private wasserstein =
    let w1 = Wasserstein.w1

    testList
        "Wasserstein"
        [
            property
                "W1 is non-negative, symmetric, and zero between a sample and itself"
                (Arb.fromGen (Gen.zip sample sample))
                (fun (p, q) ->
                    w1 p q >= 0.0
                    && abs (w1 p q - w1 q p) < 1e-9
                    && w1 p p = 0.0
                    && w1 p (Array.rev p) = 0.0)

            property
                "W1 satisfies the triangle inequality"
                (Arb.fromGen (Gen.zip3 sample sample sample))
                (fun (p, q, r) -> w1 p r <= w1 p q + w1 q r + 1e-9)

            property
                "a sample shifted by c is at W1 distance |c| from itself"
                (Arb.fromGen (Gen.zip sample (Gen.choose (-500, 500))))
                (fun (p, c) ->
                    let c = float c / 100.0
                    abs (w1 p (p |> Array.map ((+) c)) - abs c) < 1e-9)

            property "W1 is at least the difference of the means" (Arb.fromGen (Gen.zip sample sample)) (fun (p, q) ->
                w1 p q >= abs (Array.average p - Array.average q) - 1e-9)

            property
                "Kantorovich-Rubinstein: |E_P f - E_Q f| <= W1 for 1-Lipschitz f"
                (Arb.fromGen (Gen.zip3 sample sample lipschitz))
                (fun (p, q, f) -> abs (Array.averageBy f p - Array.averageBy f q) <= w1 p q + 1e-9)

            test "two point masses one apart are at distance 1; halves of a two-point sample at 1/2" {
                near 1e-12 1.0 (w1 [| 0.0 |] [| 1.0 |]) "point masses"
                near 1e-12 0.5 (w1 [| 0.0; 1.0 |] [| 1.0 |]) "half the mass moves 1"
            }
        ]

// ---------- metrics ----------

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

/// Scored candidates with predicted classes (3 classes) and 2-d embeddings.
let private scoredWithClasses =
    gen {
        let! candidates, scores, k = scored
        let! classes = Gen.arrayOfLength candidates.Length (Gen.choose (0, 2))
        let! coords = Gen.arrayOfLength (2 * candidates.Length) (Gen.choose (-50, 50))
        let! seed = Gen.choose (0, 100000)

        let e =
            {
                Dim = 2
                Values = coords |> Array.map float32
            }

        return candidates, scores, k, classes, e, int64 seed
    }

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

let private fashion =
    {
        Name = "fashion-mnist"
        Momentum = 0.5
        BaselineEpochs = 10
        BaselineLearningRate = 0.01
    }

let private cifar =
    {
        Name = "cifar10"
        Momentum = 0.3
        BaselineEpochs = 20
        BaselineLearningRate = 0.05
    }

let private profileOf name =
    match name with
    | "fashion-mnist" -> Ok fashion
    | "cifar10" -> Ok cifar
    | other -> Error $"unknown dataset '{other}'"

/// A value of an option other than its default, valid for it.
let private otherValue (o: OptionDef) (current: string) =
    match o.Kind with
    | Choice names -> names |> List.find (fun n -> n <> current)
    | Flag -> if current = "true" then "false" else "true"
    | Text when o.Name = "dataset" -> "cifar10"
    | Text when o.Name = "stop-when" -> "labels>=5000,kappa>=0.99/2"
    | Text when o.Name = "rare-classes" -> if current = "" then "0,4,8" else ""
    | Text -> current + "x"
    | IntegerOrAll -> if current = "all" then "1234" else "all"
    | Integer -> string (int64 current + 3L)
    | Number -> Options.formatNumber (float current * 0.5 + 0.125)

let private spec =
    let d = Options.defaults fashion "waal" ReferencePreset

    testList
        "Options"
        [
            test "every option's default reads back, and setting its text again changes nothing" {
                for o in Options.all do
                    Expect.equal
                        (o.Get d)
                        (o.Default
                            {
                                Profile = fashion
                                Strategy = "waal"
                                Preset = ReferencePreset
                            })
                        $"{o.Name}: the default"

                    Expect.equal (o.Set (o.Get d) d) (Ok d) $"{o.Name}: Set (Get c) c = c"
            }

            test "every option takes another valid value and refuses garbage, naming itself" {
                for o in Options.all do
                    let v = otherValue o (o.Get d)

                    match Options.set o.Name v d with
                    | Ok c -> Expect.equal (Options.get o.Name c) v $"{o.Name}: the new value reads back"
                    | Error e -> failtestf "%s: refused %s: %s" o.Name v e.Message

                    if o.Kind <> Text then
                        match Options.set o.Name "garbage!" d with
                        | Error e -> Expect.equal e.Field o.Name $"{o.Name}: the error names the option"
                        | Ok _ -> failtestf "%s accepted garbage" o.Name
            }

            test "names: JSON camelCase and MSBuild PascalCase, all distinct; unknown names get the nearest" {
                let gp = Options.tryFind "gp-weight" |> Option.get
                Expect.equal (gp.JsonName, gp.Metadata) ("gpWeight", "GpWeight") "derived names"
                let names = Options.all |> List.map (fun o -> o.Name)
                Expect.equal (List.distinct names) names "distinct"

                match Options.set "gp-wieght" "1" d with
                | Error e -> Expect.stringContains e.Message "gp-weight" "the nearest name"
                | Ok _ -> failtest "an unknown option was accepted"

                Expect.isTrue (Options.tryFindMetadata "seeds").IsNone "Seeds is not Seed"
                Expect.equal (Options.nearest (Options.all |> List.map (fun o -> o.Metadata)) "Seeds") "Seed" "nearest"
            }

            test "spec.json round-trips every field, and versions are not part of the configuration" {
                let c =
                    Options.all
                    |> List.fold (fun c o -> o.Set (otherValue o (o.Get d)) c |> Result.defaultWith failwith) d

                Expect.notEqual c d "every field changed"
                Expect.equal (SpecJson.ofJson profileOf (SpecJson.toJson [ "waal", "0.1.0" ] c)) (Ok c) "round trip"
                Expect.equal (SpecJson.ofJson profileOf (SpecJson.toJson [] d)) (Ok d) "defaults, pool = all"
            }

            test
                "a run says what it is: the recommended waal is WAAL's trainer with the margin query and the critic off" {
                let recommended = (Options.defaults fashion "waal" RecommendedPreset).Spec
                Expect.equal (Options.describe recommended) "WAAL's trainer, margin query, critic off" "recommended"
                Expect.equal (Options.describe d.Spec) "WAAL, the paper's query: bound - 10 x critic" "reference"

                let combined =
                    { recommended with
                        Method =
                            { recommended.Method with
                                Score = Combined
                                Selection = 0.1
                                ScoreScale = ZScale
                                CriticTrained = false
                            }
                    }

                Expect.equal
                    (Options.describe combined)
                    "WAAL: margin - 0.1 x critic on the z scale, frozen random critic"
                    "combined, frozen"

                Expect.equal (Options.describe { recommended with Strategy = "badge" }) "badge" "a baseline"
                let json = SpecJson.toJson [] (Options.defaults fashion "waal" RecommendedPreset)

                Expect.stringContains
                    json
                    "\"summary\": \"WAAL's trainer, margin query, critic off\""
                    "spec.json says it in words"
            }

            test
                "the reference defaults: SGD 0.01 / 0.5 (CIFAR-10 0.3), batch 64, alpha 2e-3, selection 10, GP weight 2" {
                let s = d.Spec
                Expect.equal (s.Train.LearningRate, s.Train.Momentum, s.Train.Batch) (0.01, 0.5, 64) "optimiser"
                Expect.equal (Options.defaults cifar "waal" ReferencePreset).Spec.Train.Momentum 0.3 "CIFAR-10 momentum"

                Expect.equal
                    (Options.defaults cifar "random" ReferencePreset).Spec.Train.Momentum
                    0.3
                    "CIFAR-10 momentum, baselines too"

                Expect.equal (s.Method.Alpha, s.Method.Selection, s.Method.GpWeight) (2e-3, 10.0, 2.0) "method"

                Expect.equal
                    (s.Method.Imbalance, s.Method.GpSign, s.Method.CriticOutput, s.Method.Augment)
                    (Imbalance.Reference, ReferenceSign, SigmoidOutput, false)
                    "reference choices"

                let baseline = (Options.defaults fashion "entropy" ReferencePreset).Spec.Train
                Expect.equal (s.Train.Epochs, baseline.Epochs) (2, 10) "waal 2 epochs, baselines their reference 10"

                Expect.equal
                    (Options.defaults cifar "random" ReferencePreset).Spec.Train.LearningRate
                    0.05
                    "CIFAR-10 baselines' lr"
            }

            test "a spec.json written before presets (no later fields) reads back as the reference preset" {
                use doc = System.Text.Json.JsonDocument.Parse(SpecJson.toJson [] d)

                let later =
                    Options.all
                    |> List.filter (fun o -> not o.Required)
                    |> List.map (fun o -> o.JsonName)

                Expect.contains later "preset" "preset is a later field"

                let old =
                    doc.RootElement.EnumerateObject()
                    |> Seq.filter (fun p -> not (List.contains p.Name later))
                    |> Seq.map (fun p -> $"\"{p.Name}\": {p.Value.GetRawText()}")
                    |> String.concat ", "

                Expect.equal (SpecJson.ofJson profileOf ("{" + old + "}")) (Ok d) "the reference configuration"
            }

            test "the recommended preset: one floor budget for every strategy; reference is one option away" {
                let r = Options.defaults fashion "waal" RecommendedPreset
                let b = Options.defaults fashion "entropy" RecommendedPreset
                Expect.equal r.Spec.Preset RecommendedPreset "recorded"
                Expect.equal r.Spec.Train.Budget EpochsOverFloor "the floor budget"
                Expect.equal r.Spec.Train b.Spec.Train "waal and the baselines train alike"
                Expect.equal b.Spec.Pick.Mode TopK "baselines keep top-k"

                Expect.equal
                    (SpecJson.ofJson profileOf (SpecJson.toJson [] r))
                    (Ok r)
                    "the recommended configuration round-trips"

                Expect.equal
                    (Options.set "preset" "reference" r |> Result.map (fun c -> c.Spec.Preset))
                    (Ok ReferencePreset)
                    "set"
            }

            test "a spec edited into nonsense names every bad field" {
                let text =
                    (SpecJson.toJson [] d)
                        .Replace("\"gpSign\": \"reference\"", "\"gpSign\": \"sideways\"")
                        .Replace("\"epochs\": 2", "\"epochs\": \"two\"")
                        .Replace("\"seed\": 1", "\"seeds\": 1")

                match SpecJson.ofJson profileOf text with
                | Error errors ->
                    let fields = errors |> List.map (fun e -> e.Field) |> set

                    Expect.equal
                        fields
                        (set [ "gpSign"; "epochs"; "seeds"; "seed" ])
                        $"unreadable fields named: %A{errors}"
                | Ok _ -> failtest "accepted nonsense"

                match
                    SpecJson.ofJson profileOf ((SpecJson.toJson [] d).Replace("\"query\": 1000", "\"query\": -3"))
                with
                | Error [ e ] -> Expect.equal e.Field "query" "the out-of-range field"
                | other -> failtestf "expected one error for query, found %A" other

                Expect.isError (SpecJson.ofJson profileOf "not json") "not JSON"
                Expect.isError (SpecJson.ofJson profileOf "{}") "empty object"

                match SpecJson.ofJson profileOf ((SpecJson.toJson [] d).Replace("fashion-mnist", "mnist-ish")) with
                | Error [ e ] -> Expect.equal e.Field "dataset" "an unknown dataset"
                | other -> failtestf "expected one error for dataset, found %A" other
            }
        ]

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


// ---------- labelling a batch by hand ----------

/// A batch of distinct indices of a pool of 50 with 4 classes, and a script of actions on it: (0, i, l) gives
/// item i label l, (1, i, _) skips item i, (2, _, _) undoes (items and labels may be out of range on purpose).
let private labellingScript =
    gen {
        let! n = Gen.choose (1, 12)
        let! indices = Gen.shuffle [| 0..49 |] |> Gen.map (Array.truncate n)

        let! actions =
            Gen.listOf (Gen.zip3 (Gen.choose (0, 2)) (Gen.choose (0, n)) (Gen.choose (-1, 4)))

        return indices, actions
    }
    |> Arb.fromGen

let private act (indices: int[]) (b: BatchLabels) (kind: int, at: int, label: int) =
    let index = if at < indices.Length then indices[at] else 50 + at

    match kind with
    | 0 -> BatchLabels.give 4 index label b
    | 1 -> BatchLabels.skip index b
    | _ -> BatchLabels.undo b

/// The state a script leads to (refused actions change nothing).
let private play (indices: int[]) actions (start: BatchLabels) =
    actions
    |> List.fold
        (fun b a ->
            match act indices b a with
            | Ok next -> next
            | Error _ -> b)
        start

let private labelling =
    testList
        "labelling a batch"
        [
            property
                "every state a script reaches is consistent, survives JSON, and counts each item once"
                labellingScript
                (fun (indices, actions) ->
                    let final = play indices actions (BatchLabels.start 3 QueryBatch indices)

                    let back = BatchLabels.ofJson 50 4 (BatchLabels.toJson final)

                    back = Ok final
                    && final.Labels.Count <= indices.Length
                    && final.Labels
                       |> Map.forall (fun i l -> Array.contains i indices && l >= 0 && l < 4)
                    && List.sort final.Order = List.sort (List.ofArray indices)
                    && BatchLabels.isComplete final = (final.Labels.Count = indices.Length)
                    && (BatchLabels.pairs final |> Array.map fst) = (indices |> Array.filter final.Labels.ContainsKey))

            property
                "undo takes back exactly the last label given (the one it replaced comes back)"
                labellingScript
                (fun (indices, actions) ->
                    let b = play indices actions (BatchLabels.start 0 InitialBatch indices)

                    indices
                    |> Array.forall (fun i ->
                        [ 0..3 ]
                        |> List.forall (fun l ->
                            let given = BatchLabels.give 4 i l b |> ok
                            let undone = BatchLabels.undo given |> ok
                            undone.Labels = b.Labels && undone.History = b.History)))

            property "refusals name the problem and change nothing" labellingScript (fun (indices, _) ->
                let b = BatchLabels.start 0 QueryBatch indices

                BatchLabels.give 4 999 0 b = Error(NotInBatch 999)
                && BatchLabels.give 4 indices[0] 4 b = Error(NoSuchClass(4, 4))
                && BatchLabels.give 4 indices[0] -1 b = Error(NoSuchClass(-1, 4))
                && BatchLabels.skip 999 b = Error(NotInBatch 999)
                && BatchLabels.undo b = Error NothingToUndo)

            property "a skipped item is asked after every other unlabelled item" labellingScript (fun (indices, _) ->
                let b = BatchLabels.start 0 QueryBatch indices
                let skipped = BatchLabels.skip indices[0] b |> ok

                if indices.Length = 1 then
                    BatchLabels.next skipped = Some indices[0]
                else
                    BatchLabels.next skipped = Some indices[1]
                    && List.last skipped.Order = indices[0])

            test "a batch file that does not describe a batch of the pool is refused, saying why" {
                let good =
                    BatchLabels.toJson (BatchLabels.give 3 5 2 (BatchLabels.start 1 QueryBatch [| 5; 7 |]) |> ok)

                let refused (text: string) (why: string) =
                    match BatchLabels.ofJson 10 3 text with
                    | Error m -> Expect.stringContains m why $"{text}"
                    | Ok _ -> failtest $"accepted: {text}"

                refused "{" "not valid JSON"
                refused (good.Replace("waal-batch/1", "x")) "'format'"
                refused (good.Replace("[5,7]", "[5,70]")) "index 70 is outside the pool of 10"
                refused (good.Replace("[5,7]", "[5,5]")) "repeats"
                refused (good.Replace("[[5,2]]", "[[5,3]]")) "label 3 of index 5 is outside 0..2"
                refused (good.Replace("\"query\"", "\"other\"")) "'kind'"
                Expect.isOk (BatchLabels.ofJson 10 3 good) "the good one"
            }
        ]

/// Options.build: the roles in the table decide what each front end gets when an option is not given.
let private build =
    test "Options.build: read-first fallbacks per front end, the labelling page's own defaults, given values win" {
        let defaultsOf d s p =
            profileOf d |> Result.map (fun prof -> Options.defaults prof s p)

        let opt name = Options.tryFind name |> Option.get
        let built front given = Options.build defaultsOf front given

        let ok =
            function
            | Ok c -> c
            | Error e -> failtestf "%A" e

        // C# falls back to fashion-mnist; the command line and spec.json must be told the dataset.
        let c = built CSharp [] |> ok
        Expect.equal c.Spec.Dataset "fashion-mnist" "C#'s dataset fallback"
        Expect.equal c.Spec.Strategy "waal" "the strategy's fallback"
        Expect.equal c.Spec.Preset RecommendedPreset "the preset's fallback"

        match built CommandLine [] with
        | Error [ e ] -> Expect.equal e.Field "dataset" "the missing option is named"
        | other -> failtestf "expected one error on dataset, found %A" other

        // spec.json without a preset is the reference preset; the command line's default is the recommended one.
        let fromFile =
            built SpecFile [ opt "dataset", "fashion-mnist"; opt "strategy", "margin" ]
            |> ok

        Expect.equal fromFile.Spec.Preset ReferencePreset "a spec.json without preset"

        match built SpecFile [ opt "dataset", "fashion-mnist" ] with
        | Error [ e ] -> Expect.equal e.Field "strategy" "spec.json must name its strategy"
        | other -> failtestf "expected one error on strategy, found %A" other

        // The labelling page labels batches of 20 unless told otherwise; the command line keeps the table's.
        let page = built LabellingPage [ opt "dataset", "fashion-mnist" ] |> ok
        Expect.equal (page.Spec.Initial, page.Spec.Query) (20, 20) "the page's own defaults"
        let cli = built CommandLine [ opt "dataset", "fashion-mnist" ] |> ok
        Expect.equal (cli.Spec.Initial, cli.Spec.Query) (1000, 1000) "the table's defaults"

        let given =
            built LabellingPage [ opt "dataset", "fashion-mnist"; opt "query", "5" ] |> ok

        Expect.equal (given.Spec.Initial, given.Spec.Query) (20, 5) "a given value wins over the page's default"

        // The read-first options pick the others' defaults wherever they stand in the list; errors are all kept.
        let late = built CommandLine [ opt "lr", "0.2"; opt "dataset", "cifar10" ] |> ok
        Expect.equal late.Spec.Dataset "cifar10" "dataset read first"
        Expect.equal (Options.get "lr" late) "0.2" "the value given before it still applies"

        match built CommandLine [ opt "dataset", "fashion-mnist"; opt "query", "0"; opt "lr", "-1" ] with
        | Error errors -> Expect.equal (errors |> List.map (fun e -> e.Field)) [ "query"; "lr" ] "every error, in order"
        | Ok _ -> failtest "expected errors"

        Expect.equal
            (Options.all
             |> List.filter (fun o -> o.FolderOnly)
             |> List.map (fun o -> o.Name)
             |> Set.ofList)
            (set
                [
                    "test-dir"
                    "image-size"
                    "channels"
                    "skip-bad-images"
                    "holdout"
                    "backbone"
                ])
            "the folder-only options"
    }

let private architectures =
    testList
        "network and critic names"
        [
            test "--network names one architecture per dataset and shape, or says why not" {
                let reference n c h w =
                    Architecture.resolve n NetworkInputs.Reference c h w

                let folder n c h w =
                    Architecture.resolve n NetworkInputs.Folder c h w

                let embeddings n d =
                    Architecture.resolve n NetworkInputs.Embeddings d 1 1

                Expect.equal (reference "auto" 1 28 28) (Ok SmallCnn) "auto, Fashion-MNIST"
                Expect.equal (reference "auto" 3 32 32) (Ok Vgg16) "auto, CIFAR-10"
                Expect.equal (reference "auto" 3 64 48) (Ok Resnet) "auto, another shape"
                // Auto picks by dataset: a folder of one's own photos at CIFAR-10's or MNIST's shape is not
                // CIFAR-10 or MNIST.
                Expect.equal (folder "auto" 3 32 32) (Ok Resnet) "auto, a folder at 32x32"
                Expect.equal (folder "auto" 1 28 28) (Ok Resnet) "auto, a grey folder at 28x28"
                Expect.equal (folder "vgg16" 3 32 32) (Ok Vgg16) "a folder may still ask for vgg16"
                Expect.equal (embeddings "auto" 512) (Ok Head) "auto, a backbone's embeddings"
                Expect.equal (embeddings "head" 320) (Ok Head) "head, a backbone's embeddings"
                Expect.equal (reference "resnet" 1 28 28) (Ok Resnet) "resnet on any shape >= 8"
                Expect.equal (reference "vgg16" 3 32 32) (Ok Vgg16) "vgg16 on its shape"

                let refused (r: Result<Architecture, string>) (why: string) =
                    match r with
                    | Error m -> Expect.stringContains m why why
                    | Ok a -> failtest $"{why}: gave {a}"

                refused (reference "small-cnn" 3 32 32) "small-cnn takes 1x28x28 images, not 3x32x32"
                refused (reference "vgg16" 1 28 28) "vgg16 takes 3x32x32 images"
                refused (reference "auto" 1 4 4) "resnet needs both sides >= 8"
                refused (folder "auto" 3 7 40) "resnet needs both sides >= 8"
                refused (reference "resnet" 3 7 40) "resnet needs both sides >= 8"
                refused (folder "head" 3 32 32) "head classifies a backbone's embeddings: give --backbone"
                refused (embeddings "resnet" 512) "are classified by the head (--network auto or head), not by 'resnet'"

                refused
                    (reference "lenet" 1 28 28)
                    "unknown network 'lenet'; expected one of auto, small-cnn, vgg16, resnet, head"
            }

            test "the option table offers exactly the registry's networks and critics" {
                let choices name =
                    match (Options.tryFind name).Value.Kind with
                    | Choice names -> names
                    | k -> failtest $"{name} is {k}"

                Expect.equal (choices "network") Architecture.choices "networks"
                Expect.equal (choices "critic") (CriticOutput.names |> List.map snd) "critics"

                for a, n in Architecture.names do
                    Expect.equal (Architecture.name a) n "name"

                for o, n in CriticOutput.names do
                    Expect.equal (CriticOutput.tryParse n) (Some o) "critic round trip"

                Expect.equal (CriticOutput.tryParse "tanh") None "an unknown critic"
            }
        ]

let all =
    testList
        "Core"
        [
            architectures
            build
            labelling
            stopping
            pool
            pairing
            spec
            rounds
            rng
            uncertainty
            classic
            topk
            kcenter
            kmeanspp
            kmeans
            imbalance
            wasserstein
            metrics
            batchSelection
            budget
            diagnostics
        ]
