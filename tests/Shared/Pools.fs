/// Pool states for the tests.
module Waal.Testing.Pools

open Waal.Core

/// A pool over items with these (hidden) labels, `count` of them labelled: drawn from the key (seed, 0, "initial").
let labelled (labels: int[]) (classes: int) (count: int) (seed: int64) =
    let empty = Pool.create labels.Length classes |> Result.defaultWith (failwithf "%A")
    let picked = Pool.draw (Rng.key seed 0 Rng.InitialDraw) count empty

    Pool.label 0 (picked |> Array.map (fun i -> i, labels[i])) empty
    |> Result.defaultWith (failwithf "%A")
