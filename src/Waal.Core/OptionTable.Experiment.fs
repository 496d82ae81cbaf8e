/// The option table's first room: the dataset, the experiment's protocol and the run settings. Each entry names
/// the option, what it accepts, the field it sets (a lens of Lens.fs), its help and its default
/// (OptionDef.fs's words).
module internal Waal.Core.OptionTable.Experiment

open Waal.Core

open System

/// A list of class indices as canonical text: sorted, distinct, comma-separated ("" none).
let private formatClasses (classes: int list) =
    String.Join(",", classes |> List.distinct |> List.sort)

let private parseClasses (text: string) =
    let parts =
        text.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)

    let parsed = parts |> Array.map parseInt

    match Array.tryFindIndex (fun (v: int64 option) -> v.IsNone || v.Value < 0L || v.Value > 9999L) parsed with
    | Some i -> Error $"expected class indices separated by commas, e.g. 0,4,6, found '{parts[i]}'"
    | None ->
        Ok(
            parsed
            |> Array.map (fun v -> int v.Value)
            |> List.ofArray
            |> List.distinct
            |> List.sort
        )

let private parsePool (text: string) =
    if text.Trim().ToLowerInvariant() = "all" then
        Ok None
    else
        match parseInt text with
        | Some v when v >= 1L && v <= int64 Int32.MaxValue -> Ok(Some(int v))
        | Some v -> Error $"expected an integer >= 1 or all, found {v}"
        | None -> Error $"expected an integer >= 1 or all, found '{text}'"

let private formatPool (pool: int option) =
    match pool with
    | Some p -> string p
    | None -> "all"

/// The first options, in the order front ends list them.
let head: OptionDef list =
    [
        text
            "dataset"
            "a dataset name"
            Lens.dataset
            "the dataset (its registry entry picks the reader, normalisation and network)."
        |> required
        |> lowered
        |> defaultsBy _.Profile.Name
        |> readFirst
        text
            "data-dir"
            "a folder"
            Lens.dataDir
            "the folder of the dataset's files (fashion-mnist: $WAAL_FASHION_MNIST or Debian's folder)."
        |> setting
        |> defaults ""
        text
            "test-dir"
            "a folder"
            Lens.testDir
            "a folder dataset's test split: a folder with the same class folders (`--test folder=DIR` is the same). Without it, --holdout of each class is held out."
        |> setting
        |> defaults ""
        |> later
        |> folderOnly
        integer
            "image-size"
            (between 0 4096)
            Lens.imageSize
            "folder datasets: resize each image's shorter side to N and keep the centre N x N (0: every image at its stored size, which must be the same)."
        |> defaults 0
        |> later
        |> folderOnly
        integer
            "channels"
            (between 0 3)
            Lens.channels
            "folder datasets: 1 (grey), 3 (RGB) or 0 (1 when every image is grey, else 3)."
        |> expects "0, 1 or 3"
        |> only (fun c -> c <> 2)
        |> defaults 0
        |> later
        |> folderOnly
        flag
            "skip-bad-images"
            Lens.skipBad
            "folder datasets: skip (and count in the run's dataset.json) files that cannot be decoded instead of stopping."
        |> defaults false
        |> later
        |> folderOnly
        number
            "holdout"
            (Open 0.0)
            (Open 1.0)
            Lens.holdout
            "folder datasets without --test-dir: the fraction of each class held out as the test split (seeded, stratified, the same for every seed)."
        |> defaults 0.2
        |> later
        |> folderOnly
        custom
            "stop-when"
            Text
            Stopping.expected
            Lens.stopRules
            Stopping.parse
            Stopping.toText
            "stop early when a rule fires after a round: labels>=N (a label budget), kappa>=T[/W] or agreement>=T[/W] (consecutive rounds' predictions on the stop set, mean over the last W = 3 pairs), uncertainty<=T (mean 1 - max p on the stop set); comma-separated, the first to fire ends the run."
        |> defaults []
        |> later
        integer
            "stop-set"
            (between 1 1000000)
            Lens.stopSet
            "the stop set's size: pool items (drawn once) whose predictions the stopping signals compare across rounds."
        |> defaults 1000
        |> later
        choice
            "network"
            (Architecture.choices |> List.map (fun n -> n, n))
            Lens.network
            "the network: auto (chosen by the dataset: fashion-mnist small-cnn, cifar10 and svhn vgg16, a folder resnet, with --backbone head), small-cnn (1x28x28 only), vgg16 (3x32x32 only), resnet (any size >= 8), head (a backbone's embeddings)."
        |> defaults "auto"
        |> later
        text
            "backbone"
            "a TorchScript file"
            Lens.backbone
            "folder datasets: a pretrained image model (TorchScript, with its preparation in a .json beside it; docs/backbones.md): every image is embedded once and each round trains the head on the embeddings (\"\": none)."
        |> defaults ""
        |> later
        |> folderOnly
        text
            "strategy"
            "a strategy name"
            Lens.strategy
            "the query strategy (waal or a baseline; see the README's table)."
        |> required
        |> lowered
        |> defaultsBy _.Strategy
        |> readFirst
        integer "initial" (from 1) Lens.initial "initial random labels."
        |> defaults 1000

        integer
            "query"
            (from 1)
            Lens.query
            "labels per query: the round's batch, unless a label budget cuts it (the paper's imbalance coefficient reads the batch queried)."
        |> defaults 1000

        integer "rounds" (from 0) Lens.rounds "query rounds; rounds 0..R are evaluated."
        |> defaults 5
        longInteger
            "seed"
            Lens.seed
            "the seed of every random stream (initial draw, shuffles, initialisation, dropout)."
        |> defaults 1L
        custom
            "pool"
            IntegerOrAll
            "an integer >= 1 or all"
            Lens.pool
            parsePool
            formatPool
            "the first P training images form the pool."
        |> defaults None
        integer "threads" (between 0 1024) Lens.threads "libtorch threads (0: libtorch's choice)."
        |> expects "an integer in 0..1024 (0: libtorch's default)"
        |> setting
        |> defaults 0
        choice
            "device"
            [ AutoDevice, "auto"; CpuDevice, "cpu"; CudaDevice, "cuda" ]
            Lens.device
            "where to compute (auto: CUDA when available)."
        |> setting
        |> defaults AutoDevice
        integer
            "score-batch"
            (from 1)
            Lens.scoreBatch
            "images per forward pass when scoring (250: measured, see docs/performance.md)."
        |> setting
        |> defaults 250
    ]

/// The experiment's options added later: a validation split, a redundant or an imbalanced pool.
let pool: OptionDef list =
    [
        integer
            "validation"
            (from 0)
            Lens.validation
            "the next V training images after the pool: a validation split evaluated every round beside the test set (rounds.csv's validation_accuracy), to choose settings without the test set (0: none)."
        |> defaults 0
        |> later
        integer
            "repeat"
            (between 1 10)
            Lens.repeat
            "each pool image R times, each copy with Gaussian noise (--repeat-noise): a redundant pool, as Kirsch et al.'s Repeated-MNIST (1: the pool as it is)."
        |> defaults 1
        |> later
        number
            "repeat-noise"
            (Closed 0.0)
            (Closed 1.0)
            Lens.repeatNoise
            "the standard deviation of the noise added to each copy of a repeated pool, as a fraction of the pixel range (0.03: about BatchBALD's 0.1 in normalised MNIST units)."
        |> defaults 0.03
        |> later
        custom
            "rare-classes"
            Text
            "class indices separated by commas, e.g. 0,4,6"
            Lens.rareClasses
            parseClasses
            formatClasses
            "an imbalanced pool: these classes keep only --rare-keep of their pool images (the first, in pool order); the test and validation splits are untouched (empty: none)."
        |> defaults []
        |> later
        number
            "rare-keep"
            (Open 0.0)
            (Closed 1.0)
            Lens.rareKeep
            "the fraction of each --rare-classes class's pool images kept (rounded up, at least one)."
        |> defaults 0.1
        |> later
    ]
