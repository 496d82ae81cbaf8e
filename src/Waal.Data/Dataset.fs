namespace Waal.Data

/// Why a data file was refused. Each case names the file, where in it (a byte offset or a field), what was
/// expected and what was found. Offsets in gzip or zlib data count in the decompressed bytes, and say so.
type DataError =
    /// No file or folder at the path.
    | Missing of file: string
    /// A folder where a file was expected (or the reverse).
    | WrongKind of file: string * expected: string
    /// The file exists but cannot be read (permissions, I/O).
    | Unreadable of file: string * reason: string
    /// A file of zero bytes.
    | Empty of file: string
    /// The bytes at `offset` are not the format's signature.
    | BadMagic of file: string * offset: int64 * expected: string * found: string
    /// The data ends before what the header (or record structure) requires.
    | Truncated of file: string * offset: int64 * expected: string * found: string
    /// The header's dimensions disagree with the data that is there (bytes left over, impossible shapes).
    | SizeMismatch of file: string * field: string * expected: string * found: string
    /// Images and labels disagree on how many items there are.
    | CountMismatch of file: string * images: int * labels: int
    /// A label outside the dataset's classes.
    | LabelOutOfRange of file: string * offset: int64 * label: int64 * expected: string
    /// A well-formed file that uses something this reader does not support (a MAT class, a v7.3 file).
    | Unsupported of file: string * field: string * detail: string
    /// Anything else wrong with the structure at `offset`.
    | Malformed of file: string * offset: int64 * detail: string
    /// A folder that should hold images and holds none.
    | NoImages of folder: string * expected: string
    /// A path that cannot be used: a name that is not UTF-8, a symbolic link that loops.
    | BadPath of file: string * detail: string
    /// Not a regular file once links are resolved: a FIFO, a socket, a device (such as /dev/zero). Only regular
    /// files are ever read, so nothing waits for a writer or reads without end.
    | NotRegular of file: string * found: string
    /// Larger than the cap stated for what it was read as (Files.Limits), refused before it is read.
    | TooLarge of file: string * what: string * size: string * limit: string

/// Stable codes and one-line messages for data errors.
module DataError =
    /// The error's stable code (documented in docs/reliability.md).
    let code (error: DataError) =
        match error with
        | Missing _ -> "DATA001"
        | WrongKind _ -> "DATA002"
        | Unreadable _ -> "DATA003"
        | Empty _ -> "DATA004"
        | BadMagic _ -> "DATA005"
        | Truncated _ -> "DATA006"
        | SizeMismatch _ -> "DATA007"
        | CountMismatch _ -> "DATA008"
        | LabelOutOfRange _ -> "DATA009"
        | Unsupported _ -> "DATA010"
        | Malformed _ -> "DATA011"
        | NoImages _ -> "DATA012"
        | BadPath _ -> "DATA013"
        | NotRegular _ -> "DATA014"
        | TooLarge _ -> "DATA015"

    /// The file the error is about.
    let file (error: DataError) =
        match error with
        | Missing f
        | WrongKind(f, _)
        | Unreadable(f, _)
        | Empty f
        | BadMagic(f, _, _, _)
        | Truncated(f, _, _, _)
        | SizeMismatch(f, _, _, _)
        | CountMismatch(f, _, _)
        | LabelOutOfRange(f, _, _, _)
        | Unsupported(f, _, _)
        | Malformed(f, _, _)
        | NoImages(f, _)
        | BadPath(f, _)
        | NotRegular(f, _)
        | TooLarge(f, _, _, _) -> f

    /// What went wrong, without the file name (which `file` gives).
    let message (error: DataError) =
        match error with
        | Missing _ -> "no such file or directory"
        | WrongKind(_, expected) -> $"expected {expected}"
        | Unreadable(_, reason) -> $"cannot be read: {reason}"
        | Empty _ -> "the file is empty (0 bytes)"
        | BadMagic(_, offset, expected, found) -> $"at byte {offset}: expected {expected}, found {found}"
        | Truncated(_, offset, expected, found) -> $"truncated at byte {offset}: expected {expected}, found {found}"
        | SizeMismatch(_, field, expected, found) -> $"{field}: expected {expected}, found {found}"
        | CountMismatch(_, images, labels) -> $"{images} images but {labels} labels; expected one label per image"
        | LabelOutOfRange(_, offset, label, expected) ->
            $"at byte {offset}: label {label} is out of range, expected {expected}"
        | Unsupported(_, field, detail) -> $"{field}: {detail}"
        | Malformed(_, offset, detail) -> $"at byte {offset}: {detail}"
        | NoImages(_, expected) -> $"holds no images; expected {expected}"
        | BadPath(_, detail) -> detail
        | NotRegular(_, found) -> $"expected a regular file, found {found}"
        | TooLarge(_, what, size, limit) -> $"{size}, larger than the {limit} allowed for {what}"

    /// `error CODE: file: message`, the line the CLI prints.
    let line (error: DataError) =
        $"error {code error}: {file error}: {message error}"

/// Pixels that stay in a file (a folder's decode cache) and are read a batch at a time, so a pool of any size
/// costs its labels and paths in memory, not its pixels: image i is the `Rows[i]`-th row of `RowBytes` bytes
/// after `Offset`. The handle stays open for the dataset's life (a replaced or deleted file is still read).
type PixelFile =
    {
        Path: string
        Handle: Microsoft.Win32.SafeHandles.SafeFileHandle
        Offset: int64
        RowBytes: int
        Rows: int[]
    }

    /// Reads the rows of items `items` (in that order) into `dest`, one after the other; runs of consecutive
    /// file rows are read with one call.
    member f.Read(items: int[], dest: System.Span<byte>) =
        let mutable k = 0

        while k < items.Length do
            let first = f.Rows[items[k]]
            let mutable run = 1

            while k + run < items.Length && f.Rows[items[k + run]] = first + run do
                run <- run + 1

            let target = dest.Slice(k * f.RowBytes, run * f.RowBytes)
            let at = f.Offset + int64 first * int64 f.RowBytes
            let mutable got = 0

            while got < target.Length do
                let n = System.IO.RandomAccess.Read(f.Handle, target.Slice got, at + int64 got)

                if n <= 0 then
                    raise (
                        System.IO.IOException $"{f.Path}: the decode cache ended early (row {first + got / f.RowBytes})"
                    )

                got <- got + n

            k <- k + run

/// A labelled image dataset held as raw bytes: N images of C x H x W unsigned bytes in NCHW order, one label in
/// 0 .. Classes-1 per image. The class count belongs to the dataset, never to a subset of it.
type Dataset =
    {
        /// N x C x H x W bytes, row-major (NCHW); empty when the pixels are `Stored` in a file.
        Images: byte[]
        /// Where the pixels are when not in `Images` (folder datasets read from their decode cache).
        Stored: PixelFile option
        /// One label per image, each in 0 .. Classes-1.
        Labels: int[]
        Count: int
        Channels: int
        Height: int
        Width: int
        Classes: int
        /// Where the data came from (a file or a folder), for messages.
        Source: string
        /// One name per class (index = label).
        ClassNames: string[]
        /// One path per image, relative to the dataset's folder (with '/' separators), when the images are
        /// files; empty for datasets stored in one file.
        Files: string[]
    }

    /// The number of bytes of one image.
    member this.ImageSize = this.Channels * this.Height * this.Width

/// Building and summarising datasets.
module Dataset =
    /// A dataset, after checking that the arrays agree with the shape; the messages name `source`.
    let create source (images: byte[]) (labels: int[]) channels height width classes =
        let count = labels.Length
        let size = int64 channels * int64 height * int64 width

        if channels < 1 || height < 1 || width < 1 then
            Error(SizeMismatch(source, "shape", "C, H, W >= 1", $"{channels}x{height}x{width}"))
        elif int64 images.Length <> int64 count * size then
            Error(CountMismatch(source, (if size = 0L then 0 else int (int64 images.Length / size)), count))
        else
            match Array.tryFindIndex (fun l -> l < 0 || l >= classes) labels with
            | Some i -> Error(LabelOutOfRange(source, int64 i, int64 labels[i], $"0..{classes - 1}"))
            | None ->
                Ok
                    {
                        Images = images
                        Labels = labels
                        Count = count
                        Channels = channels
                        Height = height
                        Width = width
                        Classes = classes
                        Source = source
                        ClassNames = Array.init classes string
                        Files = [||]
                        Stored = None
                    }

    /// A dataset whose pixels stay in a file (`stored.Rows` gives one row per label).
    let createStored source (stored: PixelFile) (labels: int[]) channels height width classes =
        if stored.Rows.Length <> labels.Length then
            Error(CountMismatch(source, stored.Rows.Length, labels.Length))
        elif stored.RowBytes <> channels * height * width then
            Error(SizeMismatch(source, "row size", $"{channels * height * width} bytes", $"{stored.RowBytes}"))
        else
            create source [||] [||] channels height width classes
            |> Result.bind (fun empty ->
                match Array.tryFindIndex (fun l -> l < 0 || l >= classes) labels with
                | Some i -> Error(LabelOutOfRange(source, int64 i, int64 labels[i], $"0..{classes - 1}"))
                | None ->
                    Ok
                        { empty with
                            Labels = labels
                            Count = labels.Length
                            Stored = Some stored
                        })

    /// The bytes of items `items` (in that order), wherever the pixels are.
    let rows (items: int[]) (data: Dataset) : byte[] =
        let size = data.ImageSize
        let out = Array.zeroCreate<byte>(items.Length * size)

        match data.Stored with
        | Some f -> f.Read(items, System.Span out)
        | None ->
            items
            |> Array.iteri (fun j i -> Array.blit data.Images (i * size) out (j * size) size)

        out

    /// Every image's bytes, N x C x H x W (read from the file for a stored dataset).
    let pixels (data: Dataset) =
        match data.Stored with
        | Some _ -> rows (Array.init data.Count id) data
        | None -> data.Images

    /// How many images each class has (index = class).
    let classCounts (data: Dataset) =
        let counts = Array.zeroCreate data.Classes

        for l in data.Labels do
            counts[l] <- counts[l] + 1

        counts

    /// The first `count` images (the reference keeps the first 50,000 training images as the pool).
    let take (count: int) (data: Dataset) =
        let n = max 0 (min count data.Count)

        { data with
            Images =
                (if data.Stored.IsSome then
                     [||]
                 else
                     data.Images[.. n * data.ImageSize - 1])
            Stored = data.Stored |> Option.map (fun f -> { f with Rows = f.Rows[.. n - 1] })
            Labels = data.Labels[.. n - 1]
            Count = n
            Files = if data.Files.Length = 0 then [||] else data.Files[.. n - 1]
        }

    /// The images at `indices`, in that order.
    let select (indices: int[]) (data: Dataset) =
        { data with
            Images = (if data.Stored.IsSome then [||] else rows indices data)
            Stored =
                data.Stored
                |> Option.map (fun f ->
                    { f with
                        Rows = indices |> Array.map (fun i -> f.Rows[i])
                    })
            Labels = indices |> Array.map (fun i -> data.Labels[i])
            Count = indices.Length
            Files =
                if data.Files.Length = 0 then
                    [||]
                else
                    indices |> Array.map (fun i -> data.Files[i])
        }

    /// Each image `copies` times, every copy with Gaussian noise of standard deviation `noise` (a fraction of
    /// the pixel range) added and rounded back to a byte: Kirsch et al.'s Repeated-MNIST. Item c x N + i is copy c
    /// of image i, with image i's label and file. The noise comes from `key`'s stream, copy after copy, so the
    /// same key gives the same bytes. Only for pixels held in memory.
    let repeat (key: Waal.Core.Rng.Key) (copies: int) (noise: float) (data: Dataset) =
        if copies < 1 then
            invalidArg (nameof copies) $"expected copies >= 1, found {copies}"

        if copies = 1 then
            data
        elif data.Stored.IsSome then
            invalidArg (nameof data) $"{data.Source}: a repeated pool needs its pixels in memory"
        else
            let n = data.Images.Length
            let images = Array.zeroCreate<byte>(n * copies)
            let next = Waal.Core.Rng.gaussians key
            let scale = noise * 255.0

            for c in 0 .. copies - 1 do
                for j in 0 .. n - 1 do
                    let v = float data.Images[j] + scale * next ()
                    images[c * n + j] <- byte (System.Math.Clamp(System.Math.Round v, 0.0, 255.0))

            { data with
                Images = images
                Labels = Array.init (data.Count * copies) (fun i -> data.Labels[i % data.Count])
                Count = data.Count * copies
                Files =
                    if data.Files.Length = 0 then
                        [||]
                    else
                        Array.init (data.Count * copies) (fun i -> data.Files[i % data.Count])
            }

    /// The same dataset with its class names (one per class).
    let withClassNames (names: string[]) (data: Dataset) =
        if names.Length <> data.Classes then
            invalidArg (nameof names) $"{names.Length} class names for {data.Classes} classes"

        { data with ClassNames = names }

    /// A name for item i: its file when it has one, else `#i`.
    let itemName (data: Dataset) (i: int) =
        if data.Files.Length > 0 then data.Files[i] else $"#{i}"

    /// Concatenates datasets of the same shape and classes (CIFAR-10's five training batches).
    let concat (source: string) (parts: Dataset list) =
        match parts with
        | [] -> Error(Missing source)
        | first :: _ ->
            match
                parts
                |> List.tryFind (fun p ->
                    (p.Channels, p.Height, p.Width, p.Classes)
                    <> (first.Channels, first.Height, first.Width, first.Classes))
            with
            | Some odd ->
                Error(
                    SizeMismatch(
                        odd.Source,
                        "shape",
                        $"{first.Channels}x{first.Height}x{first.Width}",
                        $"{odd.Channels}x{odd.Height}x{odd.Width}"
                    )
                )
            | None ->
                create
                    source
                    (parts |> List.map pixels |> Array.concat)
                    (parts |> List.map (fun p -> p.Labels) |> Array.concat)
                    first.Channels
                    first.Height
                    first.Width
                    first.Classes

/// Per-channel mean and standard deviation (of pixel/255) used to normalise a dataset's images.
type Normalisation = { Mean: float[]; Std: float[] }

/// The reference normalisation constants (docs/method.md).
module Normalisation =
    /// Fashion-MNIST: the reference reuses MNIST's 0.1307 / 0.3081.
    let fashionMnist =
        {
            Mean = [| 0.1307 |]
            Std = [| 0.3081 |]
        }

    /// SVHN.
    let svhn =
        {
            Mean = [| 0.4377; 0.4438; 0.4728 |]
            Std = [| 0.1980; 0.2010; 0.1970 |]
        }

    /// CIFAR-10.
    let cifar10 =
        {
            Mean = [| 0.4914; 0.4822; 0.4465 |]
            Std = [| 0.2470; 0.2435; 0.2616 |]
        }

    /// The per-channel mean and (population) standard deviation of pixel/255 over every image of `data`; a
    /// channel that never varies gets a deviation of 1 (so normalising only centres it).
    let compute (data: Dataset) =
        let plane = data.Height * data.Width
        let sums = Array.zeroCreate<float> data.Channels
        let squares = Array.zeroCreate<float> data.Channels

        // A chunk of images at a time (a stored dataset is read from its file); the sums are added in image
        // order either way, so the result does not depend on where the pixels are.
        let chunk = 4096

        for first in 0..chunk .. data.Count - 1 do
            let n = min chunk (data.Count - first)

            let bytes, origin =
                match data.Stored with
                | Some _ -> Dataset.rows (Array.init n (fun k -> first + k)) data, 0
                | None -> data.Images, first * data.ImageSize

            for k in 0 .. n - 1 do
                for c in 0 .. data.Channels - 1 do
                    let start = origin + (k * data.Channels + c) * plane
                    let mutable s = 0L
                    let mutable q = 0L

                    for i in start .. start + plane - 1 do
                        let v = int64 bytes[i]
                        s <- s + v
                        q <- q + v * v

                    sums[c] <- sums[c] + float s
                    squares[c] <- squares[c] + float q

        let count = float data.Count * float plane

        let mean =
            Array.init data.Channels (fun c -> if count = 0.0 then 0.0 else sums[c] / count / 255.0)

        let std =
            Array.init data.Channels (fun c ->
                if count = 0.0 then
                    1.0
                else
                    let m = sums[c] / count
                    let variance = max 0.0 (squares[c] / count - m * m)
                    let sd = sqrt variance / 255.0
                    if sd < 1e-6 then 1.0 else sd)

        { Mean = mean; Std = std }
