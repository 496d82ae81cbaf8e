/// The pool and its label log, and the keyed random streams.
module Waal.Core.Tests.PoolTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core
open Waal.Core.Tests.Common

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

let all = testList "Core" [ pool; rng ]
