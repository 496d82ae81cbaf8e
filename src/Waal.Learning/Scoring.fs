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
let private batched
    (nets: Networks)
    (data: DataTensors)
    (indices: int[] option)
    (batch: int)
    (progress: ProgressSink)
    (what: string)
    (pass: Tensor -> 'a)
    =
    let count = indices |> Option.map Array.length |> Option.defaultValue data.Count
    let total = (count + batch - 1) / batch
    nets.Train false
    use _ = torch.no_grad ()
    use idx = indices |> Option.map (indexTensor data.Images.device) |> Option.toObj
    progress.Start what total

    let results =
        [|
            for b in 0 .. total - 1 do
                use _scope = torch.NewDisposeScope()
                let start = int64 (b * batch)
                let len = min (int64 batch) (int64 count - start)

                let x =
                    if isNull idx then
                        data.Images.narrow (0L, start, len)
                    else
                        data.Images.index_select (0L, idx.narrow (0L, start, len))

                yield pass x
                progress.Advance 1
        |]

    progress.Finish()
    results

/// The predicted class of every image of `data` (argmax of the logits).
let predict (nets: Networks) (data: DataTensors) (batch: int) (progress: ProgressSink) =
    batched nets data None batch progress "evaluate" (fun x ->
        (nets.Classifier.forward (nets.Features.forward x)).argmax(1L).``to``(CPU).data<int64>().ToArray())
    |> Array.concat
    |> Array.map int

/// The hidden labels of `data` (for accuracy; never used for training or querying).
let labels (data: DataTensors) =
    data.Labels.``to``(CPU).data<int64>().ToArray() |> Array.map int

/// Log-probabilities and critic values of the images at `indices`, one forward of f, h and g.
let scores (nets: Networks) (data: DataTensors) (indices: int[]) (batch: int) (progress: ProgressSink) =
    let parts =
        batched nets data (Some indices) batch progress "query" (fun x ->
            let z = nets.Features.forward x
            let logp = functional.log_softmax (nets.Classifier.forward z, 1L)
            logp.``to``(CPU).data<float32>().ToArray(), nets.Critic.forward(z).``to``(CPU).data<float32>().ToArray())

    {
        LogProbabilities = parts |> Array.collect fst
        Critic = parts |> Array.collect snd
        Classes = data.Classes
    }
