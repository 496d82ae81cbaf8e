/// BADGE: k-means++ seeds over gradient embeddings g = (p - onehot(argmax p)) (x) e(x), never materialised:
/// ||g||^2 = ||a||^2 ||e||^2 and <g_i, g_j> = <a_i, a_j> <e_i, e_j> give every distance from the two factors.
module Waal.Strategies.Badge

open Waal.Core
open Waal.Learning

let private query (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let unlabelled = Pool.unlabelled pool
    let n = unlabelled.Length
    let c = ctx.PoolTensors.Classes

    let p =
        Scoring.probabilities nets ctx.PoolTensors unlabelled ctx.Settings.ScoreBatch ctx.Sink

    let e =
        Scoring.embeddings nets ctx.PoolTensors unlabelled ctx.Settings.ScoreBatch ctx.Sink

    // a_i = p_i - onehot(argmax p_i), the gradient of the loss at the predicted label w.r.t. the logits.
    let a =
        Array.init (n * c) (fun idx ->
            let i = idx / c
            let row = p[i * c .. i * c + c - 1]
            let top = Array.findIndex ((=) (Array.max row)) row
            float p[idx] - (if idx % c = top then 1.0 else 0.0))

    let dotA i j =
        let mutable s = 0.0

        for x in 0 .. c - 1 do
            s <- s + a[i * c + x] * a[j * c + x]

        s

    let dotE i j =
        let mutable s = 0.0
        let d = e.Dim

        for x in 0 .. d - 1 do
            s <- s + float e.Values[i * d + x] * float e.Values[j * d + x]

        s

    let norms = Array.init n (fun i -> dotA i i * dotE i i)

    let distance i j =
        max 0.0 (norms[i] + norms[j] - 2.0 * dotA i j * dotE i j)

    let seeds =
        KMeansPlusPlus.seeds (Rng.key ctx.Spec.Seed round Rng.BadgeSeeds) n (fun i -> norms[i]) distance k

    Ok(seeds |> Array.map (fun i -> unlabelled[i]))

/// The strategy.
let strategy =
    {
        Name = "badge"
        Description = "k-means++ seeding on factorised gradient embeddings"
        Deterministic = false
        Train = Strategy.trainPlain
        Query = query
        Signals = Strategy.noSignals
    }
