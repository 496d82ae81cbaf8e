/// A pretrained image model brought by the user (`--backbone FILE`, a TorchScript file run by libtorch itself):
/// read and checked once, every image embedded once into a cache file, and rounds train the head on the
/// embeddings (docs/backbones.md). How the images are prepared for it is in a JSON file beside it.
module Waal.Learning.Backbone

open System
open System.IO
open System.Text
open System.Text.Json
open TorchSharp
open type TorchSharp.torch
// torch exposes ScalarType fields named int64, float32, ...: take F#'s conversion functions back.
open Microsoft.FSharp.Core.Operators
open Waal.Core
open Waal.Data

/// How an image becomes the backbone's input: the shorter side resized to `Resize` (0: the stored size, which
/// every image must share) keeping the centre square, the centre `Crop` x `Crop` of that, pixel/255, then
/// (x - mean) / std per channel. `Output` picks the embedding when the model returns several tensors.
type Preprocessing =
    {
        Resize: int
        Crop: int
        Channels: int
        Mean: float[]
        Std: float[]
        Output: int
    }

/// The torchvision ImageNet models' preparation: resize 256, centre crop 224, RGB, ImageNet's mean and deviation.
let imageNet =
    {
        Resize = 256
        Crop = 224
        Channels = 3
        Mean = [| 0.485; 0.456; 0.406 |]
        Std = [| 0.229; 0.224; 0.225 |]
        Output = 0
    }

/// Why a backbone or its preparation file was refused: the file, and what was found against what was expected.
type BackboneError = { File: string; Detail: string }

/// The preparation file of a model: its path with the extension .json (resnet18.pt -> resnet18.json).
let preprocessingFile (model: string) = Path.ChangeExtension(model, ".json")

let private fields = [ "resize"; "crop"; "channels"; "mean"; "std"; "output" ]
let private fieldList = String.Join(", ", fields)

/// Reads the preparation file beside `model`: ImageNet's values for what it leaves out, and all of them when
/// there is no file. An unknown field, a wrong type or an impossible value is refused with the file named.
let readPreprocessing (model: string) : Result<Preprocessing, BackboneError> =
    let file = preprocessingFile model
    let fail detail = Error { File = file; Detail = detail }

    if not (File.Exists file) then
        if Directory.Exists file then
            fail "is a folder; expected the backbone's preparation file (JSON)"
        else
            Ok imageNet
    else
        try
            use doc =
                JsonDocument.Parse(
                    Files.readBytes "a backbone's preparation file" (1L <<< 20) file
                    |> Result.defaultWith (fun e -> raise (IOException(DataError.message e)))
                )

            let root = doc.RootElement

            if root.ValueKind <> JsonValueKind.Object then
                fail $"expected a JSON object with {fieldList}, found {root.ValueKind}"
            else
                let unknown =
                    root.EnumerateObject()
                    |> Seq.map (fun p -> p.Name)
                    |> Seq.tryFind (fun n -> not (List.contains n fields))

                let integer (name: string) (fallback: int) =
                    match root.TryGetProperty name with
                    | true, v when v.ValueKind = JsonValueKind.Number ->
                        match v.TryGetInt32() with
                        | true, n -> Ok n
                        | _ -> Error $"{name}: expected a whole number, found {v.GetRawText()}"
                    | true, v -> Error $"{name}: expected a whole number, found {v.GetRawText()}"
                    | _ -> Ok fallback

                let numbers (name: string) (fallback: float[]) =
                    match root.TryGetProperty name with
                    | true, v when
                        v.ValueKind = JsonValueKind.Array
                        && v.EnumerateArray() |> Seq.forall (fun x -> x.ValueKind = JsonValueKind.Number)
                        ->
                        Ok(v.EnumerateArray() |> Seq.map (fun x -> x.GetDouble()) |> Array.ofSeq)
                    | true, v -> Error $"{name}: expected an array of numbers, found {v.GetRawText()}"
                    | _ -> Ok fallback

                match unknown with
                | Some n -> fail $"unknown field '{n}'; expected some of {fieldList}"
                | None ->
                    let read =
                        ResultExpression.result {
                            let! resize = integer "resize" imageNet.Resize
                            let! crop = integer "crop" imageNet.Crop
                            let! channels = integer "channels" imageNet.Channels
                            let! output = integer "output" imageNet.Output
                            // Grey models default to one mean and deviation of 0.5.
                            let grey = if channels = 1 then [| 0.5 |] else imageNet.Mean
                            let! mean = numbers "mean" (if channels = 1 then grey else imageNet.Mean)
                            let! std = numbers "std" (if channels = 1 then grey else imageNet.Std)

                            return
                                {
                                    Resize = resize
                                    Crop = crop
                                    Channels = channels
                                    Mean = mean
                                    Std = std
                                    Output = output
                                }
                        }

                    match read with
                    | Error detail -> fail detail
                    | Ok p when p.Channels <> 1 && p.Channels <> 3 ->
                        fail $"channels: expected 1 or 3, found {p.Channels}"
                    | Ok p when p.Crop < 1 || p.Crop > 4096 -> fail $"crop: expected 1..4096 pixels, found {p.Crop}"
                    | Ok p when p.Resize <> 0 && (p.Resize < p.Crop || p.Resize > 4096) ->
                        fail $"resize: expected 0 (the stored size) or {p.Crop}..4096 (at least crop), found {p.Resize}"
                    | Ok p when p.Mean.Length <> p.Channels || p.Std.Length <> p.Channels ->
                        fail
                            $"mean and std: expected {p.Channels} value(s) each (one per channel), found {p.Mean.Length} and {p.Std.Length}"
                    | Ok p when p.Std |> Array.exists (fun s -> not (s > 0.0) || Double.IsInfinity s) ->
                        fail $"""std: expected finite numbers > 0, found {String.Join(", ", p.Std)}"""
                    | Ok p when p.Mean |> Array.exists (fun m -> not (Double.IsFinite m)) ->
                        fail $"""mean: expected finite numbers, found {String.Join(", ", p.Mean)}"""
                    | Ok p when p.Output < 0 ->
                        fail $"output: expected the index of an output (0 or more), found {p.Output}"
                    | Ok p -> Ok p
        with
        | :? JsonException as e -> fail $"not valid JSON ({e.Message})"
        | :? IOException as e -> fail e.Message
        | :? UnauthorizedAccessException as e -> fail $"cannot be read: {e.Message}"

/// The text that identifies a preparation (part of the backbone's hash).
let private canonical (p: Preprocessing) =
    let numbers (v: float[]) =
        String.Join(
            ",",
            v
            |> Array.map (fun x -> x.ToString("R", Globalization.CultureInfo.InvariantCulture))
        )

    $"resize={p.Resize};crop={p.Crop};channels={p.Channels};mean={numbers p.Mean};std={numbers p.Std};output={p.Output}"

/// A loaded backbone: the TorchScript module (eval mode, on its device), what it outputs and its identity.
type Backbone =
    {
        /// The model file as given.
        File: string
        /// SHA-256 of the model's bytes and its preparation: keys the embedding cache, recorded with the model.
        Hash: string
        Preprocessing: Preprocessing
        Module: jit.ScriptModule
        /// The embedding's width D.
        Dim: int
        Device: Device
    }

    interface IDisposable with
        member b.Dispose() = b.Module.Dispose()

/// The first line of an exception's message (libtorch's carry a C++ stack after it).
let private firstLine (e: exn) =
    let m = e.Message.Trim()
    let cut = m.IndexOfAny [| '\n'; '\r' |]
    if cut < 0 then m else m.Substring(0, cut).Trim()

/// The embedding among a module's outputs: a tensor (output 0), or the `index`-th of a tuple or list.
let private pick (index: int) (output: obj) : Result<Tensor, string> =
    let items =
        match output with
        | :? Tensor as t -> [| box t |]
        | :? (Tensor[]) as ts -> Array.map box ts
        | :? (obj[]) as os -> os
        | :? Runtime.CompilerServices.ITuple as t -> Array.init t.Length (fun i -> t[i])
        | null -> [||]
        | o -> [| o |]

    if index >= items.Length then
        Error $"output {index} was asked for (the preparation file's 'output'), but the model returns {items.Length}"
    else
        match items[index] with
        | :? Tensor as t -> Ok t
        | o ->
            let kind = if isNull o then "nothing" else o.GetType().Name
            Error $"output {index} is {kind}, expected a tensor"

/// The embedding rows of a model's output: N x D, or N x D x 1 x 1 (a pooled feature map) flattened.
let private rows (file: string) (n: int64) (t: Tensor) : Result<Tensor, string> =
    let shape = t.shape
    let text = String.Join(" x ", shape)

    if
        t.dtype <> ScalarType.Float32
        && t.dtype <> ScalarType.Float64
        && t.dtype <> ScalarType.Float16
    then
        Error $"the output is {t.dtype}, expected floating-point embeddings"
    elif shape.Length = 2 && shape[0] = n then
        Ok(t.to_type ScalarType.Float32)
    elif shape.Length = 4 && shape[0] = n && shape[2] = 1L && shape[3] = 1L then
        Ok((t.flatten 1L).to_type ScalarType.Float32)
    else
        Error
            $"the output for {n} images is {text} (rank {shape.Length}); expected N x D embeddings (rank 2, or N x D x 1 x 1)"

/// Loads and checks a backbone: a regular file that libtorch reads as TorchScript, that takes a batch of
/// images as its preparation describes, and whose chosen output is N x D. Each refusal names the file.
let load (device: Device) (file: string) : Result<Backbone, BackboneError> =
    let fail detail = Error { File = file; Detail = detail }

    match readPreprocessing file with
    | Error e -> Error e
    | Ok prep ->
        match Files.openRegular file with
        | Error e -> fail (DataError.message e)
        | Ok(handle, length) ->
            let hash =
                try
                    use stream = new FileStream(handle, FileAccess.Read, 1 <<< 20)
                    use sha = Security.Cryptography.SHA256.Create()
                    let model = sha.ComputeHash stream
                    let prepared = sha.ComputeHash(Encoding.UTF8.GetBytes(canonical prep))
                    Ok(Convert.ToHexString(Array.append model prepared).ToLowerInvariant())
                with
                | :? IOException
                | :? UnauthorizedAccessException as e -> Error $"cannot be read: {e.Message}"

            match hash with
            | Error detail -> fail detail
            | Ok _ when length = 0L -> fail "the file is empty (0 bytes); expected a TorchScript model"
            | Ok hash ->
                Device.guardCpu ()

                let loaded =
                    try
                        Ok(torch.jit.load (file, device.``type``, device.index))
                    with e ->
                        let hint =
                            if file.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) then
                                "; ONNX files are not read: export TorchScript instead (docs/backbones.md)"
                            else
                                ""

                        Error $"not a TorchScript model (the zip archive torch.jit.save writes): {firstLine e}{hint}"

                match loaded with
                | Error detail -> fail detail
                | Ok m ->
                    m.eval ()
                    let n = 2L

                    let probe =
                        use _noGrad = torch.no_grad ()
                        use _scope = torch.NewDisposeScope()

                        let input =
                            torch.zeros (
                                [| n; int64 prep.Channels; int64 prep.Crop; int64 prep.Crop |],
                                device = device
                            )

                        let output =
                            try
                                Ok(m.call (input))
                            with e ->
                                Error
                                    $"does not take a batch of images ({n} x {prep.Channels} x {prep.Crop} x {prep.Crop}, float32, as its preparation file says): {firstLine e}"

                        output
                        |> Result.bind (pick prep.Output)
                        |> Result.bind (rows file n)
                        |> Result.map (fun t -> int t.shape[1])

                    match probe with
                    | Ok dim when dim >= 1 ->
                        Ok
                            {
                                File = file
                                Hash = hash
                                Preprocessing = prep
                                Module = m
                                Dim = dim
                                Device = device
                            }
                    | Ok dim ->
                        m.Dispose()
                        fail $"the embedding has {dim} values; expected at least 1"
                    | Error detail ->
                        m.Dispose()
                        fail detail

/// The image options a folder is decoded with for a backbone: its resize (square, centre) and channels.
let imageOptions (p: Preprocessing) (given: ImageOptions) : ImageOptions =
    { given with
        Size = p.Resize
        Channels = p.Channels
    }

/// The embeddings of images n rows of `images` from `start` (normalised as the preparation says, on the backbone's
/// device): the centre crop, the forward pass, the chosen output as N x D float32 on the CPU; checked for its
/// width and for values that are not finite (`names` names an image in the message).
let internal embedRows (b: Backbone) (images: Tensors.ImageTensors) (names: int -> string) (start: int) (n: int) =
    let p = b.Preprocessing
    use _noGrad = torch.no_grad ()
    use _scope = torch.NewDisposeScope()
    let top = int64 ((images.Height - p.Crop) / 2)
    let left = int64 ((images.Width - p.Crop) / 2)

    let x =
        images.Slice(int64 start, int64 n).narrow(2L, top, int64 p.Crop).narrow(3L, left, int64 p.Crop)

    let out =
        try
            Ok(b.Module.call (x.contiguous ()))
        with e ->
            Error $"failed on images {start}..{start + n - 1}: {firstLine e}"

    match out |> Result.bind (pick p.Output) |> Result.bind (rows b.File (int64 n)) with
    | Error detail -> Error detail
    | Ok t when int t.shape[1] <> b.Dim ->
        Error $"the embedding's width changed from {b.Dim} to {t.shape[1]} on images {start}..{start + n - 1}"
    | Ok t ->
        let onCpu = t.cpu().contiguous()
        let values = onCpu.data<float32>().ToArray()

        match Array.tryFindIndex (fun v -> not (Single.IsFinite v)) values with
        | Some k -> Error $"its embedding of {names (start + k / b.Dim)} holds {values[k]}; expected finite values"
        | None -> Ok(onCpu.MoveToOuterDisposeScope(), values)

let private embeddingMagic = "WAALEMB1"B

/// The cache key of embedding a folder dataset's files with a backbone: every file's path, size and
/// modification time (as the decode cache) and the backbone's hash.
let private cacheKey (b: Backbone) (d: Dataset) =
    let text = StringBuilder()

    text.Append($"waal-embeddings/1|{b.Hash}|{d.Channels}x{d.Height}x{d.Width}|{d.Count}|")
    |> ignore

    for f in d.Files do
        let path = Path.GetFullPath(Path.Combine(d.Source, f))
        let info = FileInfo path

        text.Append(path).Append('|').Append(info.Length).Append('|').Append(info.LastWriteTimeUtc.Ticks).Append('\n')
        |> ignore

    use sha = Security.Cryptography.SHA256.Create()
    sha.ComputeHash(Encoding.UTF8.GetBytes(text.ToString())) |> Convert.ToHexString

/// Opens an embeddings file if it is one of `count` rows of `dim` values (else None).
let private openEmbeddings (path: string) (count: int) (dim: int) =
    match Files.openRegular path with
    | Error _ -> None
    | Ok(handle, length) ->
        let header = Array.zeroCreate<byte>(embeddingMagic.Length + 8)

        let valid =
            try
                RandomAccess.Read(handle, Span header, 0L) = header.Length
                && header[.. embeddingMagic.Length - 1] = embeddingMagic
                && BitConverter.ToInt32(header, 8) = dim
                && BitConverter.ToInt32(header, 12) = count
                && length = int64 header.Length + int64 count * int64 dim * 4L
            with
            | :? IOException
            | :? UnauthorizedAccessException -> false

        if valid then
            Some
                {
                    Path = path
                    Handle = handle
                    Offset = int64 header.Length
                    RowBytes = dim * 4
                    Rows = Array.init count id
                }
        else
            handle.Dispose()
            None

/// Images per forward pass of the backbone: about 4 million input values (27 images at 3 x 224 x 224; ResNet-18
/// ran at the same speed at 32 as at 55, with less memory for the activations).
let internal batchFor (p: Preprocessing) =
    max 1 (min 256 (4194304 / (p.Channels * p.Crop * p.Crop)))

/// Every image of `d` through the backbone a batch at a time (embedRows), each batch's embeddings and size given
/// to `take`, in order; stops at the first refusal.
let private eachBatch (b: Backbone) (d: Dataset) (take: Tensor -> float32[] -> int -> unit) =
    let p = b.Preprocessing
    use images = Tensors.ofDataset b.Device { Mean = p.Mean; Std = p.Std } d
    let batch = batchFor p

    let names i =
        if d.Files.Length > i then d.Files[i] else $"image {i + 1}"

    let rec go start =
        if start >= d.Count then
            Ok()
        else
            let n = min batch (d.Count - start)

            match embedRows b images names start n with
            | Error detail -> Error detail
            | Ok(t, values) ->
                take t values n
                go (start + n)

    go 0

/// Where a dataset's embeddings are, and whether they came from the cache.
type Embedded = { File: PixelFile; FromCache: bool }

/// Every image of `d` through the backbone, once: the rows of a float32 file (in the decode cache's folder, keyed
/// by the files and the backbone; without a cache, a temporary file deleted when closed). Reports each batch to
/// `sink` under `what`. A second call with the same files and backbone reads the file back.
let embed (b: Backbone) (sink: ProgressSink) (what: string) (d: Dataset) : Result<Embedded, BackboneError> =
    let p = b.Preprocessing

    let fail detail =
        Error { File = b.File; Detail = detail }

    let cached =
        if d.Files.Length = d.Count && d.Count > 0 then
            Folder.cacheFolder ()
            |> Option.map (fun dir -> Path.Combine(dir, cacheKey b d + ".f32"))
        else
            None

    match cached |> Option.bind (fun path -> openEmbeddings path d.Count b.Dim) with
    | Some file -> Ok { File = file; FromCache = true }
    | None when d.Channels <> p.Channels || d.Height < p.Crop || d.Width < p.Crop ->
        fail
            $"its input is {p.Channels} x {p.Crop} x {p.Crop} but {d.Source}'s images are {d.Channels} x {d.Height} x {d.Width}"
    | None ->
        let fill (stream: Stream) =
            stream.Write(embeddingMagic, 0, embeddingMagic.Length)
            stream.Write(BitConverter.GetBytes b.Dim, 0, 4)
            stream.Write(BitConverter.GetBytes d.Count, 0, 4)
            sink.Start what d.Count

            let result =
                eachBatch b d (fun t values n ->
                    t.Dispose()
                    stream.Write(Runtime.InteropServices.MemoryMarshal.AsBytes(ReadOnlySpan values))
                    sink.Advance n)

            sink.Finish()
            result

        // Into the cache (AtomicFile: renamed into place once whole), or without a cache into a temporary file
        // removed as soon as it is open (the open handle keeps the rows readable until the dataset is closed).
        let outcome =
            try
                match cached with
                | Some path -> Ok(path, AtomicFile.writeWith path fill)
                | None ->
                    let path =
                        Path.Combine(Path.GetTempPath(), $"waal-embeddings-{Guid.NewGuid():N}.f32")

                    let written =
                        try
                            use stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write)
                            fill stream
                        with _ ->
                            (try
                                File.Delete path
                             with _ ->
                                 ())

                            reraise ()

                    if Result.isError written then
                        File.Delete path

                    Ok(path, written)
            with
            | :? IOException
            | :? UnauthorizedAccessException as e ->
                let where = cached |> Option.defaultValue (Path.GetTempPath())
                Error $"{where}: the embeddings cannot be written ({e.Message})"

        match outcome with
        | Error detail -> fail detail
        | Ok(_, Error detail) -> fail detail
        | Ok(final, Ok()) ->
            match openEmbeddings final d.Count b.Dim with
            | None -> fail $"{final}: the embeddings just written cannot be read back"
            | Some file ->
                if cached.IsNone then
                    File.Delete final

                Ok { File = file; FromCache = false }

/// Every image of an in-memory dataset through the backbone: an N x D float32 tensor on the CPU (prediction).
let embedInMemory (b: Backbone) (d: Dataset) : Result<Tensor, string> =
    let parts = Collections.Generic.List<Tensor>()

    try
        eachBatch b d (fun t _ _ -> parts.Add t)
        |> Result.map (fun () ->
            if parts.Count = 0 then
                torch.zeros (0L, int64 b.Dim)
            else
                torch.cat (parts.ToArray(), 0L))
    finally
        for t in parts do
            t.Dispose()

/// What a run and a model record about their backbone: the model file (a path in a run; a name inside a model
/// folder), its hash with its preparation, the embedding's width and the head's input normalisation (per
/// dimension, computed on the pool's embeddings).
type Recorded =
    {
        File: string
        Hash: string
        Dim: int
        Normalisation: Normalisation
    }

/// The record as JSON (backbone.json in a run folder; "backbone" in model.json).
let writeRecorded (w: Utf8JsonWriter) (r: Recorded) =
    w.WriteStartObject()
    w.WriteString("file", r.File)
    w.WriteString("sha256", r.Hash)
    w.WriteNumber("dim", r.Dim)
    w.WriteStartObject "normalisation"

    for name, values in [ "mean", r.Normalisation.Mean; "std", r.Normalisation.Std ] do
        w.WriteStartArray name

        for v in values do
            w.WriteNumberValue v

        w.WriteEndArray()

    w.WriteEndObject()
    w.WriteEndObject()

/// The record read back from its JSON object; a missing, mistyped or impossible field is named.
let readRecorded (e: JsonElement) : Result<Recorded, string> =
    try
        let numbers (name: string) =
            e.GetProperty("normalisation").GetProperty(name).EnumerateArray()
            |> Seq.map (fun v -> v.GetDouble())
            |> Array.ofSeq

        let r =
            {
                File = e.GetProperty("file").GetString()
                Hash = e.GetProperty("sha256").GetString()
                Dim = e.GetProperty("dim").GetInt32()
                Normalisation =
                    {
                        Mean = numbers "mean"
                        Std = numbers "std"
                    }
            }

        if String.IsNullOrEmpty r.File || String.IsNullOrEmpty r.Hash then
            Error "backbone: file and sha256 must be given"
        elif r.Dim < 1 then
            Error $"backbone.dim: expected at least 1, found {r.Dim}"
        elif r.Normalisation.Mean.Length <> r.Dim || r.Normalisation.Std.Length <> r.Dim then
            Error $"backbone.normalisation: expected {r.Dim} means and deviations (one per dimension)"
        elif
            r.Normalisation.Std
            |> Array.exists (fun v -> not (v > 0.0) || Double.IsInfinity v)
            || r.Normalisation.Mean |> Array.exists (fun v -> not (Double.IsFinite v))
        then
            Error "backbone.normalisation: expected finite means and deviations > 0"
        else
            Ok r
    with
    | :? Collections.Generic.KeyNotFoundException as x -> Error $"backbone: a field is missing ({x.Message})"
    | :? InvalidOperationException as x -> Error $"backbone: a field has the wrong type ({x.Message})"
    | :? FormatException as x -> Error $"backbone: a number is out of range ({x.Message})"

/// A preparation as the JSON file a backbone carries beside it (a model folder writes it for its copy).
let preprocessingJson (p: Preprocessing) =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
        w.WriteStartObject()
        w.WriteNumber("resize", p.Resize)
        w.WriteNumber("crop", p.Crop)
        w.WriteNumber("channels", p.Channels)

        for name, values in [ "mean", p.Mean; "std", p.Std ] do
            w.WriteStartArray name

            for v in values do
                w.WriteNumberValue v

            w.WriteEndArray()

        w.WriteNumber("output", p.Output)
        w.WriteEndObject()

    stream.ToArray()

/// Per-dimension mean and deviation of the embeddings (the head's input normalisation, computed on the pool as
/// a folder's pixel normalisation is); a dimension that never varies gets deviation 1.
let statistics (file: PixelFile) : Normalisation =
    let dim = file.RowBytes / 4
    let sum = Array.zeroCreate<float> dim
    let squares = Array.zeroCreate<float> dim
    let chunk = max 1 (1048576 / dim)
    let values = Array.zeroCreate<float32>(chunk * dim)
    let count = file.Rows.Length
    let mutable start = 0

    while start < count do
        let n = min chunk (count - start)
        let span = Span(values, 0, n * dim)
        file.Read(Array.init n (fun k -> start + k), Runtime.InteropServices.MemoryMarshal.AsBytes span)

        for k in 0 .. n * dim - 1 do
            let v = float values[k]
            sum[k % dim] <- sum[k % dim] + v
            squares[k % dim] <- squares[k % dim] + v * v

        start <- start + n

    let n = float (max 1 count)
    let mean = sum |> Array.map (fun s -> s / n)

    let std =
        Array.init dim (fun j ->
            let variance = max 0.0 (squares[j] / n - mean[j] * mean[j])
            let s = sqrt variance
            if s > 1e-6 then s else 1.0)

    { Mean = mean; Std = std }
