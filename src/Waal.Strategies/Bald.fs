/// BALD (DBAL): the largest mutual information between prediction and weights, estimated from 10 passes in
/// which only the dropout layers are stochastic (BatchNorm stays in eval mode and is never updated).
module Waal.Strategies.Bald

open Waal.Core
open Waal.Learning

/// Stochastic passes per query.
[<Literal>]
let Passes = 10

/// The mutual information of the items at `indices` (in their order), which begin at position `start` of the
/// unlabelled pool. The pool is taken one score batch at a time, and the dropout masks of score batch j come from
/// the stream (seed, round, BaldDropout j): an item's masks depend only on its batch, so a shard of whole batches
/// (Sharding) draws what one process draws.
let mutualInformation (ctx: Context) (nets: Nets.Networks) (round: int) (start: int) (indices: int[]) =
    let b = ctx.Settings.ScoreBatch
    let c = ctx.PoolTensors.Classes
    let chunks = indices |> Array.chunkBySize b
    ctx.Sink.Start "bald: dropout passes" (chunks.Length * Passes)

    let inner =
        {
            Start = fun _ _ -> ()
            Advance = ctx.Sink.Advance
            Finish = ignore
        }

    let mi =
        chunks
        |> Array.mapi (fun j chunk ->
            Training.seedTorchFor ctx.Spec.Seed round (Rng.BaldDropout(start / b + j))
            let runs = Scoring.monteCarlo nets ctx.PoolTensors chunk Passes b inner

            Array.init chunk.Length (fun i ->
                Classic.bald (runs |> Array.map (fun p -> Array.init c (fun k -> float p[i * c + k])))))
        |> Array.concat

    ctx.Sink.Finish()
    mi

/// BALD's query: the k largest mutual informations.
let query (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let unlabelled = Pool.unlabelled pool

    TopK.largest k unlabelled (mutualInformation ctx nets round 0 unlabelled)
    |> Result.mapError (fun e -> BadScores(round, e))

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
