/// Finding and loading datasets by format or by name.
module Waal.Data.Load

open System.IO

/// The on-disk formats.
type Format =
    | Idx
    | Cifar10
    | Svhn

/// Parses a format name as the CLI spells it (idx, cifar10, svhn).
let parseFormat (name: string) =
    match name.ToLowerInvariant() with
    | "idx" -> Some Idx
    | "cifar10"
    | "cifar-10" -> Some Cifar10
    | "svhn" -> Some Svhn
    | _ -> None

let private idxTrainImages = "train-images-idx3-ubyte"

/// The first existing file among `names` in `folder` (with or without .gz), if any.
let private firstIn (folder: string) (names: string list) =
    names
    |> List.collect (fun n -> [ n + ".gz"; n ])
    |> List.map (fun n -> Path.Combine(folder, n))
    |> List.tryFind File.Exists

/// Guesses the format of a file or folder: .mat is SVHN, .bin or a folder of data_batch_N.bin is CIFAR-10,
/// anything else IDX (whose magic the reader then checks).
let detect (path: string) : Result<Format, DataError> =
    if Directory.Exists path then
        if File.Exists(Path.Combine(path, Cifar10.trainFiles.Head)) then
            Ok Cifar10
        elif File.Exists(Path.Combine(path, "train_32x32.mat")) then
            Ok Svhn
        elif (firstIn path [ idxTrainImages ]).IsSome then
            Ok Idx
        else
            Error(
                WrongKind(
                    path,
                    "a data file, or a folder holding IDX files (train-images-idx3-ubyte[.gz]), CIFAR-10 batches (data_batch_1.bin ..) or SVHN (train_32x32.mat)"
                )
            )
    elif not (File.Exists path) then
        Error(Missing path)
    else
        match Path.GetExtension(path).ToLowerInvariant() with
        | ".mat" -> Ok Svhn
        | ".bin" -> Ok Cifar10
        | _ -> Ok Idx

/// Loads what a path names in the given format. A folder means its training split; for IDX the labels file is
/// `labels` when given, else the one beside the images by the standard names.
let load (format: Format) (path: string) (labels: string option) : Result<Dataset, DataError> =
    let isDir = Directory.Exists path

    match format with
    | Idx ->
        let images =
            if isDir then
                firstIn path [ idxTrainImages ]
                |> Option.defaultValue (Path.Combine(path, idxTrainImages + ".gz"))
            else
                path

        Idx.load 10 images (labels |> Option.defaultWith (fun () -> Idx.labelsBeside images))
    | Cifar10 ->
        if isDir then
            Cifar10.readTrain path
        else
            Cifar10.readFile path
    | Svhn ->
        SvhnMat.read (
            if isDir then
                Path.Combine(path, "train_32x32.mat")
            else
                path
        )

/// Loads a file or folder, detecting its format unless one is given.
let inspect (format: Format option) (path: string) (labels: string option) =
    match format with
    | Some f -> Ok f
    | None -> detect path
    |> Result.bind (fun f -> load f path labels)

/// Fashion-MNIST's training and test splits from a folder of the four official IDX files (gzip or raw).
let fashionMnist (folder: string) : Result<Dataset * Dataset, DataError> =
    let split prefix =
        match firstIn folder [ $"{prefix}-images-idx3-ubyte" ] with
        | None -> Error(Missing(Path.Combine(folder, $"{prefix}-images-idx3-ubyte.gz")))
        | Some images -> Idx.load 10 images (Idx.labelsBeside images)

    if not (Directory.Exists folder) then
        Error(
            if File.Exists folder then
                WrongKind(folder, "the folder holding the four Fashion-MNIST IDX files, found a file")
            else
                Missing folder
        )
    else
        split "train"
        |> Result.bind (fun train -> split "t10k" |> Result.map (fun test -> train, test))
