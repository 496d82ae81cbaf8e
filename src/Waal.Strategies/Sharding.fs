/// One query split over shards of the unlabelled pool (docs/cluster.md): each shard computes its items' per-item
/// terms, and a merge puts the terms of all shards together and picks the batch exactly as one process would.
/// Exact, bit for bit, because (1) every term depends on its item alone, (2) shards are contiguous runs of the
/// unlabelled pool cut at whole score batches, so each forward pass sees the same images as in one process, and
/// (3) whatever looks at the whole pool (WAAL's standardised or ranked scale, soft-rank draws, class quotas, the
/// clustered mode's candidates and their embeddings) runs in the merge, over all the terms in pool order.
module Waal.Strategies.Sharding

open Waal.Core
open Waal.Learning

/// The per-item terms of a set of items, in the order of the items: one array per term, and each item's
/// predicted class (empty when the strategy needs none).
type Terms = { Values: float[][]; Predicted: int[] }

/// How a strategy queries in shards: the names of its terms, the terms of the items of a round's query that begin
/// at a position of the unlabelled pool (a multiple of the score batch), and the batch from the terms of every
/// unlabelled item (in `Pool.unlabelled` order).
type Sharded =
    {
        TermNames: string list
        Terms: Context -> Nets.Networks -> int -> int -> int[] -> Terms
        Pick: Context -> Nets.Networks -> Pool -> int -> int -> int[] -> Terms -> Result<int[], LearnError>
    }

let private byProbabilities (score: float[] -> float) =
    {
        TermNames = [ "score" ]
        Terms =
            fun ctx nets _ _ indices ->
                let scores, predicted = Strategy.probabilityScores score ctx nets indices

                {
                    Values = [| scores |]
                    Predicted = predicted
                }
        Pick =
            fun ctx nets _ round k unlabelled terms ->
                Strategy.pick ctx nets round k unlabelled terms.Values[0] (fun () -> terms.Predicted)
    }

let private waal =
    {
        TermNames = [ "uncertainty"; "critic" ]
        Terms =
            fun ctx nets _ _ indices ->
                let u, d, s = Waal.terms ctx nets indices

                {
                    Values = [| u; d |]
                    Predicted = Strategy.argmaxRows s.Classes s.LogProbabilities
                }
        Pick =
            fun ctx nets _ round k unlabelled terms ->
                let rank = Waal.rankOf ctx.Spec.Method terms.Values[0] terms.Values[1]
                Strategy.pick ctx nets round k unlabelled rank (fun () -> terms.Predicted)
    }

// Random needs no scores: the merge draws from the pool with the round's key, as one process does.
let private random =
    {
        TermNames = []
        Terms = fun _ _ _ _ _ -> { Values = [||]; Predicted = [||] }
        Pick = fun ctx nets pool round k _ _ -> Random.strategy.Query ctx nets pool round k
    }

// BALD: the mutual information, whose dropout masks are drawn per score batch (Bald.mutualInformation).
let private bald =
    {
        TermNames = [ "mutual-information" ]
        Terms =
            fun ctx nets round start indices ->
                {
                    Values = [| Bald.mutualInformation ctx nets round start indices |]
                    Predicted = [||]
                }
        Pick =
            fun _ _ _ round k unlabelled terms ->
                TopK.largest k unlabelled terms.Values[0]
                |> Result.mapError (fun e -> BadScores(round, e))
    }

/// The strategies that shard exactly, by name. k-center, k-means, BADGE and DeepFool do not: they need the
/// whole pool's embeddings or gradients in one place (docs/cluster.md).
let exact: (string * Sharded) list =
    [
        "bald", bald
        "random", random
        "least-confidence", byProbabilities LeastConfidence.score
        "margin", byProbabilities Margin.score
        "entropy", byProbabilities Entropy.score
        "waal", waal
    ]

/// The sharded form of a strategy, if it has one.
let tryFind (name: string) =
    exact |> List.tryFind (fun (n, _) -> n = name) |> Option.map snd

/// The positions in the unlabelled pool of each of `shards` shards: contiguous runs (start, count) that cut the
/// `count` unlabelled items only at multiples of the score batch, as evenly as whole batches allow (a shard may
/// be empty when there are fewer batches than shards).
let ranges (count: int) (scoreBatch: int) (shards: int) =
    let batches = (count + scoreBatch - 1) / scoreBatch

    Array.init shards (fun s ->
        let first = int (int64 batches * int64 s / int64 shards)
        let last = int (int64 batches * int64 (s + 1) / int64 shards)
        let start = min count (first * scoreBatch)
        let stop = min count (last * scoreBatch)
        start, stop - start)

/// Puts shards' terms together (in shard order, so in pool order).
let concat (parts: Terms list) =
    match parts with
    | [] -> { Values = [||]; Predicted = [||] }
    | first :: _ ->
        {
            Values =
                Array.init first.Values.Length (fun t -> parts |> Seq.collect (fun p -> p.Values[t]) |> Array.ofSeq)
            Predicted = parts |> Seq.collect (fun p -> p.Predicted) |> Array.ofSeq
        }
