/// SVHN's MATLAB level-5 MAT files (train_32x32.mat, test_32x32.mat): variable X, H x W x C x N uint8 in
/// column-major order, and y, N x 1 with 1..10 where 10 means the digit 0. Data elements may be plain or
/// zlib-compressed (miCOMPRESSED); both byte orders are read. v7.3 files are HDF5 and are refused by name.
module internal Waal.Data.SvhnMat

open System
open System.IO
open System.IO.Compression
open System.Text
open Waal.Data.Binary

let private miInt8 = 1u
let private miUInt8 = 2u
let private miInt32 = 5u
let private miUInt32 = 6u
let private miMatrix = 14u
let private miCompressed = 15u

let private typeName t =
    match t with
    | 1u -> "miINT8"
    | 2u -> "miUINT8"
    | 3u -> "miINT16"
    | 4u -> "miUINT16"
    | 5u -> "miINT32"
    | 6u -> "miUINT32"
    | 7u -> "miSINGLE"
    | 9u -> "miDOUBLE"
    | 12u -> "miINT64"
    | 13u -> "miUINT64"
    | 14u -> "miMATRIX"
    | 15u -> "miCOMPRESSED"
    | 16u -> "miUTF8"
    | 17u -> "miUTF16"
    | 18u -> "miUTF32"
    | other -> $"unknown data type {other}"

let private typeSize t =
    match t with
    | 1u
    | 2u -> 1
    | 3u
    | 4u -> 2
    | 5u
    | 6u
    | 7u -> 4
    | 9u
    | 12u
    | 13u -> 8
    | _ -> 0

let private className c =
    match c with
    | 1 -> "cell"
    | 2 -> "struct"
    | 3 -> "object"
    | 4 -> "char"
    | 5 -> "sparse"
    | 6 -> "double"
    | 7 -> "single"
    | 8 -> "int8"
    | 9 -> "uint8"
    | 10 -> "int16"
    | 11 -> "uint16"
    | 12 -> "int32"
    | 13 -> "uint32"
    | 14 -> "int64"
    | 15 -> "uint64"
    | other -> $"unknown class {other}"

/// Bytes being parsed: a buffer, whether it is big-endian, and how to describe positions in it.
type private Region =
    {
        Bytes: byte[]
        Big: bool
        /// File offset of the element this buffer was inflated from, or None for the file itself.
        Inflated: int64 option
    }

    member r.U16(at: int) =
        if r.Big then
            (uint16 r.Bytes[at] <<< 8) ||| uint16 r.Bytes[at + 1]
        else
            BitConverter.ToUInt16(r.Bytes, at)

    member r.U32(at: int) =
        if r.Big then
            bigEndianUInt32 r.Bytes at
        else
            BitConverter.ToUInt32(r.Bytes, at)

    /// A file offset for messages: inside an inflated buffer, the offset of its compressed element.
    member r.Offset(at: int) =
        match r.Inflated with
        | None -> int64 at
        | Some start -> start

    member r.Where(at: int) =
        match r.Inflated with
        | None -> ""
        | Some start -> $" (byte {at} of the data inflated from the miCOMPRESSED element at byte {start})"

/// One data element: its type, where its data starts, its length, and where the next element starts.
type private Element =
    {
        Type: uint32
        At: int
        Data: int
        Length: int
        Next: int
    }

let private element (path: string) (r: Region) (at: int) (limit: int) : Result<Element, DataError> =
    if at + 8 > limit then
        Error(Truncated(path, r.Offset at, $"an 8-byte data element tag{r.Where at}", $"{limit - at} bytes"))
    else
        let first = r.U32 at

        if first >>> 16 <> 0u then
            // Small data element: length in the upper half, type in the lower, data in the tag's last 4 bytes.
            let length = int (first >>> 16)

            if length > 4 then
                Error(
                    Malformed(path, r.Offset at, $"small data element claims {length} bytes, at most 4 fit{r.Where at}")
                )
            else
                Ok
                    {
                        Type = first &&& 0xffffu
                        At = at
                        Data = at + 4
                        Length = length
                        Next = at + 8
                    }
        else
            let length = r.U32(at + 4)

            if int64 length > int64 (limit - at - 8) then
                Error(
                    Truncated(
                        path,
                        r.Offset at + (if r.Inflated.IsNone then int64 limit - int64 at else 0L),
                        $"{length} bytes of {typeName first} data after the tag at byte {at}{r.Where at}",
                        $"{limit - at - 8} bytes"
                    )
                )
            else
                let stop = at + 8 + int length
                // Plain elements are padded to 8 bytes; compressed ones are not.
                let next =
                    if first = miCompressed then
                        stop
                    else
                        min limit ((stop + 7) &&& ~~~7)

                Ok
                    {
                        Type = first
                        At = at
                        Data = at + 8
                        Length = int length
                        Next = next
                    }

/// A numeric MATLAB array: name, class, dimensions and its real part (storage type + bytes in the region).
type private MatArray =
    {
        Name: string
        Class: int
        Dims: int[]
        Storage: uint32
        Region: Region
        Data: int
        Length: int
        At: int
    }

let private bindAll (f: 'a -> Result<'b, DataError>) (items: 'a list) =
    let rec go acc rest =
        match rest with
        | [] -> Ok(List.rev acc)
        | x :: tail ->
            match f x with
            | Ok v -> go (v :: acc) tail
            | Error e -> Error e

    go [] items

/// Parses a miMATRIX element's sub-elements; non-numeric classes come back with no data to read.
let private matrix (path: string) (r: Region) (e: Element) : Result<MatArray, DataError> =
    let limit = e.Data + e.Length

    let expect (sub: Element) (t: uint32) (what: string) =
        if sub.Type <> t then
            Error(
                Malformed(
                    path,
                    r.Offset sub.At,
                    $"{what}: expected {typeName t}, found {typeName sub.Type}{r.Where sub.At}"
                )
            )
        else
            Ok sub

    element path r e.Data limit
    |> Result.bind (fun flags -> expect flags miUInt32 "array flags")
    |> Result.bind (fun flags ->
        if flags.Length < 8 then
            Error(
                Malformed(
                    path,
                    r.Offset flags.At,
                    $"array flags hold {flags.Length} bytes, expected 8{r.Where flags.At}"
                )
            )
        else
            let word = r.U32 flags.Data
            let cls = int (word &&& 0xffu)
            let complex = word &&& 0x800u <> 0u

            element path r flags.Next limit
            |> Result.bind (fun dims -> expect dims miInt32 "dimensions")
            |> Result.bind (fun dims ->
                let shape = Array.init (dims.Length / 4) (fun i -> int (r.U32(dims.Data + 4 * i)))

                element path r dims.Next limit
                |> Result.bind (fun name -> expect name miInt8 "array name")
                |> Result.bind (fun name ->
                    let varName = Encoding.ASCII.GetString(r.Bytes, name.Data, name.Length)

                    if cls < 6 || cls > 15 then
                        Ok
                            {
                                Name = varName
                                Class = cls
                                Dims = shape
                                Storage = 0u
                                Region = r
                                Data = 0
                                Length = 0
                                At = e.At
                            }
                    elif complex then
                        Error(Unsupported(path, $"variable {varName}", "complex numbers; expected real data"))
                    else
                        element path r name.Next limit
                        |> Result.bind (fun real ->
                            if typeSize real.Type = 0 then
                                Error(
                                    Malformed(
                                        path,
                                        r.Offset real.At,
                                        $"variable {varName}: real part of type {typeName real.Type}, expected a numeric type{r.Where real.At}"
                                    )
                                )
                            else
                                Ok
                                    {
                                        Name = varName
                                        Class = cls
                                        Dims = shape
                                        Storage = real.Type
                                        Region = r
                                        Data = real.Data
                                        Length = real.Length
                                        At = real.At
                                    }))))

/// Inflates a miCOMPRESSED element: first its inner tag, then only as many bytes as that tag claims.
let private inflate (path: string) (r: Region) (e: Element) : Result<Region, DataError> =
    try
        use source = new MemoryStream(r.Bytes, e.Data, e.Length, false)
        use z = new ZLibStream(source, CompressionMode.Decompress)
        let start = r.Offset e.At

        readUpTo path start z 8L
        |> Result.bind (fun tag ->
            if tag.Length < 8 then
                Error(
                    Truncated(
                        path,
                        start,
                        "an 8-byte tag inside the miCOMPRESSED element",
                        $"{tag.Length} bytes inflated"
                    )
                )
            else
                let inner =
                    {
                        Bytes = tag
                        Big = r.Big
                        Inflated = Some start
                    }

                let claimed = int64 (inner.U32 4)
                let claimed = if inner.U32 0 >>> 16 <> 0u then 0L else claimed

                readUpTo path start z claimed
                |> Result.map (fun body ->
                    { inner with
                        Bytes = Array.append tag body
                    }))
    with :? InvalidDataException as ex ->
        Error(Malformed(path, r.Offset e.At, $"corrupt zlib data in the miCOMPRESSED element ({ex.Message})"))

/// Every top-level variable of a MAT level-5 file (numeric ones with their data).
let private variables (path: string) (bytes: byte[]) : Result<MatArray list, DataError> =
    let text = Encoding.ASCII.GetString(bytes, 0, min 116 bytes.Length)

    if bytes.Length < 128 then
        if text.StartsWith "MATLAB" then
            Error(Truncated(path, int64 bytes.Length, "a 128-byte MAT-file header", $"{bytes.Length} bytes"))
        else
            Error(
                BadMagic(path, 0L, "a MATLAB level-5 MAT-file header ('MATLAB 5.0 MAT-file', 128 bytes)", hex bytes 0 8)
            )
    elif not (text.StartsWith "MATLAB") then
        Error(
            BadMagic(
                path,
                0L,
                "the text 'MATLAB 5.0 MAT-file' of a level-5 MAT-file (v4 and other files are not read)",
                hex bytes 0 8
            )
        )
    else
        let big =
            match char bytes[126], char bytes[127] with
            | 'I', 'M' -> Some false
            | 'M', 'I' -> Some true
            | _ -> None

        match big with
        | None -> Error(BadMagic(path, 126L, "the endian indicator 'IM' or 'MI'", hex bytes 126 2))
        | Some big ->
            let r =
                {
                    Bytes = bytes
                    Big = big
                    Inflated = None
                }

            match r.U16 124 with
            | 0x0200us ->
                Error(
                    Unsupported(
                        path,
                        "version (byte 124)",
                        "this is a MATLAB v7.3 MAT-file, which is HDF5; only level-5 MAT-files (v5/v6/v7) are read: re-save it with save(..., '-v7') or use the official SVHN files"
                    )
                )
            | 0x0100us ->
                let rec go (at: int) acc =
                    if at >= bytes.Length then
                        Ok(List.rev acc)
                    else
                        Waal.Core.ResultExpression.result {
                            let! e = element path r at bytes.Length

                            let! parsed =
                                if e.Type = miCompressed then
                                    Waal.Core.ResultExpression.result {
                                        let! inner = inflate path r e
                                        let! ie = element path inner 0 inner.Bytes.Length

                                        if ie.Type = miMatrix then
                                            return! matrix path inner ie |> Result.map Some
                                        else
                                            return None
                                    }
                                elif e.Type = miMatrix then
                                    matrix path r e |> Result.map Some
                                else
                                    Ok None

                            return! go e.Next (Option.toList parsed @ acc)
                        }

                go 128 []
            | v -> Error(Unsupported(path, "version (byte 124)", $"0x{v:x4}; expected 0x0100 (level 5)"))

/// The value of element i of a numeric array, as a double.
let private valueAt (m: MatArray) (i: int) =
    let r = m.Region
    let at = m.Data + i * typeSize m.Storage
    let b = r.Bytes

    let bytes8 () =
        if r.Big then Array.rev b[at .. at + 7] else b[at .. at + 7]

    match m.Storage with
    | 1u -> float (sbyte b[at])
    | 2u -> float b[at]
    | 3u -> float (int16 (r.U16 at))
    | 4u -> float (r.U16 at)
    | 5u -> float (int32 (r.U32 at))
    | 6u -> float (r.U32 at)
    | 7u -> float (BitConverter.Int32BitsToSingle(int32 (r.U32 at)))
    | 9u -> BitConverter.ToDouble(bytes8 (), 0)
    | 12u -> float (BitConverter.ToInt64(bytes8 (), 0))
    | _ -> float (BitConverter.ToUInt64(bytes8 (), 0))

let private find (path: string) (name: string) (vars: MatArray list) =
    match vars |> List.tryFind (fun v -> v.Name = name) with
    | None ->
        let names =
            match vars with
            | [] -> "nothing"
            | _ -> vars |> List.map (fun v -> v.Name) |> String.concat ", "

        Error(Malformed(path, 128L, $"no variable {name}; the file holds: {names}"))
    | Some v when v.Storage = 0u ->
        Error(Unsupported(path, $"variable {name}", $"MATLAB class {className v.Class}; expected a numeric array"))
    | Some v ->
        let count = v.Dims |> Array.fold (fun acc d -> acc * int64 d) 1L

        if count * int64 (typeSize v.Storage) <> int64 v.Length then
            let shape = String.Join(" x ", v.Dims)

            Error(
                SizeMismatch(
                    path,
                    $"variable {name} data",
                    $"{count} values ({shape}) x {typeSize v.Storage} bytes",
                    $"{v.Length} bytes"
                )
            )
        else
            Ok v

/// Reads an SVHN MAT file: images N x C x H x W (from X, H x W x C x N column-major), labels 0..9 (y's 10 -> 0).
let read (path: string) : Result<Dataset, DataError> =
    checkFile path
    |> Result.bind (fun length ->
        // The 128-byte header first: a file that is not a level-5 MAT-file is refused before the rest is read.
        withFile path (fun s -> readUpTo path 0L s (min 128L length))
        |> Result.bind (variables path)
        |> Result.bind (fun _ -> withFile path (fun s -> readUpTo path 0L s length)))
    |> Result.bind (variables path)
    |> Result.bind (fun vars ->
        find path "X" vars
        |> Result.bind (fun x ->
            if x.Storage <> miUInt8 then
                Error(
                    Unsupported(
                        path,
                        "variable X",
                        $"pixels stored as {typeName x.Storage} (class {className x.Class}); expected uint8 (miUINT8)"
                    )
                )
            elif x.Dims.Length <> 4 && x.Dims.Length <> 3 then
                Error(SizeMismatch(path, "variable X dimensions", "H x W x C x N", String.Join(" x ", x.Dims)))
            else
                let h, w, c = x.Dims[0], x.Dims[1], x.Dims[2]
                let n = if x.Dims.Length = 4 then x.Dims[3] else 1

                find path "y" vars
                |> Result.bind (fun y ->
                    let count = y.Dims |> Array.fold (fun acc d -> acc * d) 1

                    if count <> n then
                        Error(CountMismatch(path, n, count))
                    else
                        let labels = Array.zeroCreate n
                        let mutable bad = None
                        let mutable i = 0

                        while bad.IsNone && i < n do
                            let v = valueAt y i

                            if v = Math.Round v && v >= 1.0 && v <= 10.0 then
                                labels[i] <- int v % 10
                            else
                                bad <- Some(i, v)

                            i <- i + 1

                        match bad with
                        | Some(i, v) ->
                            Error(
                                LabelOutOfRange(
                                    path,
                                    y.Region.Offset(y.Data + i * typeSize y.Storage),
                                    int64 v,
                                    $"1..10 (10 meaning the digit 0) for item {i}{y.Region.Where(y.Data + i * typeSize y.Storage)}"
                                )
                            )
                        | None ->
                            let images = Array.zeroCreate (n * c * h * w)
                            let src = x.Region.Bytes
                            let plane = h * w

                            // Column-major X[r, col, ch, i] = src[r + h * (col + w * (ch + c * i))] -> NCHW.
                            for img in 0 .. n - 1 do
                                for ch in 0 .. c - 1 do
                                    let from = x.Data + (img * c + ch) * plane
                                    let dst = (img * c + ch) * plane

                                    for row in 0 .. h - 1 do
                                        for col in 0 .. w - 1 do
                                            images[dst + row * w + col] <- src[from + row + h * col]

                            Dataset.create path images labels c h w 10)))
