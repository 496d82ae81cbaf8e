/// Batched, no-grad, eval-mode passes over many images: predictions, log-probabilities, critic values,
/// embeddings. Nothing here trains, so dropout is off and BatchNorm uses its running statistics.
module Waal.Learning.Scoring

open TorchSharp
open type TorchSharp.torch
open type TorchSharp.torch.nn
// torch exposes ScalarType fields named int64, float32, ...: take F#'s conversion functions back.
open Microsoft.FSharp.Core.Operators
open Waal.Learning.Nets
open Waal.Learning.Tensors

/// What a pass over some images of the pool produced, row i for the i-th index given.
type Scores =
    {
        /// log-softmax of the logits, row-major, `Classes` per row.
        LogProbabilities: float32[]
        /// g(f(x)), one per row.
        Critic: float32[]
        Classes: int
    }

    /// Row i of the log-probabilities as doubles (what the core's query math takes).
    member s.Row(i: int) =
        Array.init s.Classes (fun c -> float s.LogProbabilities[i * s.Classes + c])

/// Runs `pass` over the images at `indices` (all images when None) in batches, in eval mode without grad,
/// and returns the per-batch results in order.
/// Eval mode everywhere except the dropout layers (MC dropout): BatchNorm keeps its running statistics and is
/// never updated while the pool is scored.
let dropoutOnly (nets: Networks) =
    nets.Train false

    for m in [ nets.Features :> nn.Module; nets.Classifier; nets.Critic ] do
        for sub in m.modules () do
            match sub with
            | :? Modules.Dropout
            | :? Modules.Dropout2d -> sub.train true
            | _ -> ()

/// Runs `pass` over the images at `indices` (all images when None) in batches of `batch`. Each pass returns
/// one tensor per output (rows = the batch's images); the rows are copied into CPU tensors allocated once for
/// all images (`columns` values per row, of `dtype`), so no .NET array is made per batch. Without `grad` the
/// passes run in inference mode (no autograd bookkeeping at all). Returns the filled outputs.
let private batchedIn
    (mode: Networks -> unit)
    (grad: bool)
    (nets: Networks)
    (data: ImageTensors)
    (indices: int[] option)
    (batch: int)
    (progress: ProgressSink)
    (what: string)
    (outputs: (int64 * ScalarType)[])
    (pass: Tensor -> Tensor[])
    =
    let count = indices |> Option.map Array.length |> Option.defaultValue data.Count
    let total = (count + batch - 1) / batch

    let results =
        outputs
        |> Array.map (fun (columns, dtype) -> torch.empty ([| int64 count; columns |], dtype = dtype, device = CPU))

    mode nets

    use _ =
        if grad then
            torch.enable_grad true
        else
            torch.inference_mode true

    use idx = indices |> Option.map (indexTensor data.Device) |> Option.toObj
    progress.Start what total

    for b in 0 .. total - 1 do
        use _scope = torch.NewDisposeScope()
        let start = int64 (b * batch)
        let len = min (int64 batch) (int64 count - start)

        let x =
            if isNull idx then
                data.Slice(start, len)
            else
                data.Gather(idx.narrow (0L, start, len))

        let parts = pass x

        for k in 0 .. results.Length - 1 do
            results[k].narrow(0L, start, len).copy_(parts[k].reshape(len, fst outputs[k]))
            |> ignore

        progress.Advance 1

    progress.Finish()
    results

let private batched nets data indices batch progress what outputs pass =
    batchedIn (fun (n: Networks) -> n.Train false) false nets data indices batch progress what outputs pass

/// The values of a CPU tensor as a .NET array; disposes the tensor.
let private floats (t: Tensor) =
    use t = t
    t.data<float32>().ToArray()

/// The predicted class of every image of `data` (argmax of the logits), reported to the progress sink as `what`.
let predictAs (what: string) (nets: Networks) (data: ImageTensors) (batch: int) (progress: ProgressSink) =
    let out =
        batched nets data None batch progress what [| 1L, ScalarType.Int64 |] (fun x ->
            [| (nets.Classifier.forward (nets.Features.forward x)).argmax(1L) |])

    use predicted = out[0]
    predicted.data<int64>().ToArray() |> Array.map int

/// The predicted class of every image of `data` (argmax of the logits).
let predict (nets: Networks) (data: ImageTensors) (batch: int) (progress: ProgressSink) =
    predictAs "evaluate" nets data batch progress

/// Log-probabilities and critic values of the images at `indices`, one forward of f, h and g.
let scores (nets: Networks) (data: ImageTensors) (indices: int[]) (batch: int) (progress: ProgressSink) =
    let classes = int64 data.Classes

    let out =
        batched
            nets
            data
            (Some indices)
            batch
            progress
            "query"
            [| classes, ScalarType.Float32; 1L, ScalarType.Float32 |]
            (fun x ->
                let z = nets.Features.forward x

                [|
                    functional.log_softmax (nets.Classifier.forward z, 1L)
                    nets.Critic.forward z
                |])

    {
        LogProbabilities = floats out[0]
        Critic = floats out[1]
        Classes = data.Classes
    }

/// Softmax probabilities, row-major (`Classes` per row), of the images at `indices`, in the given mode.
let private softmaxIn mode (nets: Networks) (data: ImageTensors) (indices: int[]) batch progress what =
    let out =
        batchedIn
            mode
            false
            nets
            data
            (Some indices)
            batch
            progress
            what
            [| int64 data.Classes, ScalarType.Float32 |]
            (fun x -> [| functional.softmax (nets.Classifier.forward (nets.Features.forward x), 1L) |])

    floats out[0]

/// Softmax probabilities, row-major (`Classes` per row), of the images at `indices`, reported as the phase `what`.
let probabilitiesAs
    (what: string)
    (nets: Networks)
    (data: ImageTensors)
    (indices: int[])
    (batch: int)
    (progress: ProgressSink)
    =
    softmaxIn (fun (n: Networks) -> n.Train false) nets data indices batch progress what

/// Softmax probabilities, row-major (`Classes` per row), of the images at `indices` (the phase "query").
let probabilities (nets: Networks) (data: ImageTensors) (indices: int[]) (batch: int) (progress: ProgressSink) =
    probabilitiesAs "query" nets data indices batch progress

/// The 50-d embeddings h uses before its last dropout, of the images at `indices`, one row each.
let embeddings (nets: Networks) (data: ImageTensors) (indices: int[]) (batch: int) (progress: ProgressSink) =
    let out =
        batched
            nets
            data
            (Some indices)
            batch
            progress
            "embed"
            [| Classifier.EmbeddingDim, ScalarType.Float32 |]
            (fun x -> [| nets.Classifier.Embed(nets.Features.forward x) |])

    {
        Waal.Core.Embeddings.Dim = int Classifier.EmbeddingDim
        Waal.Core.Embeddings.Values = floats out[0]
    }

/// T stochastic passes with only the dropout layers active: result[t] holds pass t's probabilities,
/// row-major (`Classes` per row), of the images at `indices`. Seed libtorch first for repeatable masks.
let monteCarlo
    (nets: Networks)
    (data: ImageTensors)
    (indices: int[])
    (passes: int)
    (batch: int)
    (progress: ProgressSink)
    =
    [|
        for t in 1..passes -> softmaxIn dropoutOnly nets data indices batch progress $"dropout pass {t}/{passes}"
    |]

/// DeepFool (Moosavi-Dezfooli et al.): for each image, repeat up to `maxSteps` times the linearised step to the
/// closest class boundary (closest over all classes, kept as the minimum while the classes are scanned) until
/// the predicted class changes; returns the squared norm of the accumulated perturbation per image. Each step
/// is r = (|f_l| + 1e-4) / ||w_l||^2 w_l, overshot by 2 % (applied per step rather than once to the total, a
/// small deviation from the original that only matters for images that flip on the first step). Batched over
/// images: each step takes one backward pass per class, over the images not yet flipped.
let deepFool
    (nets: Networks)
    (data: ImageTensors)
    (indices: int[])
    (maxSteps: int)
    (batch: int)
    (progress: ProgressSink)
    =
    let classes = int64 data.Classes

    let out =
        batchedIn
            (fun (n: Networks) -> n.Train false)
            true
            nets
            data
            (Some indices)
            batch
            progress
            "deepfool"
            [| 1L, ScalarType.Float32 |]
            (fun x0 ->
                let n = x0.shape[0]
                let flat = x0.reshape (n, -1L)
                let mutable total = torch.zeros_like flat

                let original =
                    (nets.Classifier.forward (nets.Features.forward x0)).argmax(1L).detach()

                // The rows still on their original class: each step runs on those alone (most images cross a
                // boundary in a few steps; the network is in eval mode, so a row's values do not depend on which
                // other rows share its pass).
                let mutable rows = torch.arange (n)
                let mutable step = 0

                while step < maxSteps && rows.shape[0] > 0L do
                    // One scope per step: only the running perturbation and the active rows leave it.
                    use _step = torch.NewDisposeScope()
                    let m = rows.shape[0]

                    let x =
                        (flat.index_select (0L, rows) + total.index_select (0L, rows)).detach().requires_grad_ true

                    let shape = Array.append [| m |] x0.shape[1..]
                    let logits = nets.Classifier.forward (nets.Features.forward (x.reshape shape))
                    let origin = original.index_select (0L, rows)
                    let still = logits.argmax(1L).eq origin

                    if still.any().item<bool>() then
                        let within = torch.arange (m)
                        let fo = logits.index ([| within; origin |])

                        let grads =
                            [|
                                for k in 0L .. classes - 1L ->
                                    (torch.autograd.grad (
                                        [| logits.select(1L, k).sum() |],
                                        [| x |],
                                        retain_graph = true
                                    )).[0]
                            |]

                        let gOriginal = torch.stack(grads, 1L).index([| within; origin |])
                        let mutable best = torch.full (m, System.Double.PositiveInfinity)
                        let mutable bestStep = torch.zeros_like x

                        for k in 0L .. classes - 1L do
                            let w = grads[int k] - gOriginal
                            let f = logits.select (1L, k) - fo
                            let wn = w.norm (1, false, 2.0f) + 1e-8
                            let dist = f.abs().detach() / wn
                            // The original class is no boundary: exclude it.
                            let dist =
                                dist.masked_fill (origin.eq (torch.tensor k), System.Double.PositiveInfinity)

                            let closer = dist.lt best
                            let r = ((f.abs().detach() + 1e-4) / (wn * wn)).unsqueeze(1L) * w.detach ()
                            bestStep <- torch.where (closer.unsqueeze (1L), r, bestStep)
                            best <- torch.where (closer, dist, best)

                        // Only the rows still on their class move; the others keep their perturbation.
                        let moving = rows.masked_select still

                        let moved =
                            total.index_select (0L, moving)
                            + bestStep.index_select (0L, still.nonzero().view(-1L)) * 1.02

                        total <- total.index_copy(0L, moving, moved).MoveToOuterDisposeScope()

                    rows <- rows.masked_select(still).MoveToOuterDisposeScope()
                    step <- step + 1

                [| (total * total).sum(1L) |])

    floats out[0]
