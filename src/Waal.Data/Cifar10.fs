/// CIFAR-10's binary version: data_batch_1..5.bin (training) and test_batch.bin, each a sequence of records of
/// one label byte (0..9) and 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows of 32), already CHW.
module internal Waal.Data.Cifar10

open System.IO
open Waal.Data.Binary

/// Bytes per record: 1 label + 3 x 32 x 32 pixels.
[<Literal>]
let RecordSize = 3073

/// The training batch file names, in order.
let trainFiles = [ for i in 1..5 -> $"data_batch_{i}.bin" ]

/// The test batch file name.
let testFile = "test_batch.bin"

/// Reads one batch file. Its size must be a whole number of records (the format has no header to check).
let readFile (path: string) : Result<Dataset, DataError> =
    checkFile path
    |> Result.bind (fun length ->
        if length % int64 RecordSize <> 0L then
            let whole = length / int64 RecordSize

            Error(
                Truncated(
                    path,
                    whole * int64 RecordSize,
                    $"a whole number of {RecordSize}-byte records (1 label + 3072 pixels)",
                    $"{length} bytes = {whole} records and {length % int64 RecordSize} bytes more"
                )
            )
        else
            withFile path (fun stream -> readUpTo path 0L stream length)
            |> Result.bind (fun bytes ->
                let n = int (length / int64 RecordSize)

                match Seq.tryFind (fun i -> bytes[i * RecordSize] > 9uy) (seq { 0 .. n - 1 }) with
                | Some i ->
                    Error(LabelOutOfRange(path, int64 i * int64 RecordSize, int64 bytes[i * RecordSize], "0..9"))
                | None ->
                    let images = Array.zeroCreate (n * (RecordSize - 1))
                    let labels = Array.zeroCreate n

                    for i in 0 .. n - 1 do
                        labels[i] <- int bytes[i * RecordSize]

                        System.Buffer.BlockCopy(
                            bytes,
                            i * RecordSize + 1,
                            images,
                            i * (RecordSize - 1),
                            RecordSize - 1
                        )

                    Dataset.create path images labels 3 32 32 10))

/// Reads the named batch files of a folder and concatenates them.
let readFolder (folder: string) (files: string list) : Result<Dataset, DataError> =
    if File.Exists folder then
        Error(WrongKind(folder, "a folder holding the CIFAR-10 batch files, found a file"))
    elif not (Directory.Exists folder) then
        Error(Missing folder)
    else
        let rec go acc rest =
            match rest with
            | [] -> Dataset.concat folder (List.rev acc)
            | f :: tail ->
                match readFile (Path.Combine(folder, f)) with
                | Ok d -> go (d :: acc) tail
                | Error e -> Error e

        go [] files

/// The 50,000 training images of a CIFAR-10 folder.
let readTrain (folder: string) = readFolder folder trainFiles

/// The 10,000 test images of a CIFAR-10 folder.
let readTest (folder: string) = readFolder folder [ testFile ]
