/// What a hostile user puts where an image (or any file) is expected: every way a reader could be made to wait
/// for ever or read without end, made at test time in a temporary folder.
module Waal.Testing.SpecialFiles

open System
open System.IO
open System.IO.Compression
open System.Net.Sockets
open System.Runtime.InteropServices
open System.Threading.Tasks

[<DllImport("libc", SetLastError = true)>]
extern int private mkfifo(string path, uint32 mode)

/// One kind of hostile path.
type Special =
    /// A symbolic link to /dev/zero: endless zeros.
    | LinkToZero
    /// A symbolic link to /dev/urandom: endless noise.
    | LinkToRandom
    /// A named pipe nobody writes to: opening it for reading waits for a writer.
    | Fifo
    /// A Unix socket.
    | Socket
    /// A symbolic link that leads to itself.
    | LinkLoop
    /// A sparse file of 1 GiB (no disk used): larger than any cap.
    | Huge
    /// A 97 KB PNG that claims 9999 x 9999 pixels of zeros (a decompression bomb).
    | Bomb

/// Every kind.
let all = [ LinkToZero; LinkToRandom; Fifo; Socket; LinkLoop; Huge; Bomb ]

/// The data error codes a reader may answer each kind with.
let codes =
    function
    | LinkToZero
    | LinkToRandom
    | Fifo
    | Socket -> [ "DATA014" ]
    | LinkLoop -> [ "DATA013"; "DATA001" ]
    | Huge -> [ "DATA015" ]
    | Bomb -> [ "DATA007" ]

/// CRC-32 (IEEE), as PNG chunks carry it.
let private crc32 (bytes: byte[]) =
    let mutable c = 0xFFFFFFFFu

    for b in bytes do
        c <- c ^^^ uint32 b

        for _ in 0..7 do
            c <-
                if c &&& 1u <> 0u then
                    (c >>> 1) ^^^ 0xEDB88320u
                else
                    c >>> 1

    c ^^^ 0xFFFFFFFFu

let private chunk (kind: string) (data: byte[]) =
    let crc = crc32 (Array.append (Text.Encoding.ASCII.GetBytes kind) data)

    let be (v: uint32) =
        [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]

    Array.concat [ be (uint32 data.Length); Text.Encoding.ASCII.GetBytes kind; data; be crc ]

/// A grey PNG of `side` x `side` zero pixels whose compressed data is whole: small on disk, huge decoded.
let bombPng (side: int) =
    let header =
        Array.concat
            [
                [| byte (side >>> 24); byte (side >>> 16); byte (side >>> 8); byte side |]
                [| byte (side >>> 24); byte (side >>> 16); byte (side >>> 8); byte side |]
                [| 8uy; 0uy; 0uy; 0uy; 0uy |]
            ]

    use compressed = new MemoryStream()

    do
        use z = new ZLibStream(compressed, CompressionLevel.SmallestSize, true)
        let row = Array.zeroCreate<byte>(side + 1)

        for _ in 1..side do
            z.Write(row, 0, row.Length)

    Array.concat
        [
            [| 0x89uy; 0x50uy; 0x4Euy; 0x47uy; 0x0Duy; 0x0Auy; 0x1Auy; 0x0Auy |]
            chunk "IHDR" header
            chunk "IDAT" (compressed.ToArray())
            chunk "IEND" [||]
        ]

/// Sockets stay bound while the tests run (.NET removes a socket's file when it is closed).
let private bound = Collections.Concurrent.ConcurrentBag<Socket>()

/// Makes `kind` at `path` (the folder must exist).
let make (kind: Special) (path: string) =
    match kind with
    | LinkToZero -> File.CreateSymbolicLink(path, "/dev/zero") |> ignore
    | LinkToRandom -> File.CreateSymbolicLink(path, "/dev/urandom") |> ignore
    | Fifo ->
        if mkfifo (path, 0o644u) <> 0 then
            failwith $"mkfifo {path}: errno {Marshal.GetLastPInvokeError()}"
    | Socket ->
        let s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
        s.Bind(UnixDomainSocketEndPoint path)
        bound.Add s
    | LinkLoop -> File.CreateSymbolicLink(path, path) |> ignore
    | Huge ->
        use f = new FileStream(path, FileMode.CreateNew)
        f.SetLength(1L <<< 30)
    | Bomb -> File.WriteAllBytes(path, bombPng 9999)

/// Runs `f` and fails the test if it has not returned within `seconds` (a reader that waits for ever shows as a
/// failure, not as a suite that never ends).
let within (seconds: float) (what: string) (f: unit -> 'a) : 'a =
    let t = Task.Run(fun () -> f ())

    if t.Wait(TimeSpan.FromSeconds seconds) then
        t.Result
    else
        failwith $"{what}: still running after {seconds} s (a read without a bound?)"
