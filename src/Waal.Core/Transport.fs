/// The Wasserstein batch query's math (`--strategy transport`): choose the batch S that most lowers
/// F(S) = sum_x w(x) min_{s in L u S} d(x, s), the W1 distance between the weighted pool and the best measure
/// supported on the labelled set plus the batch. F is non-increasing and supermodular in S, so its decrease
/// F(empty) - F(S) is monotone submodular (facility location) and greedy reaches at least (1 - 1/e) of the best
/// decrease of any batch of the same size. Also the kernel-herding (MMD) batch: the same greedy with a
/// closed-form critic. Pure: the TorchSharp fast path (Waal.Learning.TransportKernels) computes the same picks.
[<RequireQualifiedAccess>]
module Waal.Core.Transport

open System

/// A batch-selection problem over rows of one embedding block: the target rows carry the pool measure (one
/// weight each, summing to 1), the support rows are already labelled, the candidate rows may be picked. `Ids`
/// names each row (its pool index): ties between equal gains go to the lower id, so the result does not depend
/// on the order rows are stored in.
type Problem =
    {
        Points: Embeddings
        Ids: int[]
        Targets: int[]
        Weights: float[]
        Support: int[]
        Candidates: int[]
    }

/// What a greedy selection chose: the candidate rows in pick order, and each pick's gain (the decrease of F).
type Selection = { Picks: int[]; Gains: float[] }

/// Normalised pool weights w(x) proportional to u(x)^beta, from uncertainties u >= 0 (beta = 0: uniform, with
/// 0^0 = 1). When every u^beta is 0 (every item certain) the weights are uniform: the measure is still the pool.
let weights (beta: float) (u: float[]) =
    if beta < 0.0 || not (Double.IsFinite beta) then
        invalidArg (nameof beta) $"expected a finite beta >= 0, found {beta}"

    if u |> Array.exists (fun x -> not (Double.IsFinite x) || x < 0.0) then
        invalidArg (nameof u) "expected finite uncertainties >= 0"

    let raw = u |> Array.map (fun x -> if beta = 0.0 then 1.0 else Math.Pow(x, beta))
    let total = Array.sum raw

    if u.Length = 0 then
        [||]
    elif total > 0.0 && Double.IsFinite total then
        raw |> Array.map (fun x -> x / total)
    else
        Array.create u.Length (1.0 / float u.Length)

/// The margin uncertainty u = 1 - (p_(1) - p_(2)) in [0, 1] of one prediction's probabilities.
let marginUncertainty (p: float[]) = 1.0 - Classic.margin p

/// Euclidean distance between two rows.
let distance (points: Embeddings) (a: int) (b: int) = sqrt (points.SquaredDistance(a, b))

/// The cost of a target with no support at all: a phantom site at least as far as any two rows are apart (twice
/// the farthest row from the first), so the first pick from an empty support is the weighted 1-median, every later
/// pick is as with a real support, and scaling the embedding scales it too.
let phantom (p: Problem) =
    let rows = Array.concat [ p.Targets; p.Candidates; p.Support ]

    if rows.Length = 0 then
        0.0
    else
        let r0 = rows[0]
        2.0 * (rows |> Array.fold (fun m r -> max m (distance p.Points r0 r)) 0.0)

/// Each target's distance to its nearest site in `sites` (the phantom cost when there is none).
let nearest (p: Problem) (sites: int[]) =
    let c = phantom p

    p.Targets
    |> Array.map (fun t -> sites |> Array.fold (fun m s -> min m (distance p.Points t s)) c)

/// F(S): the weighted transport cost of the pool to L u S (the phantom cost where L u S is empty).
let objective (p: Problem) (batch: int[]) =
    let m = nearest p (Array.append p.Support batch)
    let mutable s = 0.0

    for i in 0 .. m.Length - 1 do
        s <- s + p.Weights[i] * m[i]

    s

/// The decrease of F when `candidate` joins the sites, given each target's current nearest distance.
let gain (p: Problem) (current: float[]) (candidate: int) =
    let mutable s = 0.0

    for i in 0 .. p.Targets.Length - 1 do
        let d = distance p.Points p.Targets[i] candidate

        if d < current[i] then
            s <- s + p.Weights[i] * (current[i] - d)

    s

let private update (p: Problem) (current: float[]) (site: int) =
    for i in 0 .. p.Targets.Length - 1 do
        let d = distance p.Points p.Targets[i] site

        if d < current[i] then
            current[i] <- d

/// True when candidate a with gain ga goes before candidate b with gain gb: the larger gain, then the lower id.
let internal before (p: Problem) (ga: float) (a: int) (gb: float) (b: int) =
    ga > gb || (ga = gb && p.Ids[a] < p.Ids[b])

/// The problem with its targets and candidates in id order: every sum is then taken in the same order however
/// the rows are stored.
let canonical (p: Problem) =
    let order =
        Array.init p.Targets.Length id |> Array.sortBy (fun i -> p.Ids[p.Targets[i]])

    { p with
        Targets = order |> Array.map (fun i -> p.Targets[i])
        Weights = order |> Array.map (fun i -> p.Weights[i])
        Candidates = p.Candidates |> Array.sortBy (fun c -> p.Ids[c])
    }

let private check (p: Problem) (k: int) =
    if k < 0 then
        invalidArg (nameof k) $"expected k >= 0, found {k}"

    if p.Weights.Length <> p.Targets.Length then
        invalidArg (nameof p) $"{p.Weights.Length} weights for {p.Targets.Length} targets"

    if p.Ids.Length <> p.Points.Count then
        invalidArg (nameof p) $"{p.Ids.Length} ids for {p.Points.Count} rows"

/// Plain greedy: every pick evaluates every remaining candidate and takes the largest gain (ties to the lower
/// id). min(k, |candidates|) picks. O(k |C| |T| d): the reference the lazy and fast paths are held to.
let greedy (p: Problem) (k: int) =
    check p k
    let p = canonical p
    let current = nearest p p.Support
    let taken = Collections.Generic.HashSet<int>()
    let count = min k p.Candidates.Length
    let picks = Array.zeroCreate count
    let gains = Array.zeroCreate count

    for step in 0 .. count - 1 do
        let mutable best = -1
        let mutable bestGain = 0.0

        for c in p.Candidates do
            if not (taken.Contains c) then
                let g = gain p current c

                if best < 0 || before p g c bestGain best then
                    best <- c
                    bestGain <- g

        taken.Add best |> ignore
        picks[step] <- best
        gains[step] <- bestGain
        update p current best

    { Picks = picks; Gains = gains }

/// Lazy greedy (Minoux): a candidate's last computed gain bounds its gain now (supermodularity), so each pick
/// recomputes only the candidates whose bound leads, until the leader's bound is fresh. Same picks as `greedy`
/// (ties included: the lead is by gain, then by id), far fewer evaluations.
let lazyGreedy (p: Problem) (k: int) =
    check p k
    let p = canonical p
    let current = nearest p p.Support
    let n = p.Candidates.Length
    let bound = p.Candidates |> Array.map (gain p current)
    let freshAt = Array.create n 0
    let taken = Array.zeroCreate<bool> n
    let count = min k n
    let picks = Array.zeroCreate count
    let gains = Array.zeroCreate count

    for step in 0 .. count - 1 do
        let mutable chosen = -1

        while chosen < 0 do
            let mutable lead = -1

            for i in 0 .. n - 1 do
                if
                    not taken[i]
                    && (lead < 0 || before p bound[i] p.Candidates[i] bound[lead] p.Candidates[lead])
                then
                    lead <- i

            if freshAt[lead] = step then
                chosen <- lead
            else
                bound[lead] <- gain p current p.Candidates[lead]
                freshAt[lead] <- step

        taken[chosen] <- true
        picks[step] <- p.Candidates[chosen]
        gains[step] <- bound[chosen]
        // Every bound computed before this pick is a bound still; the next step recomputes what leads.
        update p current p.Candidates[chosen]

    { Picks = picks; Gains = gains }

/// The weighted 1-D W1 between a measure on the targets' first coordinate (weights w) and the measure that the
/// nearest-site coupling moves it to (each target's weight on its nearest site in L u S): on 1-D embeddings the
/// exact transport cost from sorted CDFs, which equals F(S) (the transport invariant the properties check).
let pushForwardW1 (p: Problem) (batch: int[]) =
    if p.Points.Dim <> 1 then
        invalidArg (nameof p) $"expected 1-D embeddings, found {p.Points.Dim}"

    let sites = Array.append p.Support batch

    if sites.Length = 0 then
        invalidArg (nameof batch) "expected at least one site"

    let x (r: int) = float p.Points.Values[r]

    let moved =
        p.Targets
        |> Array.map (fun t -> sites |> Array.minBy (fun s -> abs (x t - x s)) |> x)

    Wasserstein.w1Weighted (p.Targets |> Array.map x) p.Weights moved p.Weights

/// Kernel herding (the MMD batch): greedy picks that lower MMD^2 between the weighted pool and the uniform
/// measure on L u S, with a Gaussian kernel k(a, b) = exp(-|a - b|^2 / (2 sigma^2)). Adding c to n sites
/// changes MMD^2 by a term minimised at the largest (n + 1) a(c) - b(c), with a(c) = sum_t w_t k(t, c) (the
/// pool's pull) and b(c) = sum_s k(c, s) (the sites' push), since k(c, c) = 1 for every c.
[<RequireQualifiedAccess>]
module Herding =
    /// The median-distance bandwidth: the median distance between the first (in id order) up to 500 targets and
    /// as many candidates (the usual heuristic); 1 when every such distance is 0.
    let bandwidth (p: Problem) =
        let q = canonical p
        let t = q.Targets |> Array.truncate 500
        let c = q.Candidates |> Array.truncate 500

        let d =
            [|
                for a in t do
                    for b in c do
                        let x = distance q.Points a b

                        if x > 0.0 then
                            x
            |]
            |> Array.sort

        if d.Length = 0 then 1.0 else d[d.Length / 2]

    /// The Gaussian kernel between two rows.
    let kernel (sigma: float) (points: Embeddings) (a: int) (b: int) =
        exp (-points.SquaredDistance(a, b) / (2.0 * sigma * sigma))

    /// MMD^2 between the weighted targets and the uniform measure on L u batch (0 sites: the pool's own term).
    let mmd2 (sigma: float) (p: Problem) (batch: int[]) =
        let k = kernel sigma p.Points
        let sites = Array.append p.Support batch
        let mutable pp = 0.0

        for i in 0 .. p.Targets.Length - 1 do
            for j in 0 .. p.Targets.Length - 1 do
                pp <- pp + p.Weights[i] * p.Weights[j] * k p.Targets[i] p.Targets[j]

        if sites.Length = 0 then
            pp
        else
            let n = float sites.Length
            let mutable ps = 0.0
            let mutable ss = 0.0

            for i in 0 .. p.Targets.Length - 1 do
                for s in sites do
                    ps <- ps + p.Weights[i] * k p.Targets[i] s

            for a in sites do
                for b in sites do
                    ss <- ss + k a b

            pp - 2.0 * ps / n + ss / (n * n)

    /// The herding picks, given each candidate's pool pull a(c) (in candidate order) and a function giving the
    /// kernel between one candidate row and every candidate row (in candidate order), and the sites' push on
    /// each candidate from the labelled set: ties to the lower id.
    let greedyWith (p: Problem) (pull: float[]) (push: float[]) (column: int -> float[]) (k: int) =
        check p k
        let n = p.Candidates.Length
        let push = Array.copy push
        let taken = Array.zeroCreate<bool> n
        let count = min k n
        let picks = Array.zeroCreate count
        let gains = Array.zeroCreate count
        let mutable sites = p.Support.Length

        for step in 0 .. count - 1 do
            let mutable best = -1
            let mutable bestScore = 0.0

            for i in 0 .. n - 1 do
                if not taken[i] then
                    let score = float (sites + 1) * pull[i] - push[i]

                    if best < 0 || before p score p.Candidates[i] bestScore p.Candidates[best] then
                        best <- i
                        bestScore <- score

            taken[best] <- true
            picks[step] <- p.Candidates[best]
            gains[step] <- bestScore
            sites <- sites + 1
            let col = column best

            for i in 0 .. n - 1 do
                push[i] <- push[i] + col[i]

        { Picks = picks; Gains = gains }

    /// Kernel herding with every kernel value computed here (the pure path).
    let greedy (sigma: float) (p: Problem) (k: int) =
        let p = canonical p
        let ker = kernel sigma p.Points

        let pull =
            p.Candidates
            |> Array.map (fun c -> Array.fold2 (fun s t w -> s + w * ker t c) 0.0 p.Targets p.Weights)

        let push =
            p.Candidates |> Array.map (fun c -> p.Support |> Array.sumBy (fun s -> ker c s))

        greedyWith p pull push (fun i -> p.Candidates |> Array.map (fun c -> ker p.Candidates[i] c)) k
