/// Reading files defensively: every failure becomes a DataError naming the file, and no buffer is ever
/// allocated for more bytes than are really there (a header's claim is trusted only as an upper bound).
module internal Waal.Data.Binary

open System
open System.IO
open System.IO.Compression

/// Bytes are read in chunks of this size, so memory follows the data that exists, not the data claimed.
let private chunkSize = 1 <<< 20

/// Checks that `path` is a regular, non-empty file within Files.Limits.datasetBytes and returns its length.
let checkFile (path: string) : Result<int64, DataError> =
    Files.openCapped "a dataset file" Files.Limits.datasetBytes path
    |> Result.bind (fun (stream, length) ->
        stream.Dispose()
        if length = 0L then Error(Empty path) else Ok length)

/// Runs `f` on the open file: a regular file (Files.openRegular: a FIFO or a device is refused before it is read),
/// not empty, of at most Files.Limits.datasetBytes; I/O failures become Unreadable, corrupt compressed data
/// Malformed.
let withFile (path: string) (f: Stream -> Result<'a, DataError>) : Result<'a, DataError> =
    Files.openCapped "a dataset file" Files.Limits.datasetBytes path
    |> Result.bind (fun (stream, length) ->
        use stream = stream

        if length = 0L then
            Error(Empty path)
        else
            try
                f stream
            with
            // Corrupt gzip or zlib data can surface on any read of a decompressing stream.
            | :? InvalidDataException as e -> Error(Malformed(path, 0L, $"corrupt compressed data ({e.Message})"))
            | :? UnauthorizedAccessException as e -> Error(Unreadable(path, e.Message))
            | :? IOException as e -> Error(Unreadable(path, e.Message)))

/// Reads up to `count` bytes; returns fewer only at the end of the stream. Grows in chunks, so a claim larger
/// than the data never allocates more than about the data. Corrupt compressed data is reported as Malformed
/// at `offset` (the position the read started from).
let readUpTo (path: string) (offset: int64) (stream: Stream) (count: int64) : Result<byte[], DataError> =
    try
        if count <= int64 chunkSize then
            let buffer = Array.zeroCreate (int count)
            let read = stream.ReadAtLeast(buffer.AsSpan(), buffer.Length, false)
            Ok(if read = buffer.Length then buffer else buffer[.. read - 1])
        else
            let chunks = ResizeArray<byte[]>()
            let mutable total = 0L
            let mutable ended = false

            while not ended && total < count do
                let want = int (min (int64 chunkSize) (count - total))
                let chunk = Array.zeroCreate want
                let read = stream.ReadAtLeast(chunk.AsSpan(), want, false)
                chunks.Add(if read = want then chunk else chunk[.. read - 1])
                total <- total + int64 read
                ended <- read < want

            if total > int64 Array.MaxLength then
                Error(Unsupported(path, "size", $"{total} bytes do not fit in one array"))
            else
                let all = Array.zeroCreate (int total)
                let mutable at = 0

                for c in chunks do
                    Buffer.BlockCopy(c, 0, all, at, c.Length)
                    at <- at + c.Length

                Ok all
    with :? InvalidDataException as e ->
        Error(Malformed(path, offset, $"corrupt compressed data ({e.Message})"))

/// True when at least one more byte follows.
let hasMore (stream: Stream) =
    let one = Array.zeroCreate 1
    stream.Read(one, 0, 1) = 1

/// True when the bytes start with the gzip signature 1f 8b.
let isGzip (head: ReadOnlySpan<byte>) =
    head.Length >= 2 && head[0] = 0x1fuy && head[1] = 0x8buy

/// Opens a file, transparently decompressing gzip; returns the stream, whether it is compressed and, for a raw
/// file, its length (so claims can be checked before reading).
let openMaybeGzip (path: string) (f: Stream -> bool -> int64 option -> Result<'a, DataError>) =
    withFile path (fun raw ->
        let head = Array.zeroCreate 2
        let n = raw.ReadAtLeast(head.AsSpan(), 2, false)
        raw.Position <- 0L

        if isGzip (ReadOnlySpan(head, 0, n)) then
            use gz = new GZipStream(raw, CompressionMode.Decompress, leaveOpen = true)
            f gz true None
        else
            f raw false (Some raw.Length))

/// A big-endian 32-bit unsigned integer.
let bigEndianUInt32 (b: byte[]) (at: int) =
    (uint32 b[at] <<< 24)
    ||| (uint32 b[at + 1] <<< 16)
    ||| (uint32 b[at + 2] <<< 8)
    ||| uint32 b[at + 3]

/// Hex of up to `count` bytes, for messages.
let hex (b: byte[]) (at: int) (count: int) =
    if at >= b.Length then
        "end of data"
    else
        b[at .. min (b.Length - 1) (at + count - 1)]
        |> Array.map (fun x -> x.ToString "x2")
        |> String.concat " "
