/// K-center greedy (Core-set): farthest-first over the embeddings, starting from the labelled set, with one
/// running min-distance vector (O(N) extra memory; never an N x N matrix).
module Waal.Strategies.KCenter

open Waal.Core
open Waal.Learning

let private query (ctx: Context) (nets: Nets.Networks) (pool: Pool) (_: int) (k: int) =
    let all = Array.init pool.Size id
    let e = Scoring.embeddings nets ctx.PoolTensors all ctx.Settings.ScoreBatch ctx.Sink
    Ok(FarthestFirst.greedy e (Pool.labelled pool) (Pool.unlabelled pool) k)

/// The strategy.
let strategy =
    {
        Name = "kcenter"
        Description = "greedy farthest-first on embeddings (Core-set)"
        Deterministic = true
        Train = Strategy.trainPlain
        Query = query
        Signals = Strategy.noSignals
    }
