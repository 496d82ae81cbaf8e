/// Image folders: one sub-folder per class (its name is the class name), PNG, JPEG, BMP and WebP files of any
/// size and channel count, decoded with SkiaSharp into the same compact uint8 NCHW layout as the file formats.
module Waal.Data.Folder

open System
open System.Collections.Generic
open System.IO
open System.Text
open System.Threading.Tasks
open Waal.Core
open Waal.Data.ImageDecode

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
let formats = ImageDecode.formats

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

/// One encoded image (PNG, JPEG, BMP, WebP; `name` names it in errors) as `channels` x H x W bytes the way a
/// folder dataset read with `size` (0: stored size) holds it; with size 0 its stored size must be `height` x
/// `width`.
let imageBytes (size: int) (channels: int) (height: int) (width: int) (name: string) (bytes: byte[]) =
    decodeBytes name bytes size
    |> Result.bind (prepared size channels height width name)

/// One image file as imageBytes reads it (see decode: regular files only, bounded).
let imageFile (size: int) (channels: int) (height: int) (width: int) (file: string) =
    decode file size |> Result.bind (prepared size channels height width file)

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

    try
        AtomicFile.writeWith path (fun stream ->
            let mutable size = None
            let mutable ok = true
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

            if ok && files.Length > 0 then Ok() else Error())
        |> Result.isOk
    with
    | :? IOException
    | :? UnauthorizedAccessException -> false

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
                        AtomicFile.writeWith p (fun stream ->
                            stream.Write(cacheMagic, 0, cacheMagic.Length)

                            for v in [ c; h; w ] do
                                stream.Write(BitConverter.GetBytes v, 0, 4)

                            Ok(stream.Write(images, 0, images.Length)))
                        |> Result.defaultWith id

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
