/// The fast path of the Wasserstein batch query and of kernel herding (Waal.Core.Transport): the same greedy,
/// with every distance from blocked matrix products in libtorch (float64, on the CPU). Lazy greedy re-evaluates
/// the leading stale candidates a batch at a time, so a pick costs one pass over the targets and a few small
/// products. Memory: the targets, the candidates and one block of distances, never a full matrix.
module Waal.Learning.TransportKernels

open System.Collections.Generic
open TorchSharp
open Waal.Core

// torch exposes ScalarType fields named int64, float32, ...: take F#'s conversion functions back.
open Microsoft.FSharp.Core.Operators

/// Distance entries per block (rows x targets): 2^22 doubles, 32 MB.
let private blockEntries = 1L <<< 22

/// Stale candidates re-evaluated together in one product (measured at a 50k pool and k = 3,000: 4 takes 3.5
/// evaluations a pick and is the fastest of 4, 8 and 32).
let private evaluationBatch = 4

let private rows (points: Embeddings) (indices: int[]) =
    let d = points.Dim
    let values = Array.zeroCreate<float>(indices.Length * d)

    for i in 0 .. indices.Length - 1 do
        let o = indices[i] * d

        for j in 0 .. d - 1 do
            values[i * d + j] <- float points.Values[o + j]

    torch.tensor(values).view(int64 indices.Length, int64 d)

/// Euclidean distances between the rows of a (n x d) and b (m x d), with b's squared norms given: n x m. The
/// product form |a|^2 + |b|^2 - 2 a.b rounds to about 1e-8 of the norms where a = b; a squared distance below
/// 1e-12 of the squared norms (a distance below 1e-6 of the norms, a few float32 ulps of the embeddings) is 0,
/// so a copy of a row is at distance 0 from it, as in the pure path.
let private distances (a: torch.Tensor) (b: torch.Tensor) (bNorms: torch.Tensor) =
    let aNorms = (a * a).sum(1L, keepdim = true)
    let scale = aNorms + bNorms.unsqueeze (0L)
    let squared = scale - 2.0 * a.matmul (b.t ())
    squared.masked_fill(squared.le (scale * 1e-12), 0.0).sqrt()

let private blocks (count: int) (width: int) =
    let size = max 1 (int (blockEntries / int64 (max 1 width)))
    [ for start in 0..size .. count - 1 -> start, min size (count - start) ]

/// The targets, their weights and squared norms, and the candidates, as tensors.
type private Tensors(p: Transport.Problem) =
    member val Targets = rows p.Points p.Targets
    member val Weights = torch.tensor (Array.copy p.Weights)
    member val Candidates = rows p.Points p.Candidates
    member t.TargetNorms = (t.Targets * t.Targets).sum 1L

    interface System.IDisposable with
        member t.Dispose() =
            t.Targets.Dispose()
            t.Weights.Dispose()
            t.Candidates.Dispose()

/// Each target's distance to its nearest support row (the phantom cost when there is none).
let private nearest (p: Transport.Problem) (targets: torch.Tensor) (norms: torch.Tensor) =
    let current = torch.tensor (Array.create p.Targets.Length (Transport.phantom p))

    for start, length in blocks p.Support.Length p.Targets.Length do
        use _scope = torch.NewDisposeScope()
        let support = rows p.Points p.Support[start .. start + length - 1]
        let d = distances support targets norms
        current.copy_ (torch.minimum (current, d.amin ([| 0L |]))) |> ignore

    current

/// The gains of the candidate rows c given each target's current nearest distance.
let private gains
    (c: torch.Tensor)
    (targets: torch.Tensor)
    (norms: torch.Tensor)
    (w: torch.Tensor)
    (current: torch.Tensor)
    =
    let d = distances c targets norms
    (current.unsqueeze (0L) - d).clamp_min(0.0).matmul(w)

let private toArray (t: torch.Tensor) = t.contiguous().data<float>().ToArray()

/// Lazy greedy on the transport objective: the same picks as Transport.greedy (ties to the lower id; the sums
/// are taken in another order, so gains agree to rounding).
let greedy (problem: Transport.Problem) (k: int) : Transport.Selection =
    let p = Transport.canonical problem
    let n = p.Candidates.Length
    let count = max 0 (min k n)

    use _scope = torch.NewDisposeScope()
    use _mode = torch.inference_mode true
    use t = new Tensors(p)
    let norms = t.TargetNorms
    let current = nearest p t.Targets norms

    let bound = Array.zeroCreate<float> n

    for start, length in blocks n p.Targets.Length do
        use _block = torch.NewDisposeScope()

        let g =
            gains (t.Candidates.narrow (0L, int64 start, int64 length)) t.Targets norms t.Weights current

        Array.blit (toArray g) 0 bound start length

    // The lead: the largest bound, then the lower id (a max-heap on (bound, -id)).
    let heap =
        PriorityQueue<int, struct (float * int)>(
            Comparer<struct (float * int)>.Create(fun (struct (ga, ia)) (struct (gb, ib)) ->
                let c = compare gb ga
                if c <> 0 then c else compare ia ib)
        )

    for i in 0 .. n - 1 do
        heap.Enqueue(i, struct (bound[i], p.Ids[p.Candidates[i]]))

    let freshAt = Array.create n 0
    let picks = Array.zeroCreate count
    let gainsOf = Array.zeroCreate count
    let stale = ResizeArray<int>(evaluationBatch)

    for step in 0 .. count - 1 do
        let mutable chosen = -1

        while chosen < 0 do
            let lead = heap.Peek()

            if freshAt[lead] = step then
                chosen <- heap.Dequeue()
            else
                // The leading stale bounds, re-evaluated in one product; fresh ones met on the way go back as they are.
                stale.Clear()
                let fresh = ResizeArray<int>()

                while stale.Count < evaluationBatch && heap.Count > 0 do
                    let i = heap.Dequeue()
                    if freshAt[i] = step then fresh.Add i else stale.Add i

                use _eval = torch.NewDisposeScope()
                let which = torch.tensor (stale.ToArray() |> Array.map int64)

                let g =
                    toArray (gains (t.Candidates.index_select (0L, which)) t.Targets norms t.Weights current)

                for j in 0 .. stale.Count - 1 do
                    let i = stale[j]
                    bound[i] <- g[j]
                    freshAt[i] <- step
                    heap.Enqueue(i, struct (g[j], p.Ids[p.Candidates[i]]))

                for i in fresh do
                    heap.Enqueue(i, struct (bound[i], p.Ids[p.Candidates[i]]))

        picks[step] <- p.Candidates[chosen]
        gainsOf[step] <- bound[chosen]
        // Every bound computed before this pick is still a bound (supermodularity); the next step refreshes leads.
        use _update = torch.NewDisposeScope()
        let site = t.Candidates.narrow (0L, int64 chosen, 1L)
        let d = distances site t.Targets norms
        current.copy_ (torch.minimum (current, d.squeeze 0L)) |> ignore

    { Picks = picks; Gains = gainsOf }

/// Kernel herding with the kernel's sums from blocked products (Transport.Herding.greedyWith does the picking).
let herding (sigma: float) (problem: Transport.Problem) (k: int) : Transport.Selection =
    let p = Transport.canonical problem
    let n = p.Candidates.Length

    use _scope = torch.NewDisposeScope()
    use _mode = torch.inference_mode true
    use t = new Tensors(p)
    let scale = -1.0 / (2.0 * sigma * sigma)

    let kernel (a: torch.Tensor) (b: torch.Tensor) =
        let bn = (b * b).sum 1L
        let d = distances a b bn
        (d * d * scale).exp()

    let pull = Array.zeroCreate<float> n
    let push = Array.zeroCreate<float> n
    use support = rows p.Points p.Support

    for start, length in blocks n (max p.Targets.Length p.Support.Length) do
        use _block = torch.NewDisposeScope()
        let c = t.Candidates.narrow (0L, int64 start, int64 length)
        Array.blit (toArray ((kernel c t.Targets).matmul t.Weights)) 0 pull start length

        if p.Support.Length > 0 then
            Array.blit (toArray ((kernel c support).sum 1L)) 0 push start length

    let column (i: int) =
        use _col = torch.NewDisposeScope()
        toArray ((kernel (t.Candidates.narrow (0L, int64 i, 1L)) t.Candidates).squeeze 0L)

    Transport.Herding.greedyWith p pull push column k
