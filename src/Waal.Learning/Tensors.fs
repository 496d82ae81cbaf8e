/// Datasets held as one uint8 tensor each (a pool never lives in memory as float32): batches are gathered with
/// index_select and normalised as they are taken.
module Waal.Learning.Tensors

open System
open TorchSharp
open type TorchSharp.torch
// torch exposes ScalarType fields named int64, float32, ...: take F#'s conversion functions back.
open Microsoft.FSharp.Core.Operators
open Waal.Data

/// Where a dataset's raw rows are: one uint8 N x C x H x W tensor on the device, or the rows of a file (a
/// folder's decode cache) read a batch at a time and moved to the device.
type Rows =
    | Resident of Tensor
    | Streamed of PixelFile * Device
    /// A backbone's embeddings: float32 rows of Channels values in a file (Backbone.embed's cache), read a
    /// batch at a time.
    | Embedded of PixelFile * Device

/// Images as raw uint8 rows, with the per-channel constants that turn a batch of them into the network's float32
/// inputs. No labels: what a learner sees of the pool has none, so labels can reach training only through the
/// pool's label log; a test set's labels stay in its Dataset, for accuracy.
type ImageTensors =
    {
        /// The raw bytes, N x C x H x W.
        Pixels: Rows
        /// 1 x C x 1 x 1 float32 means and standard deviations (of pixel/255).
        Mean: Tensor
        Std: Tensor
        Count: int
        Channels: int
        Height: int
        Width: int
        Classes: int
    }

    /// The network's inputs for a batch of raw rows: (pixel/255 - mean) / std, float32; embeddings (already
    /// float32) as (value - mean) / std. Elementwise, so a row comes out the same whichever batch it is in.
    member t.Normalise(raw: Tensor) =
        use _scope = torch.NewDisposeScope()

        if raw.dtype = ScalarType.Float32 then
            ((raw - t.Mean) / t.Std).MoveToOuterDisposeScope()
        else
            ((raw.to_type ScalarType.Float32 / 255.0f - t.Mean) / t.Std).MoveToOuterDisposeScope()

    /// The float32 rows of `items` from an embeddings file, as an N x D x 1 x 1 batch on the device.
    member private t.ReadEmbeddings(file: PixelFile, device: Device, items: int[]) =
        let values = Array.zeroCreate<float32>(items.Length * t.Channels)
        file.Read(items, Runtime.InteropServices.MemoryMarshal.AsBytes(Span values))
        use _scope = torch.NewDisposeScope()

        torch
            .from_array(values)
            .view(int64 items.Length, int64 t.Channels, 1L, 1L)
            .``to``(device)
            .MoveToOuterDisposeScope()

    /// The raw rows of `items` from a file, as a uint8 batch on the device.
    member private t.Read(file: PixelFile, device: Device, items: int[]) =
        let bytes = Array.zeroCreate<byte>(items.Length * file.RowBytes)
        file.Read(items, Span bytes)

        // As in ofDataset: the tensor shares `bytes`; the scope frees the intermediates, the batch is moved out.
        use _scope = torch.NewDisposeScope()

        torch
            .from_array(bytes)
            .view(int64 items.Length, int64 t.Channels, int64 t.Height, int64 t.Width)
            .``to``(device)
            .MoveToOuterDisposeScope()

    /// The normalised rows at `indices` (an int64 tensor on the device).
    member t.Gather(indices: Tensor) =
        match t.Pixels with
        | Resident pixels ->
            use raw = pixels.index_select (0L, indices)
            t.Normalise raw
        | Streamed(file, device) ->
            use onCpu = indices.cpu ()
            let items = onCpu.data<int64>().ToArray() |> Array.map int
            use raw = t.Read(file, device, items)
            t.Normalise raw
        | Embedded(file, device) ->
            use onCpu = indices.cpu ()
            let items = onCpu.data<int64>().ToArray() |> Array.map int
            use raw = t.ReadEmbeddings(file, device, items)
            t.Normalise raw

    /// The normalised rows start .. start+length-1.
    member t.Slice(start: int64, length: int64) =
        match t.Pixels with
        | Resident pixels ->
            use raw = pixels.narrow (0L, start, length)
            t.Normalise raw
        | Streamed(file, device) ->
            use raw = t.Read(file, device, Array.init (int length) (fun k -> int start + k))
            t.Normalise raw
        | Embedded(file, device) ->
            use raw =
                t.ReadEmbeddings(file, device, Array.init (int length) (fun k -> int start + k))

            t.Normalise raw

    /// The device the pixels live on (or are moved to, a batch at a time).
    member t.Device =
        match t.Pixels with
        | Resident pixels -> pixels.device
        | Streamed(_, device)
        | Embedded(_, device) -> device

    interface IDisposable with
        member this.Dispose() =
            match this.Pixels with
            | Resident pixels -> pixels.Dispose()
            | Streamed _ -> ()
            | Embedded(file, _) -> file.Handle.Dispose()

            this.Mean.Dispose()
            this.Std.Dispose()

/// Holds a dataset's bytes as a tensor (sharing the dataset's array on the CPU) with its normalisation. Rejects
/// constants of the wrong length.
let ofDataset (device: Device) (norm: Normalisation) (d: Dataset) : ImageTensors =
    if norm.Mean.Length <> d.Channels || norm.Std.Length <> d.Channels then
        invalidArg (nameof norm) $"normalisation has {norm.Mean.Length} channels, the data {d.Channels}"

    use _scope = torch.NewDisposeScope()
    let shape = [| int64 d.Count; int64 d.Channels; int64 d.Height; int64 d.Width |]

    let constants (values: float[]) =
        torch
            .tensor(values |> Array.map float32)
            .view(1L, int64 d.Channels, 1L, 1L)
            .``to``(device)
            .MoveToOuterDisposeScope()

    {
        Pixels =
            match d.Stored with
            | Some file -> Streamed(file, device)
            | None ->
                // On the CPU the tensor shares the dataset's byte[] (from_array never copies; the array stays
                // pinned while the tensor lives): the pool is held once. Nothing writes into it: batches are
                // gathered into new tensors.
                let raw = torch.from_array(d.Images).view shape
                Resident(raw.``to``(device).MoveToOuterDisposeScope())
        Mean = constants norm.Mean
        Std = constants norm.Std
        Count = d.Count
        Channels = d.Channels
        Height = d.Height
        Width = d.Width
        Classes = d.Classes
    }

/// A backbone's embeddings (`file`: float32 rows of `dim` values, one per item) with per-dimension constants
/// (`norm`: one mean and deviation per dimension), as N x D x 1 x 1 inputs for the head. The tensors own the
/// file's handle.
let ofEmbeddings (device: Device) (norm: Normalisation) (file: PixelFile) (dim: int) (classes: int) : ImageTensors =
    if norm.Mean.Length <> dim || norm.Std.Length <> dim then
        invalidArg (nameof norm) $"normalisation has {norm.Mean.Length} dimensions, the embeddings {dim}"

    use _scope = torch.NewDisposeScope()

    let constants (values: float[]) =
        torch.tensor(values |> Array.map float32).view(1L, int64 dim, 1L, 1L).``to``(device).MoveToOuterDisposeScope()

    {
        Pixels = Embedded(file, device)
        Mean = constants norm.Mean
        Std = constants norm.Std
        Count = file.Rows.Length
        Channels = dim
        Height = 1
        Width = 1
        Classes = classes
    }

/// Embeddings already in memory (an N x D float32 tensor, taken over) as N x D x 1 x 1 inputs for the head, with
/// per-dimension constants (prediction).
let ofResidentEmbeddings (device: Device) (norm: Normalisation) (embedded: Tensor) (classes: int) : ImageTensors =
    let n, dim = embedded.shape[0], embedded.shape[1]
    use _scope = torch.NewDisposeScope()

    let constants (values: float[]) =
        torch.tensor(values |> Array.map float32).view(1L, dim, 1L, 1L).``to``(device).MoveToOuterDisposeScope()

    let rows = embedded.view(n, dim, 1L, 1L).``to``(device).MoveToOuterDisposeScope()
    // Taken over: the rows hold the storage; the handle given is released now, not by the finaliser.
    embedded.Dispose()

    {
        Pixels = Resident rows
        Mean = constants norm.Mean
        Std = constants norm.Std
        Count = int n
        Channels = int dim
        Height = 1
        Width = 1
        Classes = classes
    }

/// Holds a dataset with the normalisation its registry entry gives for `pool` (a folder dataset's is computed
/// from the pool; the others' are constants).
let ofEntry (entry: Datasets.Entry) (device: Device) (pool: Dataset) (d: Dataset) =
    ofDataset device (entry.Normalisation pool) d

/// An int64 index tensor on the device.
let internal indexTensor (device: Device) (indices: int[]) =
    torch.tensor(indices |> Array.map int64).``to`` device
