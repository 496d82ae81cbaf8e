/// Writers for the data formats and temporary folders, shared by the test suites (test code: the readers
/// under test never see it).
module Waal.Testing.Formats

open System
open System.IO
open System.IO.Compression
open System.Text


let bigEndian (v: int) =
    [| byte (v >>> 24); byte (v >>> 16); byte (v >>> 8); byte v |]

let idx (dims: int[]) (data: byte[]) =
    Array.concat [ [| 0uy; 0uy; 8uy; byte dims.Length |]; dims |> Array.collect bigEndian; data ]

let gzip (bytes: byte[]) =
    use out = new MemoryStream()

    do
        use gz = new GZipStream(out, CompressionLevel.Fastest, true)
        gz.Write(bytes, 0, bytes.Length)

    out.ToArray()

let zlib (bytes: byte[]) =
    use out = new MemoryStream()

    do
        use z = new ZLibStream(out, CompressionLevel.Fastest, true)
        z.Write(bytes, 0, bytes.Length)

    out.ToArray()

/// A pixel value that depends on every coordinate, so a layout mistake changes it.
let pixel n c r col =
    byte ((n * 53 + c * 31 + r * 7 + col * 3) % 251)

let images n c h w =
    Array.init (n * c * h * w) (fun i ->
        let col = i % w
        let r = i / w % h
        let ch = i / (w * h) % c
        let img = i / (w * h * c)
        pixel img ch r col)

let cifar (labels: byte[]) =
    let pixels = images labels.Length 3 32 32

    labels
    |> Array.mapi (fun i l -> Array.append [| l |] pixels[i * 3072 .. i * 3072 + 3071])
    |> Array.concat

/// MAT level-5 writer: endianness, and for each element whether it is compressed.
type MatWriter(big: bool) =
    member _.U32(v: uint32) =
        let b = BitConverter.GetBytes v
        if big then Array.rev b else b

    member this.Tag (t: uint32) (data: byte[]) =
        let pad = (8 - data.Length % 8) % 8
        Array.concat [ this.U32 t; this.U32(uint32 data.Length); data; Array.zeroCreate pad ]

    member this.Matrix (name: string) (cls: uint32) (dims: int[]) (storage: uint32) (data: byte[]) =
        let flags = Array.append (this.U32 cls) (this.U32 0u)
        let dimBytes = dims |> Array.collect (fun d -> this.U32(uint32 d))

        let body =
            Array.concat
                [
                    this.Tag 6u flags
                    this.Tag 5u dimBytes
                    this.Tag 1u (Encoding.ASCII.GetBytes name)
                    this.Tag storage data
                ]

        this.Tag 14u body

    member this.Compressed(element: byte[]) =
        let z = zlib element
        Array.concat [ this.U32 15u; this.U32(uint32 z.Length); z ]

    member _.Header(version: uint16) =
        let text =
            Encoding.ASCII.GetBytes("MATLAB 5.0 MAT-file, Platform: test, Created by the Waal.Data tests".PadRight 116)

        let v = BitConverter.GetBytes version
        let v = if big then Array.rev v else v
        Array.concat [ text; Array.zeroCreate 8; v; (if big then "MI"B else "IM"B) ]

/// An SVHN-like file: X is 32 x 32 x 3 x n uint8 (column-major), y is n x 1 double (or uint8-stored).
let svhn (big: bool) (compressed: bool) (yAsUInt8: bool) (labels: int[]) =
    let m = MatWriter big
    let n = labels.Length
    let x = Array.zeroCreate (32 * 32 * 3 * n)

    for img in 0 .. n - 1 do
        for ch in 0..2 do
            for r in 0..31 do
                for col in 0..31 do
                    x[r + 32 * (col + 32 * (ch + 3 * img))] <- pixel img ch r col

    let yData =
        if yAsUInt8 then
            labels |> Array.map byte
        else
            labels
            |> Array.collect (fun l -> let b = BitConverter.GetBytes(float l) in if big then Array.rev b else b)

    let wrap e =
        if compressed then m.Compressed e else e

    Array.concat
        [
            m.Header 0x0100us
            wrap (m.Matrix "X" 9u [| 32; 32; 3; n |] 2u x)
            wrap (m.Matrix "y" 6u [| n; 1 |] (if yAsUInt8 then 2u else 9u) yData)
        ]

// ---------- temporary files ----------

let temp () =
    let dir =
        Path.Combine(Path.GetTempPath(), "waal-data-tests-" + Guid.NewGuid().ToString "N")

    Directory.CreateDirectory dir |> ignore
    dir

let write (dir: string) (name: string) (bytes: byte[]) =
    let path = Path.Combine(dir, name)
    File.WriteAllBytes(path, bytes)
    path

let inTemp (f: string -> unit) =
    let dir = temp ()

    try
        f dir
    finally
        Directory.Delete(dir, true)
