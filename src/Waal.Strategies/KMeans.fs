/// K-means ("K-Median" in the WAAL paper): k clusters of the unlabelled pool's embeddings (Lloyd, k-means++
/// seeds from (seed, round, "kmeans"), 10 iterations); the batch is the pool point nearest each centroid.
module Waal.Strategies.KMeans

open Waal.Core
open Waal.Learning

/// Lloyd iterations per query.
[<Literal>]
let Iterations = 10

let private query (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let unlabelled = Pool.unlabelled pool

    let e =
        Scoring.embeddings nets ctx.PoolTensors unlabelled ctx.Settings.ScoreBatch ctx.Sink

    let centroids =
        Lloyd.centroids (Rng.key ctx.Spec.Seed round Rng.KMeansSeeds) e k Iterations

    Ok(Lloyd.nearestDistinct e centroids |> Array.map (fun i -> unlabelled[i]))

/// The strategy.
let strategy =
    {
        Name = "kmeans"
        Description = "the pool point nearest each of k k-means centroids of the embeddings"
        Deterministic = false
        Train = Strategy.trainPlain
        Query = query
        Signals = Strategy.noSignals
    }
