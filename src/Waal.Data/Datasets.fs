/// The dataset registry: each entry names a dataset and gives its reader, its normalisation, its default folder
/// and the facts its option defaults depend on. A new dataset joins by being listed here; nothing else matches
/// dataset names.
module Waal.Data.Datasets

open System
open System.IO
open Waal.Core

/// Where a dataset's files are and how a folder's files become images.
type Source =
    {
        DataDir: string
        /// A folder dataset's test folder ("": held out from DataDir).
        TestDir: string
        Images: ImageOptions
    }

/// A dataset's two splits, as read.
type Loaded =
    {
        Train: Dataset
        Test: Dataset
        /// Files skipped under --skip-bad-images, with why.
        Skipped: DataError list
    }

/// One registered dataset.
type Entry =
    {
        /// The name and the defaults the option table reads.
        Profile: DatasetProfile
        /// What the folder must hold, in words (for help and errors).
        Files: string
        /// The folder used when none is given, if there is a standard one.
        DefaultFolder: unit -> string option
        /// Reads the training and test splits.
        Load: Source -> Result<Loaded, DataError>
        /// The per-channel constants the images are normalised with, given the pool.
        Normalisation: Dataset -> Normalisation
        /// Whether the images are files in folders (the image options apply).
        IsFolder: bool
    }

    /// The registered name.
    member e.Name = e.Profile.Name

let private both
    (names: string[])
    (train: string -> Result<Dataset, DataError>)
    (test: string -> Result<Dataset, DataError>)
    =
    fun (source: Source) ->
        train source.DataDir
        |> Result.bind (fun tr ->
            test source.DataDir
            |> Result.map (fun te ->
                {
                    Train = Dataset.withClassNames names tr
                    Test = Dataset.withClassNames names te
                    Skipped = []
                }))

/// A folder of class folders; the test split from TestDir or held out.
let private loadFolder (source: Source) =
    Folder.read source.Images None source.DataDir
    |> Result.bind (fun train ->
        if source.TestDir = "" then
            let tr, te = Folder.holdOut source.Images.Holdout train.Data

            Ok
                {
                    Train = tr
                    Test = te
                    Skipped = train.Skipped
                }
        else
            Folder.read
                { source.Images with
                    Channels = train.Data.Channels
                }
                (Some train.Data.ClassNames)
                source.TestDir
            |> Result.bind (fun test ->
                let t, d = test.Data, train.Data

                if (t.Height, t.Width) <> (d.Height, d.Width) then
                    Error(
                        SizeMismatch(
                            source.TestDir,
                            "image size",
                            $"{d.Width}x{d.Height} like the training folder (or give --image-size N)",
                            $"{t.Width}x{t.Height}"
                        )
                    )
                else
                    Ok
                        {
                            Train = d
                            Test = t
                            Skipped = train.Skipped @ test.Skipped
                        }))

let private fixedNorm (n: Normalisation) = fun (_: Dataset) -> n

/// Every registered dataset.
let all: Entry list =
    [
        {
            Profile =
                {
                    Name = "fashion-mnist"
                    Momentum = 0.5
                    BaselineEpochs = 10
                    BaselineLearningRate = 0.01
                }
            Files = "the four official IDX files (train-/t10k-images-idx3-ubyte, -labels-idx1-ubyte, gzip or raw)"
            DefaultFolder =
                fun () ->
                    Environment.GetEnvironmentVariable "WAAL_FASHION_MNIST"
                    |> Option.ofObj
                    |> Option.filter (fun s -> s <> "")
                    |> Option.defaultValue "/usr/share/datasets/fashion-mnist"
                    |> Some
            Load =
                fun source ->
                    Load.fashionMnist source.DataDir
                    |> Result.map (fun (tr, te) ->
                        let names =
                            [|
                                "T-shirt/top"
                                "Trouser"
                                "Pullover"
                                "Dress"
                                "Coat"
                                "Sandal"
                                "Shirt"
                                "Sneaker"
                                "Bag"
                                "Ankle boot"
                            |]

                        {
                            Train = Dataset.withClassNames names tr
                            Test = Dataset.withClassNames names te
                            Skipped = []
                        })
            Normalisation = fixedNorm Normalisation.fashionMnist
            IsFolder = false
        }
        {
            Profile =
                {
                    Name = "cifar10"
                    Momentum = 0.3
                    BaselineEpochs = 20
                    BaselineLearningRate = 0.05
                }
            Files = "the binary version's data_batch_1..5.bin and test_batch.bin"
            DefaultFolder = fun () -> None
            Load =
                both
                    [|
                        "airplane"
                        "automobile"
                        "bird"
                        "cat"
                        "deer"
                        "dog"
                        "frog"
                        "horse"
                        "ship"
                        "truck"
                    |]
                    Cifar10.readTrain
                    Cifar10.readTest
            Normalisation = fixedNorm Normalisation.cifar10
            IsFolder = false
        }
        {
            Profile =
                {
                    Name = "svhn"
                    Momentum = 0.5
                    BaselineEpochs = 20
                    BaselineLearningRate = 0.01
                }
            Files = "train_32x32.mat and test_32x32.mat"
            DefaultFolder = fun () -> None
            Load =
                both (Array.init 10 string) (fun f -> SvhnMat.read (Path.Combine(f, "train_32x32.mat"))) (fun f ->
                    SvhnMat.read (Path.Combine(f, "test_32x32.mat")))
            Normalisation = fixedNorm Normalisation.svhn
            IsFolder = false
        }
        {
            // The option defaults of a folder are Fashion-MNIST's (a small network, SGD 0.01/0.5 for the
            // reference preset); the recommended preset overrides the optimiser anyway.
            Profile =
                {
                    Name = "folder"
                    Momentum = 0.5
                    BaselineEpochs = 10
                    BaselineLearningRate = 0.01
                }
            Files =
                "one sub-folder per class (its name is the class name) of PNG, JPEG, BMP or WebP images; --test-dir the same for the test split"
            DefaultFolder = fun () -> None
            Load = loadFolder
            Normalisation = Normalisation.compute
            IsFolder = true
        }
    ]

/// The registered names, in registration order.
let names = all |> List.map (fun e -> e.Name)

/// The entry of that name (case-insensitive).
let tryFind (name: string) =
    all
    |> List.tryFind (fun e -> String.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase))

/// The entry of that name, or a message listing the known ones.
let find (name: string) : Result<Entry, string> =
    match tryFind name with
    | Some e -> Ok e
    | None -> Error $"""unknown dataset '{name}'; expected one of {String.Join(", ", names)}"""

/// The option-default profile of that dataset (what spec.json's reader and every front end need).
let profileOf (name: string) =
    find name |> Result.map (fun e -> e.Profile)

/// The configuration of a dataset, a strategy and a preset (every option at its default), with the dataset's
/// default folder.
let defaultsFor (name: string) (strategy: string) (preset: Preset) =
    find name
    |> Result.map (fun e ->
        let c = Options.defaults e.Profile strategy preset

        { c with
            Settings =
                { c.Settings with
                    DataDir = e.DefaultFolder() |> Option.defaultValue ""
                }
        })

/// The recommended configuration of a dataset and a strategy (what `waal run` does with no other option).
let defaults (name: string) (strategy: string) =
    defaultsFor name strategy RecommendedPreset

/// The reference-preset configuration of a dataset and a strategy (the authors' settings at their CPU budgets).
let reference (name: string) (strategy: string) =
    defaultsFor name strategy ReferencePreset

/// Reads spec.json with the registry's profiles.
let readSpec (text: string) = SpecJson.ofJson profileOf text

/// Reads a spec.json file (a regular file within Files.Limits.documentBytes); a file that cannot be read is one
/// error on the field "document".
let readSpecFile (path: string) =
    match Files.readText "spec.json" Files.Limits.documentBytes path with
    | Ok text -> readSpec text
    | Error e ->
        Error
            [
                {
                    Field = "document"
                    Message = DataError.message e
                }
            ]
