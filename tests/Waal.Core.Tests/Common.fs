/// What the Core suite's files share: FsCheck settings, generators of probabilities, samples and histories, and
/// the datasets' profiles.
module Waal.Core.Tests.Common

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core

let internal config =
    { FsCheckConfig.defaultConfig with
        maxTest = 200
    }

let internal property name (arb: Arbitrary<'a>) (check: 'a -> bool) =
    testPropertyWithConfig config name (Prop.forAll arb check)

let internal ok =
    function
    | Ok v -> v
    | Error e -> failwithf "unexpected error: %A" e

// ---------- generators ----------

/// A probability vector over 2..12 classes, some entries possibly exactly zero.
let internal probabilities =
    gen {
        let! k = Gen.choose (2, 12)

        let! weights =
            Gen.arrayOfLength k (Gen.frequency [ 1, Gen.constant 0; 6, Gen.choose (1, 1000) ])

        let weights = if Array.sum weights = 0 then Array.create k 1 else weights
        let total = float (Array.sum weights)
        return weights |> Array.map (fun w -> float w / total)
    }

/// Strictly positive probabilities (finite logs).
let internal positiveProbabilities =
    gen {
        let! k = Gen.choose (2, 12)
        let! weights = Gen.arrayOfLength k (Gen.choose (1, 1000))
        let total = float (Array.sum weights)
        return weights |> Array.map (fun w -> float w / total)
    }

let internal sample =
    gen {
        let! n = Gen.choose (1, 30)
        return! Gen.arrayOfLength n (Gen.choose (-1000, 1000) |> Gen.map (fun v -> float v / 100.0))
    }

/// A pool of 1..120 items and a history of label batches, each a valid transition.
type internal History =
    {
        Size: int
        Classes: int
        Batches: (int * (int * int)[]) list
    }

let internal history =
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

let internal replay (h: History) =
    h.Batches
    |> List.fold (fun p (round, items) -> p |> Result.bind (Pool.label round items)) (Pool.create h.Size h.Classes)
    |> ok

/// Candidates (a random subset of 0..n-1 in random order), their finite scores, and k.
let internal scored =
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

let internal points =
    gen {
        let! n = Gen.choose (1, 40)
        let! dim = Gen.choose (1, 4)
        let! values = Gen.arrayOfLength (n * dim) (Gen.choose (-5, 5) |> Gen.map float32)
        return { Dim = dim; Values = values }
    }

// ---------- pool and label log ----------

let internal near (tolerance: float) (expected: float) (actual: float) (what: string) =
    Expect.floatClose { absolute = tolerance; relative = 0.0 } actual expected what

/// Scored candidates with predicted classes (3 classes) and 2-d embeddings.
let internal scoredWithClasses =
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

let internal fashion =
    {
        Name = "fashion-mnist"
        Momentum = 0.5
        BaselineEpochs = 10
        BaselineLearningRate = 0.01
    }

let internal cifar =
    {
        Name = "cifar10"
        Momentum = 0.3
        BaselineEpochs = 20
        BaselineLearningRate = 0.05
    }

let internal profileOf name =
    match name with
    | "fashion-mnist" -> Ok fashion
    | "cifar10" -> Ok cifar
    | other -> Error $"unknown dataset '{other}'"
