/// Image folders: one sub-folder per class (its name is the class name), PNG, JPEG, BMP and WebP files of any
/// size and channel count, decoded with SkiaSharp into the same compact uint8 NCHW layout as the file formats.
module Waal.Data.Folder

open System
open System.Collections.Generic
open System.IO
open System.Text
open System.Threading.Tasks
open SkiaSharp
open Waal.Core

/// The stored images as they are: their own size and channels, no skipping (and no holdout: that is the
/// dataset's, not the folder reader's). The reader uses `ImageOptions`' Size, Channels and SkipBad.
let defaultOptions: ImageOptions =
    {
        Size = 0
        Channels = 0
        SkipBad = false
        Holdout = 0.0
    }

/// The formats, in words, for messages.
let formats = "PNG, JPEG, BMP or WebP images"

/// A folder read as a dataset, with what was skipped.
type Read =
    {
        Data: Dataset
        /// Files skipped under SkipBad, with why (relative paths).
        Skipped: DataError list
        /// Whether the pixels came from the decode cache (no file was decoded).
        FromCache: bool
    }

let private relative (root: string) (path: string) =
    Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/')

/// The files below `folder` (recursively, in ordinal order of their relative paths), skipping hidden entries
/// (names starting with '.'). A name that is not UTF-8 (the runtime reads its bytes as U+FFFD) and a symbolic
/// link back into a folder being walked are errors.
let private filesBelow (folder: string) : Result<string list, DataError> =
    let rec walk (dir: string) (ancestors: string list) : Result<string list, DataError> =
        let real =
            let info = DirectoryInfo dir

            match info.LinkTarget with
            | null -> info.FullName
            | _ ->
                match info.ResolveLinkTarget true with
                | null -> info.FullName
                | target -> target.FullName

        if List.contains real ancestors then
            Error(BadPath(dir, $"a symbolic link loop: it leads back to {real}, a folder that contains it"))
        else
            let entries =
                try
                    Ok(
                        Directory.GetFileSystemEntries dir
                        |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))
                    )
                with
                | :? UnauthorizedAccessException as e -> Error(Unreadable(dir, e.Message))
                | :? IOException as e -> Error(Unreadable(dir, e.Message))

            entries
            |> Result.bind (fun entries ->
                let name (p: string) = Path.GetFileName p

                let rec go acc (rest: string list) =
                    match rest with
                    | [] -> Ok(List.rev acc)
                    | p :: more when (name p).StartsWith "." -> go acc more
                    | p :: _ when (name p).Contains '\uFFFD' ->
                        Error(BadPath(p, "the name is not valid UTF-8; rename it"))
                    | p :: more when Directory.Exists p ->
                        match walk p (real :: ancestors) with
                        | Ok files -> go (List.rev files @ acc) more
                        | Error e -> Error e
                    | p :: more when File.Exists p -> go (p :: acc) more
                    | p :: _ -> Error(BadPath(p, "neither a file nor a folder (a broken symbolic link?)"))

                go [] (List.ofArray entries))

    walk folder []

/// One decoded image: width, height, whether it is grey, and an RGBA8888 buffer at the target size.
type private Decoded =
    {
        Width: int
        Height: int
        Grey: bool
        Rgba: byte[]
    }

/// The matrix that maps stored pixels (w x h) to upright ones for an EXIF orientation (1-8).
let private orientation (origin: SKEncodedOrigin) (w: int) (h: int) =
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
let private upright (origin: SKEncodedOrigin) (stored: SKBitmap) (w: int) (h: int) =
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
let private decodeStream (file: string) (stream: Stream) (length: int64) (size: int) : Result<Decoded, DataError> =
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
let private decodeBytes (file: string) (bytes: byte[]) (size: int) =
    use stream = new MemoryStream(bytes, false)
    decodeStream file stream bytes.LongLength size

/// Decodes one file (see decodeStream): only a regular file of at most Files.Limits.imageBytes is opened, and
/// only its header is read before its dimensions are checked.
let private decode (file: string) (size: int) : Result<Decoded, DataError> =
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
let private planes (rgba: byte[]) (pixels: int) (channels: int) (dest: byte[]) (offset: int) =
    if channels = 1 then
        for i in 0 .. pixels - 1 do
            let r, g, b = int rgba[4 * i], int rgba[4 * i + 1], int rgba[4 * i + 2]
            dest[offset + i] <- byte ((299 * r + 587 * g + 114 * b + 500) / 1000)
    else
        for c in 0..2 do
            for i in 0 .. pixels - 1 do
                dest[offset + c * pixels + i] <- rgba[4 * i + c]

/// A decoded image as `channels` x H x W bytes; with size 0 its stored size must be `height` x `width`.
let private prepared (size: int) (channels: int) (height: int) (width: int) (name: string) (d: Decoded) =
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

/// One encoded image (PNG, JPEG, BMP, WebP; `name` names it in errors) as `channels` x H x W bytes the way a
/// folder dataset read with `size` (0: stored size) holds it; with size 0 its stored size must be `height` x
/// `width`.
let imageBytes (size: int) (channels: int) (height: int) (width: int) (name: string) (bytes: byte[]) =
    decodeBytes name bytes size
    |> Result.bind (prepared size channels height width name)

/// One image file as imageBytes reads it (see decode: regular files only, bounded).
let imageFile (size: int) (channels: int) (height: int) (width: int) (file: string) =
    decode file size |> Result.bind (prepared size channels height width file)

/// Decodes `files` (absolute paths) into one uint8 N x C x H x W array, in parallel, each image into its own
/// slot (so the result does not depend on the thread count). Under SkipBad the failures are left out and
/// returned; otherwise the first failure in file order is the error.
let private decodeAll (files: string[]) (options: ImageOptions) =
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

/// Where decoded folders are cached: $WAAL_IMAGE_CACHE ("off": no cache), else $XDG_CACHE_HOME/waal/images,
/// else ~/.cache/waal/images.
let cacheFolder () =
    let env (name: string) =
        Environment.GetEnvironmentVariable name
        |> Option.ofObj
        |> Option.filter (fun v -> v <> "")

    match env "WAAL_IMAGE_CACHE" with
    | Some "off" -> None
    | Some dir -> Some dir
    | None ->
        let root =
            env "XDG_CACHE_HOME"
            |> Option.defaultValue (
                Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".cache")
            )

        Some(Path.Combine(root, "waal", "images"))

let private cacheMagic = "WAALIMG1"B

/// The cache key of decoding `files` with `options`: every file's path, size and modification time, so editing,
/// adding, removing or touching a file makes a new key.
let private cacheKey (files: string[]) (options: ImageOptions) =
    let text = StringBuilder()
    text.Append($"waal-images/1|{options.Size}|{options.Channels}|") |> ignore

    for f in files do
        let info = FileInfo f

        text.Append(f).Append('|').Append(info.Length).Append('|').Append(info.LastWriteTimeUtc.Ticks).Append('\n')
        |> ignore

    use sha = Security.Cryptography.SHA256.Create()
    sha.ComputeHash(Encoding.UTF8.GetBytes(text.ToString())) |> Convert.ToHexString

/// Decoded pixels: in memory, or rows of the decode cache file.
type private Pixels =
    | InMemory of byte[]
    | Stored of PixelFile

/// With the channels known (1 or 3) and a cache file to write: decodes `files` a chunk at a time straight into
/// the cache file at `path`, so that the first pass holds one chunk of decoded images in memory, not the whole
/// folder (at a backbone's 256 x 256 that is 196 KB an image). True when every file decoded to the same size and
/// the file was written; false (nothing left behind) on any failure, odd size or I/O error: the in-memory pass
/// then runs and decides exactly as it does without a cache.
let private streamDecode (files: string[]) (options: ImageOptions) (path: string) =
    let chunk = 256
    let channels = options.Channels
    let tmp = path + $".{Environment.ProcessId}.tmp"

    try
        Directory.CreateDirectory(Path.GetDirectoryName path) |> ignore
        let mutable size = None
        let mutable ok = true

        do
            use stream = File.Create tmp
            stream.Write(cacheMagic, 0, cacheMagic.Length)
            let mutable start = 0

            while ok && start < files.Length do
                let n = min chunk (files.Length - start)
                let results = Array.zeroCreate<Result<Decoded, DataError>> n

                Parallel.For(0, n, (fun k -> results[k] <- decode files[start + k] options.Size))
                |> ignore

                for r in results do
                    match ok, r, size with
                    | false, _, _ -> ()
                    | _, Error _, _ -> ok <- false
                    | _, Ok d, None ->
                        let w, h =
                            if options.Size > 0 then
                                options.Size, options.Size
                            else
                                d.Width, d.Height

                        size <- Some(w, h)

                        for v in [ channels; h; w ] do
                            stream.Write(BitConverter.GetBytes v, 0, 4)
                    | _, Ok d, Some(w, h) when options.Size = 0 && (d.Width, d.Height) <> (w, h) -> ok <- false
                    | _ -> ()

                    match ok, r, size with
                    | true, Ok d, Some(w, h) ->
                        let plane = Array.zeroCreate<byte>(channels * w * h)
                        planes d.Rgba (w * h) channels plane 0
                        stream.Write(plane, 0, plane.Length)
                    | _ -> ()

                start <- start + n

        if ok && files.Length > 0 then
            File.Move(tmp, path, true)
            true
        else
            File.Delete tmp
            false
    with
    | :? IOException
    | :? UnauthorizedAccessException ->
        (try
            File.Delete tmp
         with _ ->
             ())

        false

/// decodeAll through the cache: a folder decoded once (with nothing skipped) is read back as one uint8 file on
/// the next run. The cache is best effort: an unreadable, short or foreign cache file is ignored, and a cache
/// that cannot be written is skipped.
let private cachedDecode (files: string[]) (options: ImageOptions) =
    let path =
        cacheFolder ()
        |> Option.bind (fun dir ->
            try
                Some(Path.Combine(dir, cacheKey files options + ".u8"))
            with
            | :? IOException
            | :? UnauthorizedAccessException -> None)

    // A valid cache file's pixels stay in it: the dataset reads them a batch at a time (PixelFile), so a pool's
    // pixels are never all in memory.
    let openStored (p: string) (count: int) =
        // Only a regular file is a cache file (anything else at its name is ignored, never waited on).
        match Files.openRegular p with
        | Error _ -> None
        | Ok(handle, _) ->
            let header = Array.zeroCreate<byte>(cacheMagic.Length + 12)

            let valid =
                try
                    if
                        RandomAccess.Read(handle, Span header, 0L) <> header.Length
                        || header[.. cacheMagic.Length - 1] <> cacheMagic
                    then
                        None
                    else
                        let int32At (o: int) = BitConverter.ToInt32(header, o)
                        let c, h, w = int32At 8, int32At 12, int32At 16

                        if
                            c < 1
                            || h < 1
                            || w < 1
                            || RandomAccess.GetLength handle
                               <> int64 header.Length + int64 count * int64 c * int64 h * int64 w
                        then
                            None
                        else
                            Some(
                                {
                                    Path = p
                                    Handle = handle
                                    Offset = int64 header.Length
                                    RowBytes = c * h * w
                                    Rows = Array.init count id
                                },
                                c,
                                h,
                                w
                            )
                with
                | :? IOException
                | :? UnauthorizedAccessException -> None

            if valid.IsNone then
                handle.Dispose()

            valid

    let fromCache =
        path
        |> Option.bind (fun p ->
            try
                if File.Exists p then openStored p files.Length else None
            with
            | :? IOException
            | :? UnauthorizedAccessException -> None)

    // With the channels known, the first pass streams into the cache file.
    let streamed =
        match fromCache, path with
        | None, Some p when options.Channels <> 0 && streamDecode files options p -> openStored p files.Length
        | _ -> None

    match fromCache, streamed with
    | Some(stored, c, h, w), _ -> Ok((Stored stored, [], c, h, w, Array.init files.Length id), true)
    | None, Some(stored, c, h, w) -> Ok((Stored stored, [], c, h, w, Array.init files.Length id), false)
    | None, None ->
        decodeAll files options
        |> Result.map (fun (images, skipped, c, h, w, kept) ->
            let written =
                match path with
                | Some p when skipped.IsEmpty && kept.Length = files.Length && kept.Length > 0 ->
                    try
                        Directory.CreateDirectory(Path.GetDirectoryName p) |> ignore
                        let tmp = p + $".{Environment.ProcessId}.tmp"

                        do
                            use stream = File.Create tmp
                            stream.Write(cacheMagic, 0, cacheMagic.Length)

                            for v in [ c; h; w ] do
                                stream.Write(BitConverter.GetBytes v, 0, 4)

                            stream.Write(images, 0, images.Length)

                        File.Move(tmp, p, true)
                        openStored p files.Length
                    with
                    | :? IOException
                    | :? UnauthorizedAccessException -> None
                | _ -> None

            match written with
            | Some(stored, _, _, _) -> (Stored stored, skipped, c, h, w, kept), false
            | None -> (InMemory images, skipped, c, h, w, kept), false)

/// The dataset of the decoded files that were kept (labels and paths follow them), as a Read.
let private toRead
    (root: string)
    (files: string[])
    (labels: int[])
    (names: string[])
    ((pixels, skipped, channels, h, w, kept: int[]), fromCache)
    =
    if kept.Length = 0 then
        Error(NoImages(root, formats))
    else
        let labels = kept |> Array.map (fun i -> labels[i])

        match pixels with
        | InMemory images -> Dataset.create root images labels channels h w names.Length
        | Stored stored -> Dataset.createStored root stored labels channels h w names.Length
        |> Result.map (fun d ->
            {
                Data =
                    { d with
                        ClassNames = names
                        Files = kept |> Array.map (fun i -> relative root files[i])
                    }
                Skipped = skipped
                FromCache = fromCache
            })

/// Reads a folder of class folders. `classes`: the class names to use (a test folder must use the training
/// folder's); None: the sub-folders' names in ordinal order. Files directly in the folder (not in a class
/// folder) are refused; each class folder must hold at least one image unless SkipBad.
let read (options: ImageOptions) (classes: string[] option) (folder: string) : Result<Read, DataError> =
    if File.Exists folder then
        Error(WrongKind(folder, "a folder of class folders"))
    elif not (Directory.Exists folder) then
        Error(Missing folder)
    else
        let root = Path.GetFullPath folder

        let subfolders =
            try
                Ok(
                    Directory.GetFileSystemEntries root
                    |> Array.filter (fun p -> not ((Path.GetFileName p).StartsWith "."))
                )
            with
            | :? UnauthorizedAccessException as e -> Error(Unreadable(root, e.Message))
            | :? IOException as e -> Error(Unreadable(root, e.Message))

        subfolders
        |> Result.bind (fun entries ->
            match entries |> Array.tryFind File.Exists with
            | Some stray ->
                Error(
                    WrongKind(
                        stray,
                        "only class folders directly in the dataset folder (each image in the folder of its class)"
                    )
                )
            | None ->
                let found =
                    entries
                    |> Array.map Path.GetFileName
                    |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))

                // A class folder's name is a class name: checked where it enters, like every other (ClassNames).
                let badName =
                    found
                    |> Array.tryPick (fun n ->
                        if n.Contains '\uFFFD' then
                            Some(n, "is not valid UTF-8")
                        else
                            ClassNames.problem n
                            |> Option.map (fun p -> n, $"is not a usable class name: it {p}"))

                match badName with
                | Some(bad, why) -> Error(BadPath(Path.Combine(root, bad), $"the name {why}; rename it"))
                | None ->
                    let names = classes |> Option.defaultValue found

                    match found |> Array.tryFind (fun n -> not (Array.contains n names)) with
                    | Some extra ->
                        Error(
                            SizeMismatch(
                                Path.Combine(root, extra),
                                "class folder",
                                $"""one of the training classes ({String.Join(", ", names)})""",
                                $"'{extra}'"
                            )
                        )
                    | None when names.Length = 0 -> Error(NoImages(root, "one sub-folder per class"))
                    | None ->
                        // Each class folder's files, in order; a missing class folder (a test split without one
                        // class) simply has none.
                        let perClass =
                            names
                            |> Array.map (fun n ->
                                let dir = Path.Combine(root, n)

                                if Directory.Exists dir then filesBelow dir else Ok [])

                        match
                            perClass
                            |> Array.tryPick (fun r ->
                                match r with
                                | Error e -> Some e
                                | Ok _ -> None)
                        with
                        | Some e -> Error e
                        | None ->
                            let perClass =
                                perClass |> Array.map (Result.defaultValue []) |> Array.map Array.ofList

                            let emptyClass =
                                if classes.IsSome then
                                    None
                                else
                                    perClass |> Array.tryFindIndex (fun fs -> fs.Length = 0)

                            match emptyClass with
                            | Some c when not options.SkipBad -> Error(NoImages(Path.Combine(root, names[c]), formats))
                            | _ ->
                                let files, labels =
                                    perClass
                                    |> Array.indexed
                                    |> Array.collect (fun (c, fs) -> fs |> Array.map (fun f -> f, c))
                                    |> Array.unzip

                                cachedDecode files options |> Result.bind (toRead root files labels names))

/// A seeded, stratified split of `data` into (train, held out): in each class, `fraction` of its images
/// (rounded, at least one when the class has two or more) are held out, drawn by a permutation keyed by the
/// class; both parts keep the dataset's order.
let holdOut (fraction: float) (data: Dataset) =
    let heldOut = Array.zeroCreate data.Count

    for c in 0 .. data.Classes - 1 do
        let members =
            [|
                for i in 0 .. data.Count - 1 do
                    if data.Labels[i] = c then
                        yield i
            |]

        let n = members.Length

        let take =
            if n < 2 || fraction <= 0.0 then
                0
            else
                min (n - 1) (max 1 (int (Math.Round(fraction * float n, MidpointRounding.AwayFromZero))))

        let order = Rng.permutation (Rng.key 0L c (Rng.Named "holdout")) n

        for j in 0 .. take - 1 do
            heldOut[members[order[j]]] <- true

    let pick keep =
        Array.init data.Count id |> Array.filter (fun i -> heldOut[i] = keep)

    Dataset.select (pick false) data, Dataset.select (pick true) data

/// Reads a folder of images whose classes nobody knows yet (a person or an oracle will say): every image file
/// below `folder` (recursively, ordinal order of the relative paths, hidden entries skipped), labels 0 as
/// placeholders, the given class names.
let readImages (options: ImageOptions) (classes: string[]) (folder: string) : Result<Read, DataError> =
    if File.Exists folder then
        Error(WrongKind(folder, "a folder of images"))
    elif not (Directory.Exists folder) then
        Error(Missing folder)
    else
        match ClassNames.check classes with
        | Error m -> Error(Unsupported(folder, "classes", m))
        | Ok classes ->
            let root = Path.GetFullPath folder

            filesBelow root
            |> Result.bind (fun files ->
                let files = Array.ofList files

                if files.Length = 0 then
                    Error(NoImages(root, formats))
                else
                    cachedDecode files options
                    |> Result.bind (toRead root files (Array.zeroCreate files.Length) classes))
