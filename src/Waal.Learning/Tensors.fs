/// Datasets held as one normalised tensor each, so batches are gathered with index_select.
module Waal.Learning.Tensors

open System
open TorchSharp
open type TorchSharp.torch
// torch exposes ScalarType fields named int64, float32, ...: take F#'s conversion functions back.
open Microsoft.FSharp.Core.Operators
open Waal.Data

/// Images as one float32 N x C x H x W tensor (normalised, on the device). No labels: what a learner sees of
/// the pool has none, so labels can reach training only through the pool's label log; a test set's labels stay
/// in its Dataset, for accuracy.
type ImageTensors =
    {
        Images: Tensor
        Count: int
        Channels: int
        Height: int
        Width: int
        Classes: int
    }

    interface IDisposable with
        member this.Dispose() = this.Images.Dispose()

/// Converts a dataset: pixel/255, then (x - mean) / std per channel. Rejects constants of the wrong length.
let ofDataset (device: Device) (norm: Normalisation) (d: Dataset) : ImageTensors =
    if norm.Mean.Length <> d.Channels || norm.Std.Length <> d.Channels then
        invalidArg (nameof norm) $"normalisation has {norm.Mean.Length} channels, the data {d.Channels}"

    use _scope = torch.NewDisposeScope()
    let shape = [| int64 d.Count; int64 d.Channels; int64 d.Height; int64 d.Width |]
    let raw = torch.tensor (d.Images, ReadOnlySpan shape, dtype = ScalarType.Byte)

    let mean =
        torch.tensor(norm.Mean |> Array.map float32).view(1L, int64 d.Channels, 1L, 1L)

    let std =
        torch.tensor(norm.Std |> Array.map float32).view(1L, int64 d.Channels, 1L, 1L)

    let images = ((raw.to_type ScalarType.Float32 / 255.0f - mean) / std).``to`` device

    {
        Images = images.MoveToOuterDisposeScope()
        Count = d.Count
        Channels = d.Channels
        Height = d.Height
        Width = d.Width
        Classes = d.Classes
    }

/// Converts a dataset with the normalisation of its registry entry.
let ofEntry (entry: Datasets.Entry) (device: Device) (d: Dataset) = ofDataset device entry.Normalisation d

/// An int64 index tensor on the device.
let indexTensor (device: Device) (indices: int[]) =
    torch.tensor(indices |> Array.map int64).``to`` device
