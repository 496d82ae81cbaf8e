/// A batch labelled by hand (`BatchLabels`: give, undo, skip), driven by FsCheck scripts of a person's actions.
module Waal.Label.Tests.BatchLabelsTests

open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core
open Waal.Label

let private ok =
    function
    | Ok v -> v
    | Error e -> failwithf "unexpected error: %A" e

let private property name (arb: Arbitrary<'a>) (check: 'a -> bool) =
    testPropertyWithConfig
        { FsCheckConfig.defaultConfig with
            maxTest = 200
        }
        name
        (Prop.forAll arb check)

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

let all = labelling
