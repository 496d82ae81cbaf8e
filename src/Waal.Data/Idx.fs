/// The IDX format of MNIST and Fashion-MNIST, raw or gzip-compressed: a 4-byte magic (0, 0, type code,
/// number of dimensions), the dimensions as big-endian 32-bit integers, then the unsigned bytes.
module internal Waal.Data.Idx

open System
open System.IO
open Waal.Data.Binary

/// The unsigned-byte type code; the only element type these datasets use.
[<Literal>]
let private UnsignedByte = 0x08uy

let private typeName code =
    match code with
    | 0x08uy -> "unsigned byte"
    | 0x09uy -> "signed byte"
    | 0x0Buy -> "16-bit integer"
    | 0x0Cuy -> "32-bit integer"
    | 0x0Duy -> "32-bit float"
    | 0x0Euy -> "64-bit float"
    | other -> $"unknown type 0x{other:x2}"

/// An IDX array: its dimensions and its bytes.
type IdxArray =
    {
        Dimensions: int[]
        Data: byte[]
        /// True when the file was gzip-compressed (offsets in messages then count decompressed bytes).
        Compressed: bool
    }

let private where compressed =
    if compressed then " (in the decompressed data)" else ""

/// Reads an IDX array of unsigned bytes with `rank` dimensions. The header is checked, and its claimed size
/// compared with the file size (raw files) before anything is allocated for the data; gzip data is read in
/// chunks, so a false claim costs no more memory than the data that is really there.
let read (rank: int) (path: string) : Result<IdxArray, DataError> =
    openMaybeGzip path (fun stream compressed rawLength ->
        let suffix = where compressed
        let dimensions = if rank = 1 then "1 dimension" else $"{rank} dimensions"
        let expectedMagic = $"IDX magic 00 00 08 {rank:x2} (unsigned bytes, {dimensions})"

        readUpTo path 0L stream 4L
        |> Result.bind (fun magic ->
            if magic.Length < 4 then
                Error(Truncated(path, int64 magic.Length, $"a 4-byte IDX magic{suffix}", $"{magic.Length} bytes"))
            elif magic[0] <> 0uy || magic[1] <> 0uy then
                Error(BadMagic(path, 0L, expectedMagic, hex magic 0 4))
            elif magic[2] <> UnsignedByte then
                Error(
                    Unsupported(
                        path,
                        "element type (byte 2)",
                        $"{typeName magic[2]} data; expected unsigned bytes (0x08)"
                    )
                )
            elif int magic[3] <> rank then
                Error(
                    BadMagic(path, 3L, $"{dimensions} ({expectedMagic})", $"{magic[3]} dimensions ({hex magic 0 4})")
                )
            else
                readUpTo path 4L stream (int64 (4 * rank))
                |> Result.bind (fun header ->
                    if header.Length < 4 * rank then
                        Error(
                            Truncated(
                                path,
                                4L + int64 header.Length,
                                $"{rank} big-endian dimension sizes ({4 * rank} bytes) after the magic{suffix}",
                                $"{header.Length} bytes"
                            )
                        )
                    else
                        let dims = Array.init rank (fun i -> bigEndianUInt32 header (4 * i))
                        let headerSize = 4L + int64 (4 * rank)

                        match Array.tryFindIndex (fun d -> d = 0u || d > uint32 Int32.MaxValue) dims with
                        | Some i ->
                            Error(
                                SizeMismatch(
                                    path,
                                    $"dimension {i} (byte {4 + 4 * i})",
                                    "a size between 1 and 2^31-1",
                                    string dims[i]
                                )
                            )
                        | None ->
                            let claimed = dims |> Array.fold (fun acc d -> acc * decimal d) 1m
                            let dimsText = dims |> Array.map string |> String.concat " x "

                            match rawLength with
                            | Some length when decimal (length - headerSize) < claimed ->
                                Error(
                                    Truncated(
                                        path,
                                        length,
                                        $"{claimed} data bytes for {dimsText}",
                                        $"{length - headerSize} bytes after the {headerSize}-byte header"
                                    )
                                )
                            | Some length when decimal (length - headerSize) > claimed ->
                                Error(
                                    SizeMismatch(
                                        path,
                                        "file size",
                                        $"{headerSize + int64 claimed} bytes ({headerSize}-byte header + {dimsText})",
                                        $"{length} bytes"
                                    )
                                )
                            | _ ->
                                // Gzip data is read up to the claim (or the largest array) and judged by what came.
                                readUpTo path headerSize stream (int64 (min claimed (decimal Array.MaxLength)))
                                |> Result.bind (fun data ->
                                    if decimal data.Length < claimed && data.Length < Array.MaxLength then
                                        Error(
                                            Truncated(
                                                path,
                                                headerSize + int64 data.Length,
                                                $"{claimed} data bytes for {dimsText}{suffix}",
                                                $"{data.Length} bytes"
                                            )
                                        )
                                    elif decimal data.Length < claimed then
                                        Error(
                                            Unsupported(
                                                path,
                                                "dimensions",
                                                $"{dimsText} = {claimed} bytes do not fit in one array"
                                            )
                                        )
                                    elif compressed && hasMore stream then
                                        Error(
                                            SizeMismatch(
                                                path,
                                                "decompressed size",
                                                $"{headerSize + int64 claimed} bytes ({dimsText})",
                                                "more data after that"
                                            )
                                        )
                                    else
                                        Ok
                                            {
                                                Dimensions = dims |> Array.map int
                                                Data = data
                                                Compressed = compressed
                                            })))
        |> Result.mapError (fun e ->
            match e with
            | Malformed(f, offset, detail) when compressed -> Malformed(f, offset, $"{detail}{suffix}")
            | other -> other))

/// Reads an images file (3 dimensions: N x H x W) as N x 1 x H x W.
let readImages (path: string) = read 3 path

/// Reads a labels file (1 dimension) and checks each label is below `classes`.
let readLabels (classes: int) (path: string) : Result<int[], DataError> =
    read 1 path
    |> Result.bind (fun a ->
        match Array.tryFindIndex (fun b -> int b >= classes) a.Data with
        | Some i ->
            Error(LabelOutOfRange(path, 8L + int64 i, int64 a.Data[i], $"0..{classes - 1}{where a.Compressed}"))
        | None -> Ok(a.Data |> Array.map int))

/// The labels file that goes with an images file by the standard names: `X-images-idx3-ubyte[.gz]` ->
/// `X-labels-idx1-ubyte[.gz]`, also `X-images.idx3-ubyte`; the first candidate that exists, else the first.
let labelsBeside (imagesPath: string) =
    let dir = Path.GetDirectoryName(Path.GetFullPath imagesPath)
    let name = Path.GetFileName imagesPath
    let swapped = name.Replace("images", "labels").Replace("idx3", "idx1")

    let stem =
        if swapped.EndsWith ".gz" then
            swapped[.. swapped.Length - 4]
        else
            swapped

    [ swapped; stem; stem + ".gz" ]
    |> List.distinct
    |> List.map (fun n -> Path.Combine(dir, n))
    |> fun candidates ->
        candidates
        |> List.tryFind File.Exists
        |> Option.defaultValue (List.head candidates)

/// Loads images and labels as a dataset of `classes` classes (10 for MNIST and Fashion-MNIST).
let load (classes: int) (imagesPath: string) (labelsPath: string) : Result<Dataset, DataError> =
    readImages imagesPath
    |> Result.bind (fun images ->
        readLabels classes labelsPath
        |> Result.bind (fun labels ->
            let n = images.Dimensions[0]

            if labels.Length <> n then
                Error(CountMismatch(labelsPath, n, labels.Length))
            else
                Dataset.create imagesPath images.Data labels 1 images.Dimensions[1] images.Dimensions[2] classes))
