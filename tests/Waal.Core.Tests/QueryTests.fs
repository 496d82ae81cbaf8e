/// The query math: uncertainty scores, top-k, k-centre, k-means, the imbalance coefficient, the Lipschitz critic and W1.
module Waal.Core.Tests.QueryTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core
open Waal.Core.Tests.Common

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

let all =
    testList
        "Core"
        [
            uncertainty
            classic
            topk
            kcenter
            kmeanspp
            kmeans
            imbalance
            wasserstein
        ]
