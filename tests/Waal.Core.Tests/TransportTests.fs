/// Properties of the Wasserstein batch query's math (Waal.Core.Transport): monotone and supermodular F, lazy
/// greedy = greedy, copies never picked, invariances, the 1-D transport identity, and the (1 - 1/e) bound.
module Waal.Core.Tests.TransportTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core

let private config =
    { FsCheckConfig.defaultConfig with
        maxTest = 150
    }

let private property name (arb: Arbitrary<'a>) (check: 'a -> bool) =
    testPropertyWithConfig config name (Prop.forAll arb check)

/// A pool: rows 0..n-1 of small-integer coordinates (so copies are common and translations and signed axis
/// permutations are exact), each row a target with a positive weight, some rows labelled, the rest candidates.
type Case =
    {
        Problem: Transport.Problem
        K: int
        Seed: int
    }

let private pool (maxN: int) (dims: int * int) =
    gen {
        let! n = Gen.choose (2, maxN)
        let! dim = Gen.choose dims
        let! coords = Gen.arrayOfLength (n * dim) (Gen.choose (-6, 6) |> Gen.map float32)
        let! raw = Gen.arrayOfLength n (Gen.choose (1, 20) |> Gen.map float)
        let! labelled = Gen.choose (0, n - 1)
        let! seed = Gen.choose (0, 99999)
        let! k = Gen.choose (0, n - labelled)
        let order = Array.init n id |> Array.sortBy (fun i -> (i * 7919 + seed) % 104729)
        let total = Array.sum raw

        return
            {
                Problem =
                    {
                        Points = { Dim = dim; Values = coords }
                        Ids = Array.init n id
                        Targets = Array.init n id
                        Weights = raw |> Array.map (fun w -> w / total)
                        Support = order[.. labelled - 1]
                        Candidates = order[labelled..] |> Array.sort
                    }
                K = k
                Seed = seed
            }
    }

let private near (a: float) (b: float) =
    abs (a - b) <= 1e-9 * (1.0 + abs a + abs b)

let private prefixes (picks: int[]) =
    [ for i in 0 .. picks.Length -> picks[.. i - 1] ]

/// The same problem with its rows stored in another order (ids travel with the rows).
let private permuted (seed: int) (p: Transport.Problem) : Transport.Problem * int[] =
    let n = p.Points.Count
    let d = p.Points.Dim

    let perm =
        Array.init n id |> Array.sortBy (fun i -> (i * 104723 + seed * 31) % 7919, i)

    let inverse = Array.zeroCreate n

    for i in 0 .. n - 1 do
        inverse[perm[i]] <- i

    let row r = inverse[r]

    ({
        Points =
            {
                Dim = d
                Values = Array.init (n * d) (fun x -> p.Points.Values[perm[x / d] * d + x % d])
            }
        Ids = Array.init n (fun i -> p.Ids[perm[i]])
        Targets = p.Targets |> Array.map row
        Weights = p.Weights
        Support = p.Support |> Array.map row
        Candidates = p.Candidates |> Array.map row
    }
    : Transport.Problem),
    perm

let private mapPoints (f: float32[] -> float32[]) (p: Transport.Problem) =
    let d = p.Points.Dim

    { p with
        Points =
            {
                Dim = d
                Values =
                    Array.init p.Points.Count (fun r -> f p.Points.Values[r * d .. r * d + d - 1])
                    |> Array.concat
            }
    }

let all =
    testList
        "transport query"
        [
            property "F never increases as the batch grows" (Arb.fromGen (pool 30 (1, 4))) (fun x ->
                let s = Transport.greedy x.Problem x.K
                let values = prefixes s.Picks |> List.map (Transport.objective x.Problem)
                values |> List.pairwise |> List.forall (fun (a, b) -> b <= a + 1e-12))

            property
                "each pick lowers F by its gain, and the gains never increase (supermodular F)"
                (Arb.fromGen (pool 30 (1, 4)))
                (fun x ->
                    let s = Transport.greedy x.Problem x.K

                    let values =
                        prefixes s.Picks |> List.map (Transport.objective x.Problem) |> Array.ofList

                    Array.forall2 (fun (a, b) g -> near (a - b) g) (Array.pairwise values) s.Gains
                    && (s.Gains |> Array.pairwise |> Array.forall (fun (a, b) -> b <= a + 1e-12)))

            property
                "supermodularity: a candidate's gain to a superset is at most its gain to a subset"
                (Arb.fromGen (pool 25 (1, 3)))
                (fun x ->
                    let p = x.Problem
                    let s = Transport.greedy p p.Candidates.Length
                    let small = s.Picks[.. (s.Picks.Length / 2) - 1]
                    let large = s.Picks

                    p.Candidates
                    |> Array.forall (fun c ->
                        let atSmall =
                            Transport.gain p (Transport.nearest p (Array.append p.Support small)) c

                        let atLarge =
                            Transport.gain p (Transport.nearest p (Array.append p.Support large)) c

                        atLarge <= atSmall + 1e-12))

            property "lazy greedy picks what plain greedy picks" (Arb.fromGen (pool 40 (1, 4))) (fun x ->
                let a = Transport.greedy x.Problem x.K
                let b = Transport.lazyGreedy x.Problem x.K
                a.Picks = b.Picks && Array.forall2 near a.Gains b.Gains)

            property
                "a copy of a site has gain 0 and is never picked while a positive gain remains"
                (Arb.fromGen (pool 30 (1, 2)))
                (fun x ->
                    let p = x.Problem
                    let s = Transport.greedy p x.K

                    let v (r: int) =
                        p.Points.Values[r * p.Points.Dim .. r * p.Points.Dim + p.Points.Dim - 1]

                    s.Picks
                    |> Array.mapi (fun i c ->
                        let sites = Array.append p.Support s.Picks[.. i - 1]
                        let isCopy = sites |> Array.exists (fun r -> v r = v c)
                        let current = Transport.nearest p sites

                        let positiveLeft =
                            p.Candidates
                            |> Array.exists (fun o ->
                                not (Array.contains o s.Picks[.. i - 1]) && Transport.gain p current o > 0.0)

                        (not isCopy || s.Gains[i] = 0.0) && not (isCopy && positiveLeft))
                    |> Array.forall id)

            property "storing the pool in another order picks the same items" (Arb.fromGen (pool 30 (1, 4))) (fun x ->
                let q, perm = permuted x.Seed x.Problem

                let a =
                    (Transport.greedy x.Problem x.K).Picks |> Array.map (fun r -> x.Problem.Ids[r])

                let b = (Transport.lazyGreedy q x.K).Picks |> Array.map (fun r -> q.Ids[r])
                ignore perm
                a = b)

            property
                "translating the embedding, or rotating it by a signed axis permutation, changes nothing"
                (Arb.fromGen (Gen.zip (pool 30 (2, 3)) (Gen.choose (-9, 9))))
                (fun (x, shift) ->
                    let base' = Transport.greedy x.Problem x.K

                    let moved =
                        x.Problem
                        |> mapPoints (fun v ->
                            // (a, b, c...) -> (-b + s, a + s, c + s...): a quarter turn in the first plane, then a shift.
                            Array.init v.Length (fun j ->
                                (match j with
                                 | 0 -> -v[1]
                                 | 1 -> v[0]
                                 | _ -> v[j])
                                + float32 shift))

                    let after = Transport.greedy moved x.K

                    base'.Picks = after.Picks
                    && near (Transport.objective x.Problem base'.Picks) (Transport.objective moved after.Picks))

            property
                "a general rotation keeps F to rounding, and the picks but for gains tied to rounding"
                (Arb.fromGen (Gen.zip (pool 20 (2, 2)) (Gen.choose (1, 359))))
                (fun (x, degrees) ->
                    // Continuous coordinates: each value moved by a different amount, so copies come apart.
                    let p =
                        { x.Problem with
                            Points =
                                { x.Problem.Points with
                                    Values =
                                        x.Problem.Points.Values
                                        |> Array.mapi (fun i v ->
                                            v + float32 (0.3 * Math.Sin(float (i * 12347 + x.Seed))))
                                }
                        }

                    let a = Math.PI * float degrees / 180.0

                    let rotated =
                        p
                        |> mapPoints (fun v ->
                            [|
                                float32 (Math.Cos a * float v[0] - Math.Sin a * float v[1])
                                float32 (Math.Sin a * float v[0] + Math.Cos a * float v[1])
                            |])

                    let s = Transport.greedy p x.K
                    let r = Transport.greedy rotated x.K

                    match Array.tryFindIndex id (Array.map2 (<>) s.Picks r.Picks) with
                    | None ->
                        abs (Transport.objective p s.Picks - Transport.objective rotated r.Picks)
                        <= 1e-4
                    | Some i ->
                        // The two picks' gains at that step differ only by float32 rounding of the rotation.
                        let current = Transport.nearest p (Array.append p.Support s.Picks[.. i - 1])

                        abs (Transport.gain p current s.Picks[i] - Transport.gain p current r.Picks[i])
                        <= 1e-4)

            property
                "scaling every distance by c scales F by c"
                (Arb.fromGen (Gen.zip (pool 30 (1, 3)) (Gen.choose (1, 6))))
                (fun (x, e) ->
                    let c = Math.Pow(2.0, float (e - 3))
                    let scaled = x.Problem |> mapPoints (Array.map (fun v -> v * float32 c))
                    let s = Transport.greedy x.Problem x.K
                    let t = Transport.greedy scaled x.K

                    s.Picks = t.Picks
                    && near (c * Transport.objective x.Problem s.Picks) (Transport.objective scaled t.Picks))

            property
                "on 1-D embeddings F is the exact W1 from sorted CDFs to the measure pushed onto L u S"
                (Arb.fromGen (pool 30 (1, 1)))
                (fun x ->
                    let p = x.Problem
                    let s = Transport.greedy p p.Candidates.Length

                    prefixes s.Picks
                    |> List.filter (fun b -> p.Support.Length + b.Length > 0)
                    |> List.forall (fun b -> near (Transport.objective p b) (Transport.pushForwardW1 p b)))

            property
                "on pools of at most 12 items greedy's decrease of F is at least (1 - 1/e) of the best batch's"
                (Arb.fromGen (pool 12 (1, 3)))
                (fun x ->
                    let p = x.Problem
                    let start = Transport.objective p [||]
                    let greedy = start - Transport.objective p (Transport.greedy p x.K).Picks

                    let rec subsets (k: int) (items: int list) =
                        match k, items with
                        | 0, _ -> [ [] ]
                        | _, [] -> []
                        | k, h :: t -> (subsets (k - 1) t |> List.map (fun s -> h :: s)) @ subsets k t

                    let best =
                        subsets x.K (List.ofArray p.Candidates)
                        |> List.map (fun s -> start - Transport.objective p (Array.ofList s))
                        |> List.max

                    greedy >= (1.0 - 1.0 / Math.E) * best - 1e-12)

            property
                "the weights are u^beta normalised, uniform at beta 0 or when every u is 0"
                (Arb.fromGen (Gen.zip (Gen.arrayOfLength 8 (Gen.choose (0, 100))) (Gen.choose (0, 4))))
                (fun (u, beta) ->
                    let u = u |> Array.map (fun x -> float x / 100.0)
                    let w = Transport.weights (float beta) u

                    near (Array.sum w) 1.0
                    && (if beta = 0 || Array.forall ((=) 0.0) u then
                            w |> Array.forall (near (1.0 / 8.0))
                        else
                            let total = u |> Array.sumBy (fun x -> x ** float beta)
                            Array.forall2 (fun x wx -> near wx (x ** float beta / total)) u w))

            test "an empty support: the first pick is the weighted 1-median" {
                let p: Transport.Problem =
                    {
                        Points =
                            {
                                Dim = 1
                                Values = [| 0.0f; 1.0f; 2.0f; 10.0f |]
                            }
                        Ids = [| 0; 1; 2; 3 |]
                        Targets = [| 0; 1; 2; 3 |]
                        Weights = [| 0.25; 0.25; 0.25; 0.25 |]
                        Support = [||]
                        Candidates = [| 0; 1; 2; 3 |]
                    }

                // sum of distances: from 0: 13, from 1: 11, from 2: 11, from 10: 27; the tie goes to the lower id.
                Expect.equal (Transport.greedy p 1).Picks [| 1 |] "the 1-median, ties to the lower id"
                Expect.equal (Transport.lazyGreedy p 2).Picks (Transport.greedy p 2).Picks "lazy = plain"
                Expect.floatClose Accuracy.veryHigh (Transport.objective p [| 1 |]) (11.0 / 4.0) "F at the median"
            }

            test "a hand-computed batch: the middle of the far cluster, its ends, and the near copy last" {
                // Labelled at 0; a near copy at 0.1 and a far cluster at 5, 6, 7; equal weights 0.2.
                let p: Transport.Problem =
                    {
                        Points =
                            {
                                Dim = 1
                                Values = [| 0.0f; 0.1f; 5.0f; 6.0f; 7.0f |]
                            }
                        Ids = [| 0; 1; 2; 3; 4 |]
                        Targets = [| 0; 1; 2; 3; 4 |]
                        Weights = Array.create 5 0.2
                        Support = [| 0 |]
                        Candidates = [| 1; 2; 3; 4 |]
                    }

                let s = Transport.lazyGreedy p 4
                // 6 saves 4 + 6 + 6 = 16 (5 and 7 save 15 each); then 5 and 7 save 1 each (the tie to the lower
                // id); the copy at 0.1 saves only its own 0.1.
                Expect.equal s.Picks [| 3; 2; 4; 1 |] "the picks"

                Expect.sequenceEqual
                    (s.Gains |> Array.map (fun g -> Math.Round(g, 9)))
                    [| 3.2; 0.2; 0.2; 0.02 |]
                    "the gains"

                Expect.floatClose
                    Accuracy.high
                    (Transport.objective p [| 3 |])
                    (0.2 * (0.1 + 1.0 + 1.0))
                    "F after one pick"
            }

            property
                "kernel herding: the fast form picks what the MMD^2 it minimises picks"
                (Arb.fromGen (pool 14 (1, 3)))
                (fun x ->
                    let p = x.Problem
                    let sigma = 2.0
                    let s = Transport.Herding.greedy sigma p x.K

                    // Each herding pick is the candidate whose addition gives the smallest MMD^2 (ties: lower id).
                    prefixes s.Picks
                    |> List.pairwise
                    |> List.forall (fun (before, after) ->
                        let chosen = after[after.Length - 1]

                        let values =
                            p.Candidates
                            |> Array.filter (fun c -> not (Array.contains c before))
                            |> Array.map (fun c -> c, Transport.Herding.mmd2 sigma p (Array.append before [| c |]))

                        let best = values |> Array.map snd |> Array.min
                        let mine = values |> Array.find (fst >> (=) chosen) |> snd
                        abs (mine - best) <= 1e-9))
        ]

/// The paired statistics the study's decisions use (Waal.Core.Inference), against known values and by property.
let inference =
    testList
        "paired inference"
        [
            test "Student's t: known quantiles and values" {
                Expect.floatClose Accuracy.medium (Inference.tQuantile 4 0.975) 2.7764451051977987 "t(4), 97.5 %"
                Expect.floatClose Accuracy.medium (Inference.tQuantile 9 0.975) 2.2621571627409915 "t(9), 97.5 %"
                Expect.floatClose Accuracy.medium (Inference.tQuantile 4 0.95) 2.1318467863266499 "t(4), 95 %"
                Expect.floatClose Accuracy.high (Inference.tCdf 1 1.0) 0.75 "Cauchy: P(T <= 1) = 3/4"
                Expect.floatClose Accuracy.high (Inference.tCdf 2 0.0) 0.5 "symmetric about 0"
            }

            test "a paired t-test by hand: d = 1..5" {
                // mean 3, sd sqrt 2.5, se 0.7071, t = 4.2426 on 4 df: two-sided p = 0.0132356 (t(4) has the closed form
                // F(t) = 1/2 + t (t^2 + 6) / (2 (t^2 + 4)^(3/2))).
                let p = Inference.paired Inference.TwoSided [| 1.0; 2.0; 3.0; 4.0; 5.0 |]
                Expect.floatClose Accuracy.high p.Mean 3.0 "mean"
                Expect.floatClose Accuracy.high p.StandardError (sqrt 2.5 / sqrt 5.0) "standard error"
                Expect.floatClose { absolute = 1e-6; relative = 1e-5 } p.TP 0.0132356 "t p"
                // Every difference positive: only the identity and the all-flipped assignment are as extreme.
                Expect.floatClose Accuracy.high p.SignFlipP (2.0 / 32.0) "sign-flip p: the smallest at n = 5"
                let one = Inference.paired (Inference.Above 0.0) [| 1.0; 2.0; 3.0; 4.0; 5.0 |]
                Expect.floatClose Accuracy.high one.SignFlipP (1.0 / 32.0) "one-sided"
                Expect.floatClose { absolute = 1e-6; relative = 1e-5 } one.TP (0.0132356 / 2.0) "one-sided t p"
            }

            property
                "the sign-flip p lies in (0, 1], and two-sided it ignores the sign of every difference"
                (Arb.fromGen (Gen.arrayOfLength 6 (Gen.choose (-50, 50) |> Gen.map float)))
                (fun d ->
                    let p = Inference.signFlip Inference.TwoSided d

                    p > 0.0
                    && p <= 1.0
                    && near p (Inference.signFlip Inference.TwoSided (Array.map (~-) d)))

            property
                "Holm: adjusted p-values are at least the raw ones, ordered as the raw ones, at most 1"
                (Arb.fromGen (Gen.arrayOfLength 7 (Gen.choose (0, 1000) |> Gen.map (fun x -> float x / 1000.0))))
                (fun ps ->
                    let adjusted, levels = Inference.holm 0.05 ps
                    let order = Array.init ps.Length id |> Array.sortBy (fun i -> ps[i], i)

                    Array.forall2 (fun a p -> a >= p && a <= 1.0) adjusted ps
                    && (order
                        |> Array.pairwise
                        |> Array.forall (fun (i, j) -> adjusted[i] <= adjusted[j]))
                    && near levels[order[0]] (0.05 / 7.0)
                    && near levels[order[6]] 0.05)

            test "Holm by hand" {
                let adjusted, _ = Inference.holm 0.05 [| 0.02; 0.001; 0.04 |]
                Expect.sequenceEqual (adjusted |> Array.map (fun x -> Math.Round(x, 9))) [| 0.04; 0.003; 0.04 |] "m = 3"
            }
        ]
