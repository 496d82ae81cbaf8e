/// DFAL: the items closest to a decision boundary, measured by DeepFool's total perturbation (at most 50 steps,
/// the closest boundary taken over all classes at every step); smallest first.
module Waal.Strategies.DeepFool

open Waal.Core
open Waal.Learning

/// DeepFool steps at most.
[<Literal>]
let MaxSteps = 50

let private query (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let unlabelled = Pool.unlabelled pool
    let batch = min ctx.Settings.ScoreBatch 250
    let r = Scoring.deepFool nets ctx.PoolTensors unlabelled MaxSteps batch ctx.Sink

    TopK.smallest k unlabelled (r |> Array.map float)
    |> Result.mapError (fun e -> BadScores(round, e))

/// The strategy.
let strategy =
    {
        Name = "dfal"
        Description = "smallest DeepFool perturbation to the closest class boundary"
        Deterministic = true
        Train = Strategy.trainPlain
        Query = query
        Signals = Strategy.noSignals
    }
