/// Decoding one image file (SkiaSharp: PNG, JPEG, BMP, WebP; EXIF orientation; the shorter side resized and the
/// centre square kept) and a list of them in parallel: the pixels `Folder` reads, caches and turns into datasets.
module internal Waal.Data.ImageDecode

open System
open System.IO
open System.Threading.Tasks
open SkiaSharp
open Waal.Core

/// The formats, in words, for messages.
let formats = "PNG, JPEG, BMP or WebP images"

/// One decoded image: width, height, whether it is grey, and an RGBA8888 buffer at the target size.
type internal Decoded =
    {
        Width: int
        Height: int
        Grey: bool
        Rgba: byte[]
    }

/// The matrix that maps stored pixels (w x h) to upright ones for an EXIF orientation (1-8).
let internal orientation (origin: SKEncodedOrigin) (w: int) (h: int) =
    let w, h = float32 w, float32 h

    // x' = a x + b y + c, y' = d x + e y + f
    let m a b c d e f =
        SKMatrix(a, b, c, d, e, f, 0.0f, 0.0f, 1.0f)

    match origin with
    | SKEncodedOrigin.TopRight -> m -1.0f 0.0f w 0.0f 1.0f 0.0f
    | SKEncodedOrigin.BottomRight -> m -1.0f 0.0f w 0.0f -1.0f h
    | SKEncodedOrigin.BottomLeft -> m 1.0f 0.0f 0.0f 0.0f -1.0f h
    | SKEncodedOrigin.LeftTop -> m 0.0f 1.0f 0.0f 1.0f 0.0f 0.0f
    | SKEncodedOrigin.RightTop -> m 0.0f -1.0f h 1.0f 0.0f 0.0f
    | SKEncodedOrigin.RightBottom -> m 0.0f -1.0f h -1.0f 0.0f w
    | SKEncodedOrigin.LeftBottom -> m 0.0f 1.0f 0.0f -1.0f 0.0f w
    | _ -> SKMatrix.Identity

/// A decoded bitmap turned upright (a new bitmap, or a copy of the same for the usual orientation), with its
/// upright width and height; the caller disposes both.
let internal upright (origin: SKEncodedOrigin) (stored: SKBitmap) (w: int) (h: int) =
    let swaps = int origin >= int SKEncodedOrigin.LeftTop
    let ow, oh = if swaps then h, w else w, h

    let turned =
        new SKBitmap(SKImageInfo(ow, oh, SKColorType.Rgba8888, SKAlphaType.Premul))

    use canvas = new SKCanvas(turned)
    let matrix = orientation origin w h
    canvas.SetMatrix(&matrix)
    canvas.DrawBitmap(stored, 0.0f, 0.0f)
    canvas.Flush()
    turned, ow, oh

/// Decodes an encoded image read from `stream` (`length` bytes; `file` names it in errors) into RGBA at `size` x
/// `size` (resized shorter side, centre crop) or at its stored size, composited over white. Only the header is
/// read before the image's dimensions are checked against Files.Limits.imagePixels, so a small file that claims
/// a huge image (a decompression bomb) is refused before anything is allocated for its pixels.
let internal decodeStream (file: string) (stream: Stream) (length: int64) (size: int) : Result<Decoded, DataError> =
    if length = 0L then
        Error(Empty file)
    else
        // The first bytes, for the message when no codec recognises them (SkiaSharp owns the stream afterwards).
        let head = Array.zeroCreate<byte>(int (min 8L length))
        let got = stream.ReadAtLeast(head.AsSpan(), head.Length, false)
        stream.Position <- 0L
        use codec = SKCodec.Create stream

        if isNull codec then
            let head =
                head[.. got - 1] |> Array.map (fun b -> b.ToString "x2") |> String.concat " "

            Error(BadMagic(file, 0L, formats, $"bytes {head}"))
        else
            let w, h = codec.Info.Width, codec.Info.Height

            if w < 1 || h < 1 || int64 w * int64 h > Files.Limits.imagePixels then
                let cap =
                    (float Files.Limits.imagePixels / 1e6).ToString("0.#", Globalization.CultureInfo.InvariantCulture)

                Error(SizeMismatch(file, "image size", $"1 to {cap} megapixels", $"{w}x{h}"))
            else
                let info = SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Premul)
                use full = new SKBitmap(info)
                let result = codec.GetPixels(info, full.GetPixels())

                match result with
                | SKCodecResult.Success ->
                    let grey = codec.Info.ColorType = SKColorType.Gray8
                    // The pixels upright, as the EXIF orientation (cameras and phones) says they are seen.
                    let full, w, h = upright codec.EncodedOrigin full w h
                    use _upright = full
                    let tw, th = if size > 0 then size, size else w, h

                    use target =
                        new SKBitmap(SKImageInfo(tw, th, SKColorType.Rgba8888, SKAlphaType.Premul))

                    use canvas = new SKCanvas(target)
                    canvas.Clear SKColors.White
                    use image = SKImage.FromBitmap full

                    let source =
                        if size > 0 then
                            let side = min w h

                            SKRect.Create(
                                float32 ((w - side) / 2),
                                float32 ((h - side) / 2),
                                float32 side,
                                float32 side
                            )
                        else
                            SKRect.Create(0.0f, 0.0f, float32 w, float32 h)

                    let sampling = SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear)
                    use paint = new SKPaint()

                    canvas.DrawImage(image, source, SKRect.Create(0.0f, 0.0f, float32 tw, float32 th), sampling, paint)

                    canvas.Flush()

                    Ok
                        {
                            Width = w
                            Height = h
                            Grey = grey
                            Rgba = target.Bytes
                        }
                | SKCodecResult.IncompleteInput
                | SKCodecResult.ErrorInInput -> Error(Truncated(file, length, $"a whole {w}x{h} image", $"{result}"))
                | other -> Error(Malformed(file, 0L, $"the image cannot be decoded ({other})"))

/// Decodes encoded bytes (see decodeStream).
let internal decodeBytes (file: string) (bytes: byte[]) (size: int) =
    use stream = new MemoryStream(bytes, false)
    decodeStream file stream bytes.LongLength size

/// Decodes one file (see decodeStream): only a regular file of at most Files.Limits.imageBytes is opened, and
/// only its header is read before its dimensions are checked.
let internal decode (file: string) (size: int) : Result<Decoded, DataError> =
    Files.openCapped "an image file" Files.Limits.imageBytes file
    |> Result.bind (fun (stream, length) ->
        use stream = stream

        try
            decodeStream file stream length size
        with
        | :? UnauthorizedAccessException as e -> Error(Unreadable(file, e.Message))
        | :? IOException as e -> Error(Unreadable(file, e.Message)))

/// Writes one RGBA image into `dest` at `offset` as `channels` planes (grey: the Rec. 601 luma, rounded; an
/// image whose R, G and B agree gives exactly that value).
let internal planes (rgba: byte[]) (pixels: int) (channels: int) (dest: byte[]) (offset: int) =
    if channels = 1 then
        for i in 0 .. pixels - 1 do
            let r, g, b = int rgba[4 * i], int rgba[4 * i + 1], int rgba[4 * i + 2]
            dest[offset + i] <- byte ((299 * r + 587 * g + 114 * b + 500) / 1000)
    else
        for c in 0..2 do
            for i in 0 .. pixels - 1 do
                dest[offset + c * pixels + i] <- rgba[4 * i + c]

/// A decoded image as `channels` x H x W bytes; with size 0 its stored size must be `height` x `width`.
let internal prepared (size: int) (channels: int) (height: int) (width: int) (name: string) (d: Decoded) =
    if size = 0 && (d.Width, d.Height) <> (width, height) then
        Error(
            SizeMismatch(
                name,
                "image size",
                $"{width}x{height} like the model's training images",
                $"{d.Width}x{d.Height}"
            )
        )
    else
        let pixels = height * width
        let out = Array.zeroCreate<byte>(channels * pixels)
        planes d.Rgba pixels channels out 0
        Ok out

/// Decodes `files` (absolute paths) into one uint8 N x C x H x W array, in parallel, each image into its own
/// slot (so the result does not depend on the thread count). Under SkipBad the failures are left out and
/// returned; otherwise the first failure in file order is the error.
let internal decodeAll (files: string[]) (options: ImageOptions) =
    let results = Array.zeroCreate<Result<Decoded, DataError>> files.Length

    Parallel.For(0, files.Length, (fun i -> results[i] <- decode files[i] options.Size))
    |> ignore

    let failures =
        results
        |> Array.choose (fun r ->
            match r with
            | Error e -> Some e
            | Ok _ -> None)

    if failures.Length > 0 && not options.SkipBad then
        Error failures[0]
    else
        let kept =
            results
            |> Array.indexed
            |> Array.choose (fun (i, r) ->
                match r with
                | Ok d -> Some(i, d)
                | Error _ -> None)

        match kept with
        | [||] -> Ok([||], List.ofArray failures, 0, 0, 0, [||])
        | _ ->
            let _, first = kept[0]

            let w, h =
                if options.Size > 0 then
                    options.Size, options.Size
                else
                    first.Width, first.Height

            let odd =
                if options.Size > 0 then
                    None
                else
                    kept |> Array.tryFind (fun (_, d) -> d.Width <> w || d.Height <> h)

            match odd with
            | Some(i, d) ->
                Error(
                    SizeMismatch(
                        files[i],
                        "image size",
                        $"{w}x{h} like {files[fst kept[0]]} (or give --image-size N to resize every image)",
                        $"{d.Width}x{d.Height}"
                    )
                )
            | None ->
                let channels =
                    match options.Channels with
                    | 0 -> if kept |> Array.forall (fun (_, d) -> d.Grey) then 1 else 3
                    | c -> c

                let pixels = w * h
                let images = Array.zeroCreate<byte>(kept.Length * channels * pixels)

                kept
                |> Array.iteri (fun j (_, d) -> planes d.Rgba pixels channels images (j * channels * pixels))

                Ok(images, List.ofArray failures, channels, h, w, kept |> Array.map fst)
