/// WAAL's "redundancy trick": an epoch pairs labelled and unlabelled items so both halves of every batch have
/// the same size, however unbalanced |L| and |U| are.
module Waal.Core.Pairing

/// One epoch's pairs: item i of the (shuffled) epoch is labelled[j mod |L|] with unlabelled[j mod |U|], j the
/// i-th entry of a random permutation of 0 .. max(|L|,|U|)-1. Both arrays hold pool indices and have length
/// max(|L|, |U|). With no unlabelled items the second array is empty (an epoch of the labelled items only).
let epoch (key: Rng.Key) (labelled: int[]) (unlabelled: int[]) =
    if labelled.Length = 0 then
        invalidArg (nameof labelled) "an epoch needs at least one labelled item"

    let n = max labelled.Length unlabelled.Length
    let order = Rng.permutation key n
    let l = order |> Array.map (fun j -> labelled[j % labelled.Length])

    let u =
        if unlabelled.Length = 0 then
            [||]
        else
            order |> Array.map (fun j -> unlabelled[j % unlabelled.Length])

    l, u

/// The number of batches of at most `batch` items that `pairs` pairs make (the last one may be short).
let batches (pairs: int) (batch: int) = (pairs + batch - 1) / batch

/// Items `start` .. `start + count - 1` of an endless run of shuffled passes over `items`: pass q is the
/// permutation drawn from `keyOf q`, so any stretch of the run is reproducible on its own. Empty when `items` is.
let passRun (keyOf: int -> Rng.Key) (items: int[]) (start: int64) (count: int) =
    if items.Length = 0 || count <= 0 then
        [||]
    else
        let n = int64 items.Length
        let perms = System.Collections.Generic.Dictionary<int, int[]>()

        let permOf q =
            match perms.TryGetValue q with
            | true, p -> p
            | _ ->
                let p = Rng.permutation (keyOf q) items.Length
                perms[q] <- p
                p

        Array.init count (fun i ->
            let j = start + int64 i
            items[(permOf (int (j / n)))[int (j % n)]])

/// Steps of the floor budget: epochs x ceil(max(|L|, floor) / batch).
let floorSteps (epochs: int) (labelled: int) (floor: int) (batch: int) =
    int64 epochs * int64 (batches (max labelled floor) batch)
