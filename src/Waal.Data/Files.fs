/// Files as this project reads them, in one place: only regular files (after links are resolved) are opened, a
/// FIFO, socket or device is refused by name before anything waits on it or reads from it, and nothing is read
/// past a cap stated for what the file is read as (`Limits`). Also where a path really leads, for the check that
/// a command never writes over what it reads.
module Waal.Data.Files

open System
open System.Globalization
open System.IO
open System.Runtime.InteropServices
open System.Text
open Microsoft.Win32.SafeHandles

/// The caps. A file over its cap is refused by name (DATA015) before a byte of it is read; README and
/// docs/reliability.md state them.
[<RequireQualifiedAccess>]
module Limits =
    let private mebibytes (n: int64) = n * 1024L * 1024L

    /// An image file (PNG, JPEG, BMP, WebP).
    let imageBytes = mebibytes 256L

    /// The pixels of one image, read from its header before anything is decoded: 50 megapixels (8160 x 6120, a
    /// phone's full-resolution photo). An image's decoding holds about 8 bytes per pixel, so one at the cap
    /// costs about 400 MB while it is decoded.
    let imagePixels = 50_000_000L

    /// A document waal writes and reads back (spec.json, progress.json, dataset.json, model.json, a labelling
    /// session's files) or one a user gives (a Label Studio export, a CSV of known labels).
    let documentBytes = mebibytes 256L

    /// A short text: a file of class names, checkpoint/latest, a lock's process id.
    let shortTextBytes = mebibytes 1L

    /// A weights file of a checkpoint or a model folder (VGG16-BN's is about 60 MB).
    let weightsBytes = mebibytes 1024L

    /// A dataset file of the IDX, CIFAR-10 and SVHN readers (the largest official one, SVHN's extra_32x32.mat,
    /// is 1.3 GB).
    let datasetBytes = mebibytes 4096L

/// A size for messages: "1,073,741,824 bytes (1 GiB)".
let internal sizeText (bytes: int64) =
    let exact = bytes.ToString("N0", CultureInfo.InvariantCulture)

    let scaled =
        [ 1L <<< 30, "GiB"; 1L <<< 20, "MiB"; 1L <<< 10, "KiB" ]
        |> List.tryFind (fun (unit, _) -> bytes >= unit)
        |> Option.map (fun (unit, name) ->
            let v = float bytes / float unit
            $""" ({v.ToString("0.#", CultureInfo.InvariantCulture)} {name})""")
        |> Option.defaultValue ""

    $"{exact} bytes{scaled}"

/// A cap for messages: "256 MiB".
let limitText (bytes: int64) =
    if bytes % (1L <<< 30) = 0L then $"{bytes >>> 30} GiB"
    elif bytes % (1L <<< 20) = 0L then $"{bytes >>> 20} MiB"
    else sizeText bytes

/// What a path is once links are resolved.
type Kind =
    | Regular of size: int64
    | Folder
    /// A FIFO, a socket, a character or block device, in words ("a FIFO (named pipe)").
    | Special of what: string
    | Absent

[<DllImport("libc", SetLastError = true, EntryPoint = "open")>]
extern int private nativeOpen(string path, int flags)

[<DllImport("libc", SetLastError = true, EntryPoint = "close")>]
extern int private nativeClose(int fd)

// statx's buffer has the same layout on every Linux architecture (unlike struct stat): stx_mode is the u16 at
// byte 28, stx_size the u64 at byte 40, 256 bytes in all.
[<DllImport("libc", SetLastError = true, EntryPoint = "statx")>]
extern int private nativeStatx(int dirfd, string path, int flags, uint32 mask, byte[] buffer)

[<DllImport("libc", SetLastError = true, EntryPoint = "realpath")>]
extern nativeint private nativeRealpath(string path, nativeint resolved)

[<DllImport("libc", EntryPoint = "free")>]
extern void private nativeFree(nativeint pointer)

// open(2) flags (the same numbers on x86-64 and arm64): O_NONBLOCK makes opening a FIFO return at once instead of
// waiting for a writer; O_NOCTTY keeps a terminal device from becoming the controlling terminal.
let private readOnlyNonBlocking = 0x0 ||| 0x100 ||| 0x800 ||| 0x80000
let private atCwd = -100
let private atEmptyPath = 0x1000
let private typeAndSize = 0x1u ||| 0x200u

let private errnoText (errno: int) = Marshal.GetPInvokeErrorMessage errno

let private describe (mode: int) =
    match mode &&& 0xF000 with
    | 0x8000 -> None
    | 0x4000 -> Some "a folder"
    | 0x1000 -> Some "a FIFO (named pipe)"
    | 0x2000 -> Some "a character device (such as /dev/zero)"
    | 0x6000 -> Some "a block device"
    | 0xC000 -> Some "a socket"
    | _ -> Some "a special file"

/// Whether the C library's statx and open are used (Linux); elsewhere .NET's own calls, which cannot tell a
/// FIFO from a file.
let private native = OperatingSystem.IsLinux()

/// (mode, size) of an open descriptor or a path (links followed), or the errno.
let private statx (dirfd: int) (path: string) (flags: int) =
    let buffer = Array.zeroCreate<byte> 256

    if nativeStatx (dirfd, path, flags, typeAndSize, buffer) = 0 then
        Ok(int (BitConverter.ToUInt16(buffer, 28)), BitConverter.ToInt64(buffer, 40))
    else
        Error(Marshal.GetLastPInvokeError())

/// What `path` is, following links; a path that cannot be examined (a loop of links, no permission) is an error.
let kind (path: string) : Result<Kind, DataError> =
    if native then
        match statx atCwd path 0 with
        | Ok(mode, size) ->
            match mode &&& 0xF000 with
            | 0x8000 -> Ok(Regular size)
            | 0x4000 -> Ok Folder
            | _ -> Ok(Special(describe mode |> Option.get))
        | Error(2 | 20) -> Ok Absent
        | Error 40 -> Error(BadPath(path, "a symbolic link loop"))
        | Error errno -> Error(Unreadable(path, errnoText errno))
    elif Directory.Exists path then
        Ok Folder
    elif File.Exists path then
        Ok(Regular(FileInfo(path).Length))
    else
        Ok Absent

/// Opens a regular file for reading; returns the handle and the file's size. Anything else is refused before it
/// is read: a folder (DATA002), a FIFO, socket or device (DATA014), a missing path (DATA001).
let openRegular (path: string) : Result<SafeFileHandle * int64, DataError> =
    if native then
        let fd = nativeOpen (path, readOnlyNonBlocking)

        if fd < 0 then
            match Marshal.GetLastPInvokeError() with
            | 2
            | 20 -> Error(Missing path)
            | 6 -> Error(NotRegular(path, "a socket"))
            | 40 -> Error(BadPath(path, "a symbolic link loop"))
            | errno -> Error(Unreadable(path, errnoText errno))
        else
            match statx fd "" atEmptyPath with
            | Ok(mode, size) when mode &&& 0xF000 = 0x8000 -> Ok(new SafeFileHandle(nativeint fd, true), size)
            | Ok(mode, _) ->
                nativeClose fd |> ignore

                if mode &&& 0xF000 = 0x4000 then
                    Error(WrongKind(path, "a file, found a directory"))
                else
                    Error(NotRegular(path, describe mode |> Option.get))
            | Error errno ->
                nativeClose fd |> ignore
                Error(Unreadable(path, errnoText errno))
    elif Directory.Exists path then
        Error(WrongKind(path, "a file, found a directory"))
    elif not (File.Exists path) then
        Error(Missing path)
    else
        try
            let handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read)
            Ok(handle, RandomAccess.GetLength handle)
        with
        | :? UnauthorizedAccessException as e -> Error(Unreadable(path, e.Message))
        | :? IOException as e -> Error(Unreadable(path, e.Message))

/// A regular file of at most `cap` bytes (read as `what`, for the message), open as a stream, with its size.
let openCapped (what: string) (cap: int64) (path: string) : Result<FileStream * int64, DataError> =
    openRegular path
    |> Result.bind (fun (handle, size) ->
        if size > cap then
            handle.Dispose()
            Error(TooLarge(path, what, sizeText size, limitText cap))
        else
            Ok(new FileStream(handle, FileAccess.Read, 1 <<< 16), size))

/// Every byte of a regular file of at most `cap` bytes (read as `what`, named in the message when it is larger).
/// A file that grows while it is read is still read no further than the size it had when it was opened.
let readBytes (what: string) (cap: int64) (path: string) : Result<byte[], DataError> =
    openCapped what cap path
    |> Result.bind (fun (stream, size) ->
        use stream = stream

        try
            let buffer = Array.zeroCreate<byte>(int size)
            let read = stream.ReadAtLeast(buffer.AsSpan(), buffer.Length, false)
            Ok(if read = buffer.Length then buffer else buffer[.. read - 1])
        with
        | :? UnauthorizedAccessException as e -> Error(Unreadable(path, e.Message))
        | :? IOException as e -> Error(Unreadable(path, e.Message)))

/// A text file of at most `cap` bytes, decoded as UTF-8 (a byte-order mark is honoured and dropped).
let readText (what: string) (cap: int64) (path: string) : Result<string, DataError> =
    readBytes what cap path
    |> Result.map (fun bytes ->
        use reader = new StreamReader(new MemoryStream(bytes), Encoding.UTF8, true)
        reader.ReadToEnd())

/// A text file's lines (split at \n, \r\n or \r), as File.ReadAllLines gives them, with the cap of readText.
let readLines (what: string) (cap: int64) (path: string) : Result<string[], DataError> =
    readText what cap path
    |> Result.map (fun text ->
        use reader = new StringReader(text)

        [|
            let mutable line = reader.ReadLine()

            while not (isNull line) do
                yield line
                line <- reader.ReadLine()
        |])

/// Where `path` really leads: the absolute path with every link of its existing part resolved (the part that
/// does not exist yet is appended as written).
let realPath (path: string) =
    let full = Path.GetFullPath path

    if not native then
        full
    else
        let resolve (p: string) =
            let r = nativeRealpath (p, 0n)

            if r = 0n then
                None
            else
                try
                    Some(Marshal.PtrToStringUTF8 r)
                finally
                    nativeFree r

        let rec go (existing: string) (rest: string list) =
            match resolve existing with
            | Some real -> List.fold (fun acc part -> Path.Combine(acc, part)) real rest
            | None ->
                match Path.GetDirectoryName existing with
                | null -> full
                | parent -> go parent (Path.GetFileName existing :: rest)

        go (Path.TrimEndingDirectorySeparator full) []

/// Whether `inner` is `outer` or lies below it, where both really lead.
let within (outer: string) (inner: string) =
    let o = Path.TrimEndingDirectorySeparator(realPath outer)
    let i = Path.TrimEndingDirectorySeparator(realPath inner)

    String.Equals(o, i, StringComparison.Ordinal)
    || i.StartsWith(o + string Path.DirectorySeparatorChar, StringComparison.Ordinal)
    || o = "/"

/// The first of `inputs` (files or folders a command reads) that `output` (what it writes) is or lies in: a
/// command never writes over its own inputs, nor into a folder it reads as a whole.
let inside (output: string) (inputs: string seq) : string option =
    inputs
    |> Seq.filter (fun i -> not (String.IsNullOrWhiteSpace i))
    |> Seq.tryFind (fun input -> within input output)
