/// Image folders written at test time from real Fashion-MNIST images (no image fixture is committed): one
/// sub-folder per class, PNG or JPEG, grey or colour.
module Waal.Testing.ImageFolders

open System.IO
open SkiaSharp
open Waal.Data

/// How the files are written.
type Style =
    /// Grey PNG at the stored 28x28 (lossless: the bytes read back exactly).
    | GreyPng
    /// Colour JPEG at 28x28: the grey image tinted by its class (R = v, G = v * (c + 1) / classes, B = 255 - v).
    | ColourJpeg
    /// Colour PNG scaled to `side` x (side + side / 2) (not square, so resizing crops).
    | ColourPngScaled of side: int

/// The RGBA pixels of item i of a 1-channel dataset in a style, with its width and height.
let private rgba (style: Style) (data: Dataset) (i: int) =
    let v (x: int) (y: int) = data.Images[i * 784 + y * 28 + x]
    let c = data.Labels[i]

    let colour (g: byte) =
        byte (int g * (c + 1) / data.Classes), byte (255 - int g)

    match style with
    | GreyPng -> 28, 28, (fun x y -> let g = v x y in g, g, g)
    | ColourJpeg ->
        28,
        28,
        (fun x y ->
            let g = v x y
            let gg, b = colour g
            g, gg, b)
    | ColourPngScaled side ->
        let w, h = side, side + side / 2

        w,
        h,
        (fun x y ->
            let g = v (x * 28 / w) (y * 28 / h)
            let gg, b = colour g
            g, gg, b)

/// The encoded bytes of item i.
let encode (style: Style) (data: Dataset) (i: int) =
    let w, h, pixel = rgba style data i

    let info, format =
        match style with
        | GreyPng -> SKImageInfo(w, h, SKColorType.Gray8, SKAlphaType.Opaque), SKEncodedImageFormat.Png
        | ColourJpeg -> SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque), SKEncodedImageFormat.Jpeg
        | ColourPngScaled _ -> SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Opaque), SKEncodedImageFormat.Png

    use bitmap = new SKBitmap(info)
    let bytes = Array.zeroCreate<byte>(info.BytesSize)

    for y in 0 .. h - 1 do
        for x in 0 .. w - 1 do
            let r, g, b = pixel x y

            match style with
            | GreyPng -> bytes[y * w + x] <- r
            | _ ->
                let o = 4 * (y * w + x)
                bytes[o] <- r
                bytes[o + 1] <- g
                bytes[o + 2] <- b
                bytes[o + 3] <- 255uy

    System.Runtime.InteropServices.Marshal.Copy(bytes, 0, bitmap.GetPixels(), bytes.Length)
    use data = bitmap.Encode(format, 95)
    data.ToArray()

/// Writes `perClass` images of each of the first `classes` classes of a 1x28x28 dataset under `folder`
/// (class folders named by `names`), files named `img-<index>.<ext>` after their index in `data`. Returns the
/// indices written, in class then index order.
let write (style: Style) (data: Dataset) (names: string[]) (perClass: int) (folder: string) =
    let ext =
        match style with
        | ColourJpeg -> "jpg"
        | _ -> "png"

    [|
        for c in 0 .. names.Length - 1 do
            let dir = Path.Combine(folder, names[c])
            Directory.CreateDirectory dir |> ignore

            let items =
                [| 0 .. data.Count - 1 |]
                |> Array.filter (fun i -> data.Labels[i] = c)
                |> Array.truncate perClass

            for i in items do
                File.WriteAllBytes(Path.Combine(dir, $"img-{i:D5}.{ext}"), encode style data i)
                yield i
    |]

/// Writes `perClass` images of each of the first classes of the real Fashion-MNIST training set (from the folder
/// `fashion`, its first 400 images) under `folder`, as `write` does.
let writeFashion (fashion: string) (style: Style) (names: string[]) (perClass: int) (folder: string) =
    let train, _ =
        Load.fashionMnist fashion
        |> Result.defaultWith (fun e -> failwith (DataError.line e))

    write style (Dataset.take 400 train) names perClass folder
