/// Turning one scalar score per candidate into a batch of k: top-k, soft-rank sampling, class-balanced quotas
/// and one pick per cluster. Scores are oriented SMALLEST FIRST (as TopK.smallest); every mode returns
/// min(k, n) distinct candidates and refuses NaN or infinite scores.
[<RequireQualifiedAccess>]
module Waal.Core.BatchSelection

open System

/// Compares candidate positions by score, ties to the lower candidate index.
let private byScore (candidates: int[]) (scores: float[]) (a: int) (b: int) =
    let c = compare scores[a] scores[b]
    if c <> 0 then c else compare candidates[a] candidates[b]

/// Candidate positions 0 .. n-1 in score order, best (smallest) first, ties to the lower candidate index.
let rankOrder (candidates: int[]) (scores: float[]) =
    let order = Array.init candidates.Length id
    Array.Sort(order, Comparison(byScore candidates scores))
    order

/// The candidates at the given positions, best score first (ties to the lower candidate index).
let private bestFirst (candidates: int[]) (scores: float[]) (positions: ResizeArray<int>) =
    positions.ToArray()
    |> Array.sortWith (byScore candidates scores)
    |> Array.map (fun i -> candidates[i])

let private validInput (k: int) (candidates: int[]) (scores: float[]) =
    // TopK's checks (lengths, k >= 0, finite scores) with an empty batch.
    TopK.smallest 0 candidates scores
    |> Result.bind (fun _ -> if k < 0 then Error(NegativeCount("k", k)) else Ok())

/// The Gumbel-top-k keys of soft-rank sampling: key = -beta ln rank + Gumbel(0, 1), rank 1 the best score.
/// Taking the k largest keys draws k candidates without replacement with P proportional to rank^-beta.
let softRankKeys (key: Rng.Key) (beta: float) (candidates: int[]) (scores: float[]) =
    let order = rankOrder candidates scores
    let stream = Rng.Stream key
    let keys = Array.zeroCreate candidates.Length

    for r in 0 .. order.Length - 1 do
        // U in (0, 1): NextDouble is in [0, 1); 1 - U is in (0, 1].
        let u = 1.0 - stream.NextDouble()
        let gumbel = -Math.Log(-Math.Log u)
        keys[order[r]] <- -beta * Math.Log(float (r + 1)) + gumbel

    keys

/// Soft-rank sampling: min(k, n) candidates drawn without replacement with P proportional to rank^-beta
/// (Gumbel-top-k on the keyed stream). beta = infinity is top-k, beta = 0 uniform.
let softRank (key: Rng.Key) (beta: float) (k: int) (candidates: int[]) (scores: float[]) =
    validInput k candidates scores
    |> Result.bind (fun () ->
        if Double.IsPositiveInfinity beta then
            TopK.smallest k candidates scores
        else
            let keys = softRankKeys key beta candidates scores
            TopK.largest k candidates keys)

/// Class-balanced quotas: every predicted class first gets up to floor(k / C) of its best candidates; the
/// remaining places go, in score order, to the best leftover candidates of classes not yet given an extra place;
/// when classes run out of candidates, the best leftovers of any class fill the batch. `predicted` holds each
/// candidate's predicted class in 0 .. classes-1.
let balanced (classes: int) (k: int) (candidates: int[]) (scores: float[]) (predicted: int[]) =
    validInput k candidates scores
    |> Result.bind (fun () ->
        if predicted.Length <> candidates.Length then
            Error(LengthMismatch("predicted classes (one per candidate)", candidates.Length, predicted.Length))
        else
            match predicted |> Array.tryFindIndex (fun c -> c < 0 || c >= classes) with
            | Some i -> Error(ClassOutOfRange(i, predicted[i], classes))
            | None ->
                let order = rankOrder candidates scores
                let k = min k candidates.Length
                let quota = k / classes
                let given = Array.zeroCreate classes
                let taken = Array.zeroCreate<bool> candidates.Length
                let picks = ResizeArray k

                let take i =
                    taken[i] <- true
                    given[predicted[i]] <- given[predicted[i]] + 1
                    picks.Add i

                for i in order do
                    if given[predicted[i]] < quota then
                        take i

                let extra = Array.zeroCreate<bool> classes

                for i in order do
                    if picks.Count < k && not taken[i] && not extra[predicted[i]] then
                        extra[predicted[i]] <- true
                        take i

                for i in order do
                    if picks.Count < k && not taken[i] then
                        take i

                // Best first, as the other modes.
                Ok(bestFirst candidates scores picks))

/// Lloyd iterations of the clustered mode.
[<Literal>]
let ClusterIterations = 10

/// The clustered mode's groups: the best min(n, candidates x k) scores clustered into min(k, that) groups by
/// k-means (k-means++ seeds from the key); returns the candidates' positions and each one's cluster.
let clusters (key: Rng.Key) (multiple: int) (k: int) (candidates: int[]) (scores: float[]) (embeddings: Embeddings) =
    let order = rankOrder candidates scores
    let m = min candidates.Length (max k (multiple * k))
    let top = order[.. m - 1]
    let d = embeddings.Dim

    let points =
        {
            Dim = d
            Values = Array.init (m * d) (fun j -> embeddings.Values[top[j / d] * d + j % d])
        }

    let groups = min k m
    let centroids = Lloyd.centroids key points groups ClusterIterations

    let assign =
        Array.init m (fun i ->
            let mutable best = 0
            let mutable bestD = Double.PositiveInfinity

            for j in 0 .. groups - 1 do
                let mutable s = 0.0

                for x in 0 .. d - 1 do
                    let diff = float points.Values[i * d + x] - centroids[j * d + x]
                    s <- s + diff * diff

                if s < bestD then
                    bestD <- s
                    best <- j

            best)

    top, assign

/// One pick per cluster: the best-scoring member of each of the k clusters of the top candidates (see
/// `clusters`); when fewer clusters are non-empty, the best leftover candidates fill the batch. `embeddings`
/// holds one row per candidate.
let clustered (key: Rng.Key) (multiple: int) (k: int) (candidates: int[]) (scores: float[]) (embeddings: Embeddings) =
    validInput k candidates scores
    |> Result.bind (fun () ->
        if embeddings.Count <> candidates.Length then
            Error(LengthMismatch("embeddings (one row per candidate)", candidates.Length, embeddings.Count))
        elif k = 0 || candidates.Length = 0 then
            Ok [||]
        else
            let top, assign = clusters key multiple k candidates scores embeddings
            let k = min k candidates.Length
            let seen = Collections.Generic.HashSet<int>()
            let picks = ResizeArray k
            // `top` is in score order: the first member met of each cluster is its best.
            for j in 0 .. top.Length - 1 do
                if seen.Add assign[j] then
                    picks.Add top[j]

            let chosen = Collections.Generic.HashSet<int>(picks)

            for i in rankOrder candidates scores do
                if picks.Count < k && not (chosen.Contains i) then
                    chosen.Add i |> ignore
                    picks.Add i

            Ok(bestFirst candidates scores picks))

/// z-scores of a vector (mean 0, standard deviation 1; all zeros when the vector is constant).
let standardise (xs: float[]) =
    if xs.Length = 0 then
        xs
    else
        let mean = Array.average xs
        let sd = sqrt (xs |> Array.averageBy (fun x -> (x - mean) * (x - mean)))

        if sd > 0.0 && Double.IsFinite sd then
            xs |> Array.map (fun x -> (x - mean) / sd)
        else
            Array.zeroCreate xs.Length
