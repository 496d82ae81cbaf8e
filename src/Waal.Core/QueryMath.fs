namespace Waal.Core

open System

/// The WAAL uncertainty: a bound on the loss under the unknown label, from the negative log-probabilities
/// v = -log p of one prediction. SMALLER = MORE uncertain; the minimum over distributions is the uniform one.
/// Inputs are log-probabilities (log_softmax), finite where softmax underflows.
[<RequireQualifiedAccess>]
module Uncertainty =
    /// Which bound of the paper to use.
    type Bound =
        /// ||v||_1 = sum_k -log p_k.
        | L1
        /// ||v||_2.
        | L2
        /// max_k -log p_k (the worst-case label).
        | WorstCase
        /// 0.5 ||v||_1 + 0.5 ||v||_2 (the reference).
        | Mixed

    /// ||v||_1 of v = -logp.
    let l1 (logp: float[]) =
        let mutable s = 0.0

        for x in logp do
            s <- s - x

        s

    /// ||v||_2 of v = -logp.
    let l2 (logp: float[]) =
        let mutable s = 0.0

        for x in logp do
            s <- s + x * x

        sqrt s

    /// max_k of v = -logp.
    let worstCase (logp: float[]) =
        let mutable m = Double.NegativeInfinity

        for x in logp do
            m <- max m -x

        m

    /// 0.5 ||v||_1 + 0.5 ||v||_2, the reference bound.
    let mixed (logp: float[]) = 0.5 * l1 logp + 0.5 * l2 logp

    /// The chosen bound of one prediction's log-probabilities.
    let ofLogProbabilities (bound: Bound) (logp: float[]) =
        match bound with
        | L1 -> l1 logp
        | L2 -> l2 logp
        | WorstCase -> worstCase logp
        | Mixed -> mixed logp

    /// The WAAL score of one item: uncertainty minus selection x critic value. Take the smallest.
    let combined (selection: float) (uncertainty: float) (critic: float) = uncertainty - selection * critic

/// The classic uncertainty scores, each oriented so that the SMALLEST score is queried first, except BALD
/// (largest mutual information first), as in the literature.
[<RequireQualifiedAccess>]
module Classic =
    /// max_c p_c: small = unsure.
    let leastConfidence (p: float[]) = Array.max p

    /// p_(1) - p_(2), the gap between the two largest probabilities: small = unsure.
    let margin (p: float[]) =
        let mutable first = Double.NegativeInfinity
        let mutable second = Double.NegativeInfinity

        for x in p do
            if x > first then
                second <- first
                first <- x
            elif x > second then
                second <- x

        if Double.IsNegativeInfinity second then
            0.0
        else
            first - second

    /// Shannon entropy -sum p log p in nats, with 0 log 0 = 0; lies in [0, log C].
    let entropy (p: float[]) =
        let mutable h = 0.0

        for x in p do
            if x > 0.0 then
                h <- h - x * log x

        h

    /// sum p log p = -entropy: small = unsure.
    let negEntropy (p: float[]) = -(entropy p)

    /// BALD's mutual information from T stochastic predictions of one item: H(mean_t p_t) - mean_t H(p_t).
    /// Lies in [0, H(mean)]; large = the passes disagree. Tiny negative round-off is clamped to 0.
    let bald (samples: float[][]) =
        let t = float samples.Length
        let classes = samples[0].Length
        let mean = Array.zeroCreate classes
        let mutable meanEntropy = 0.0

        for p in samples do
            meanEntropy <- meanEntropy + entropy p / t

            for c in 0 .. classes - 1 do
                mean[c] <- mean[c] + p[c] / t

        max 0.0 (entropy mean - meanEntropy)

/// Choosing k items by score.
[<RequireQualifiedAccess>]
module TopK =
    let private check (candidates: int[]) (scores: float[]) (k: int) =
        if candidates.Length <> scores.Length then
            Error(LengthMismatch("scores (one per candidate)", candidates.Length, scores.Length))
        elif k < 0 then
            Error(NegativeCount("k", k))
        else
            match Array.tryFindIndex (fun s -> not (Double.IsFinite s)) scores with
            | Some i -> Error(NonFiniteScore(i, scores[i]))
            | None -> Ok()

    let private take (ascending: bool) (k: int) (candidates: int[]) (scores: float[]) =
        check candidates scores k
        |> Result.map (fun () ->
            let order = Array.init candidates.Length id
            let sign = if ascending then 1.0 else -1.0
            // Ties go to the lower candidate index, whatever order the candidates came in.
            Array.Sort(
                order,
                Comparison(fun a b ->
                    let c = compare (sign * scores[a]) (sign * scores[b])
                    if c <> 0 then c else compare candidates[a] candidates[b])
            )

            order[.. min k candidates.Length - 1] |> Array.map (fun i -> candidates[i]))

    /// The min(k, n) candidates with the smallest scores (ties to the lower candidate index), best first.
    /// A NaN or infinite score is an error: no batch is chosen from garbage.
    let smallest (k: int) (candidates: int[]) (scores: float[]) = take true k candidates scores

    /// The min(k, n) candidates with the largest scores (ties to the lower candidate index), best first.
    let largest (k: int) (candidates: int[]) (scores: float[]) = take false k candidates scores

/// Embeddings of pool items held as one row-major block: row i is item i's vector.
type Embeddings =
    {
        Dim: int
        Values: float32[]
    }

    /// The number of rows.
    member this.Count = if this.Dim = 0 then 0 else this.Values.Length / this.Dim

    /// Squared Euclidean distance between rows a and b.
    member this.SquaredDistance(a: int, b: int) =
        let v = this.Values
        let oa = a * this.Dim
        let ob = b * this.Dim
        let mutable s = 0.0

        for j in 0 .. this.Dim - 1 do
            let d = float v[oa + j] - float v[ob + j]
            s <- s + d * d

        s

    /// Squared Euclidean norm of row a.
    member this.SquaredNorm(a: int) =
        let v = this.Values
        let oa = a * this.Dim
        let mutable s = 0.0

        for j in 0 .. this.Dim - 1 do
            let x = float v[oa + j]
            s <- s + x * x

        s

/// Greedy farthest-first k-center (the Core-set baseline) with one running min-distance vector: O(N) extra
/// memory, O(N k d) time, never an N x N matrix.
[<RequireQualifiedAccess>]
module FarthestFirst =
    /// Picks min(k, |candidates|) distinct candidates: each pick is the candidate farthest from the centres
    /// (the labelled items) and the picks so far; ties to the lower index. With no centres, the first pick is
    /// the lowest candidate index.
    let greedy (points: Embeddings) (centres: int[]) (candidates: int[]) (k: int) : int[] =
        let n = candidates.Length
        let minDist = Array.create n Double.PositiveInfinity
        let taken = Array.zeroCreate<bool> n

        let update (centre: int) =
            for i in 0 .. n - 1 do
                if not taken[i] then
                    let d = points.SquaredDistance(centre, candidates[i])

                    if d < minDist[i] then
                        minDist[i] <- d

        for c in centres do
            update c

        let picks = Array.zeroCreate (max 0 (min k n))

        for p in 0 .. picks.Length - 1 do
            let mutable best = -1

            for i in 0 .. n - 1 do
                if not taken[i] then
                    if
                        best < 0
                        || minDist[i] > minDist[best]
                        || (minDist[i] = minDist[best] && candidates[i] < candidates[best])
                    then
                        best <- i

            taken[best] <- true
            minDist[best] <- 0.0
            picks[p] <- candidates[best]
            update candidates[best]

        picks

    /// The covering radius: the largest distance from a candidate to its nearest centre (0 when all are
    /// centres, infinity when there are no centres at all).
    let radius (points: Embeddings) (centres: int[]) (candidates: int[]) =
        candidates
        |> Array.fold
            (fun r c ->
                let nearest =
                    centres
                    |> Array.fold (fun m x -> min m (points.SquaredDistance(c, x))) Double.PositiveInfinity

                max r nearest)
            0.0
        |> sqrt

/// k-means++ seeding (BADGE's batch): the first seed has the largest norm, each further one is drawn with
/// probability proportional to its squared distance to the nearest seed so far. Never repeats an index.
[<RequireQualifiedAccess>]
module KMeansPlusPlus =
    /// min(k, n) distinct positions 0 .. n-1, given squared norms and squared distances as functions (so a
    /// factorised embedding never has to be materialised). When every remaining point coincides with a seed
    /// (all distances zero), the next seed is drawn uniformly from the points not yet chosen.
    let seeds (key: Rng.Key) (n: int) (squaredNorm: int -> float) (squaredDistance: int -> int -> float) (k: int) =
        let stream = Rng.Stream key
        let count = max 0 (min k n)
        let chosen = Array.zeroCreate<bool> n
        let nearest = Array.create n Double.PositiveInfinity
        let picks = Array.zeroCreate count

        let choose p i =
            chosen[i] <- true
            nearest[i] <- 0.0
            picks[p] <- i

            for j in 0 .. n - 1 do
                if not chosen[j] then
                    nearest[j] <- min nearest[j] (squaredDistance i j)

        if count > 0 then
            let mutable first = 0

            for i in 1 .. n - 1 do
                if squaredNorm i > squaredNorm first then
                    first <- i

            choose 0 first

        for p in 1 .. count - 1 do
            let mutable total = 0.0

            for j in 0 .. n - 1 do
                if not chosen[j] then
                    total <- total + nearest[j]

            let next =
                if total > 0.0 && Double.IsFinite total then
                    let target = stream.NextDouble() * total
                    let mutable acc = 0.0
                    let mutable pick = -1
                    let mutable lastPositive = -1

                    for j in 0 .. n - 1 do
                        if pick < 0 && not chosen[j] && nearest[j] > 0.0 then
                            lastPositive <- j
                            acc <- acc + nearest[j]

                            if acc > target then
                                pick <- j

                    // Round-off can leave the target just above the running sum: take the last positive one.
                    if pick >= 0 then pick else lastPositive
                else
                    let free = Array.init n id |> Array.filter (fun j -> not chosen[j])
                    free[stream.NextBelow free.Length]

            choose p next

        picks

    /// k-means++ seeds over dense embedding rows, as row positions.
    let ofEmbeddings (key: Rng.Key) (points: Embeddings) (k: int) =
        seeds key points.Count points.SquaredNorm (fun a b -> points.SquaredDistance(a, b)) k

/// Lloyd's k-means on embedding rows (the "K-Median" baseline): k-means++ seeds, then `iterations` rounds of
/// assign-and-average; the batch is the pool point nearest each centroid, never the same point twice.
[<RequireQualifiedAccess>]
module Lloyd =
    /// Squared distance from row i to centroid j of a row-major centroid block.
    let private toCentroid (points: Embeddings) (centroids: float[]) (i: int) (j: int) =
        let d = points.Dim
        let mutable s = 0.0

        for x in 0 .. d - 1 do
            let diff = float points.Values[i * d + x] - centroids[j * d + x]
            s <- s + diff * diff

        s

    /// Centroids (k x dim, row-major) after `iterations` Lloyd steps from k-means++ seeds drawn with `key`.
    /// An empty cluster keeps its previous centroid.
    let centroids (key: Rng.Key) (points: Embeddings) (k: int) (iterations: int) =
        let n = points.Count
        let d = points.Dim
        let k = max 0 (min k n)
        let seeds = KMeansPlusPlus.ofEmbeddings key points k
        let c = Array.zeroCreate<float>(k * d)

        for j in 0 .. k - 1 do
            for x in 0 .. d - 1 do
                c[j * d + x] <- float points.Values[seeds[j] * d + x]

        let assign = Array.zeroCreate n
        let sums = Array.zeroCreate<float>(k * d)
        let counts = Array.zeroCreate<int> k

        for _ in 1..iterations do
            for i in 0 .. n - 1 do
                let mutable best = 0
                let mutable bestD = Double.PositiveInfinity

                for j in 0 .. k - 1 do
                    let s = toCentroid points c i j

                    if s < bestD then
                        bestD <- s
                        best <- j

                assign[i] <- best

            Array.fill sums 0 sums.Length 0.0
            Array.fill counts 0 counts.Length 0

            for i in 0 .. n - 1 do
                let j = assign[i]
                counts[j] <- counts[j] + 1

                for x in 0 .. d - 1 do
                    sums[j * d + x] <- sums[j * d + x] + float points.Values[i * d + x]

            for j in 0 .. k - 1 do
                if counts[j] > 0 then
                    for x in 0 .. d - 1 do
                        c[j * d + x] <- sums[j * d + x] / float counts[j]

        c

    /// For each centroid in turn, the nearest row not yet taken: k distinct row positions.
    let nearestDistinct (points: Embeddings) (centroids: float[]) =
        let n = points.Count
        let d = points.Dim
        let k = if d = 0 then 0 else centroids.Length / d
        let taken = Array.zeroCreate<bool> n

        [|
            for j in 0 .. (min k n) - 1 do
                let mutable best = -1
                let mutable bestD = Double.PositiveInfinity

                for i in 0 .. n - 1 do
                    if not taken[i] then
                        let s = toCentroid points centroids i j

                        if s < bestD then
                            bestD <- s
                            best <- i

                taken[best] <- true
                yield best
        |]

/// The weight c of the labelled term in the critic gap, mean g(unlabelled) - c mean g(labelled).
[<RequireQualifiedAccess>]
module Imbalance =
    /// Which coefficient to use.
    type Coefficient =
        /// |L| / |U|, as the reference code does.
        | Reference
        /// The paper's C0 = (gamma - beta) / (gamma (1 + beta)), gamma = |U|/|L|, beta = |B|/|L|.
        | Paper
        /// 1, as DeepAL+ does.
        | One

    /// The reference coefficient |L| / |U|.
    let reference (labelled: int) (unlabelled: int) = float labelled / float unlabelled

    /// The paper's C0 for |L| labelled, |U| unlabelled and a query batch of |B|.
    let paper (labelled: int) (unlabelled: int) (batch: int) =
        let gamma = float unlabelled / float labelled
        let beta = float batch / float labelled
        (gamma - beta) / (gamma * (1.0 + beta))

    /// The chosen coefficient.
    let value (coefficient: Coefficient) (labelled: int) (unlabelled: int) (batch: int) =
        match coefficient with
        | Reference -> reference labelled unlabelled
        | Paper -> paper labelled unlabelled batch
        | One -> 1.0
