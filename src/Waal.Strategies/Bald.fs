/// BALD (DBAL): the largest mutual information between prediction and weights, estimated from 10 passes in
/// which only the dropout layers are stochastic (BatchNorm stays in eval mode and is never updated).
module Waal.Strategies.Bald

open Waal.Core
open Waal.Learning

/// Stochastic passes per query.
[<Literal>]
let Passes = 10

let private query (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let unlabelled = Pool.unlabelled pool
    Training.seedTorchFor ctx.Spec.Seed round Rng.BaldDropout

    let runs =
        Scoring.monteCarlo nets ctx.PoolTensors unlabelled Passes ctx.Settings.ScoreBatch ctx.Sink

    let c = ctx.PoolTensors.Classes

    let mi =
        Array.init unlabelled.Length (fun i ->
            Classic.bald (runs |> Array.map (fun p -> Array.init c (fun j -> float p[i * c + j]))))

    TopK.largest k unlabelled mi |> Result.mapError (fun e -> BadScores(round, e))

/// The strategy.
let strategy =
    {
        Name = "bald"
        Description = "largest mutual information over 10 MC-dropout passes (dropout layers only)"
        Deterministic = false
        Train = Strategy.trainPlain
        Query = query
        Signals = Strategy.noSignals
    }
