/// One opened experiment: a configuration checked against its data, and what a round runs on (the device, the
/// normalisation, the pool's, test split's and validation split's tensors, the stop set, the strategy's context
/// and the one `Learner`). The runner is a workbench, the hidden-label oracle and the persistence loop; the
/// session is a workbench and its state; query-times is a workbench and one training. Nothing here writes a file.
module Waal.Experiments.Workbench

open System
open TorchSharp
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Strategies

/// What a checked configuration runs on.
type Inputs =
    {
        Config: Configuration
        Entry: Datasets.Entry
        Strategy: Strategy
        /// The pool's images (with --repeat, every copy of each).
        PoolImages: Dataset
        /// How many distinct images the pool holds (its size over --repeat).
        Originals: int
        /// The test split; a session may have none.
        Test: Dataset option
        /// The training images after the pool (--validation); None without one.
        Validation: Dataset option
        /// Files of a folder dataset that could not be read and were skipped (--skip-bad-images).
        Skipped: DataError list
        /// The pool's normalisation (computed once: a folder's is a pass over every pixel; with a backbone, the
        /// backbone's own, from its preparation file).
        Normalisation: Normalisation
        /// With --backbone: how its preparation file says the images are prepared (they are decoded so).
        Preprocessing: Backbone.Preprocessing option
    }

    /// What the networks' inputs are, for "auto": a backbone's embeddings, a folder's images or a reference
    /// dataset's.
    member i.NetworkInputs =
        if i.Config.Spec.Backbone <> "" then
            NetworkInputs.Embeddings
        elif i.Entry.IsFolder then
            NetworkInputs.Folder
        else
            NetworkInputs.Reference

    /// What the pool's indices and labels stand for.
    member i.Naming: Naming option =
        Some
            {
                ClassNames = i.PoolImages.ClassNames
                Files = i.PoolImages.Files
            }

/// Where a configuration's dataset is and how a folder's files become images.
let sourceOf (config: Configuration) : Datasets.Source =
    {
        DataDir = config.Settings.DataDir
        TestDir = config.Settings.TestDir
        Images = config.Spec.Images
    }

/// The image options a dataset stored in files cannot honour (empty for folder datasets).
let private folderOnly (entry: Datasets.Entry) (config: Configuration) : SpecError list =
    if entry.IsFolder then
        []
    else
        let given = Options.defaults entry.Profile config.Spec.Strategy config.Spec.Preset

        [
            for o in Options.all do
                let v = o.Get config

                if o.FolderOnly && v <> o.Get given then
                    {
                        Field = o.Name
                        Message =
                            $"applies to folder datasets only; {config.Spec.Dataset} has its own test split and image shape (found '{v}')"
                    }
        ]

/// The options checked, the strategy and the dataset found in their registries.
let private check (config: Configuration) =
    match Options.validate config with
    | Error errors -> Error(SpecInvalid errors)
    | Ok config ->
        match Registry.tryFind config.Spec.Strategy, Datasets.find config.Spec.Dataset with
        | None, _ -> Error(UnknownStrategy config.Spec.Strategy)
        | _, Error message -> Error(SpecInvalid [ { Field = "dataset"; Message = message } ])
        | Some strategy, Ok entry -> Ok(config, entry, strategy)

/// The network the spec names, checked against the images' shape (with a backbone: that it is the head, for
/// embeddings whose width is known once the backbone is loaded).
let private checkNetwork (entry: Datasets.Entry) (spec: ExperimentSpec) (images: Dataset) =
    let inputs =
        if spec.Backbone <> "" then NetworkInputs.Embeddings
        elif entry.IsFolder then NetworkInputs.Folder
        else NetworkInputs.Reference

    let resolved =
        match inputs with
        | NetworkInputs.Embeddings -> Architecture.resolve spec.Network NetworkInputs.Embeddings 1 1 1
        | inputs -> Architecture.resolve spec.Network inputs images.Channels images.Height images.Width

    match resolved with
    | Error message -> Error(SpecInvalid [ { Field = "network"; Message = message } ])
    | Ok _ -> Ok()

/// With --backbone: its preparation file read, and the image options it replaces left at their defaults (the
/// backbone decides the size and channels).
let private preparation (config: Configuration) =
    let spec = config.Spec

    if spec.Backbone = "" then
        Ok None
    else
        match Backbone.readPreprocessing spec.Backbone with
        | Error e -> Error(BackboneFailed(e.File, e.Detail))
        | Ok p ->
            let file = Backbone.preprocessingFile spec.Backbone

            let replaced =
                [
                    if spec.Images.Size <> 0 then
                        {
                            Field = "image-size"
                            Message =
                                $"the backbone's preparation decides the size (resize {p.Resize}, crop {p.Crop}; {file}); leave --image-size at 0, found {spec.Images.Size}"
                        }
                    if spec.Images.Channels <> 0 then
                        {
                            Field = "channels"
                            Message =
                                $"the backbone's preparation decides the channels ({p.Channels}; {file}); leave --channels at 0, found {spec.Images.Channels}"
                        }
                ]

            if replaced.IsEmpty then
                Ok(Some p)
            else
                Error(SpecInvalid replaced)

/// preparation, and the backbone itself loaded and checked once (then released: it is loaded again, on the
/// run's device, when the images are embedded), so that a run refuses a model it cannot use before it writes
/// anything.
let private checkedPreparation (config: Configuration) =
    preparation config
    |> Result.bind (fun prep ->
        match prep with
        | None -> Ok None
        | Some _ ->
            match Backbone.load torch.CPU config.Spec.Backbone with
            | Error e -> Error(BackboneFailed(e.File, e.Detail))
            | Ok b ->
                (b :> IDisposable).Dispose()
                Ok prep)

/// The configuration the dataset is read with: with a backbone, its images decoded as its preparation says.
let private readingConfig (config: Configuration) (prep: Backbone.Preprocessing option) =
    match prep with
    | None -> config
    | Some p ->
        { config with
            Spec =
                { config.Spec with
                    Images = Backbone.imageOptions p config.Spec.Images
                }
        }

/// The pool's normalisation: the backbone's (its preparation) or the dataset's.
let private normalisationOf (entry: Datasets.Entry) (prep: Backbone.Preprocessing option) (pool: Dataset) =
    match prep with
    | Some p -> { Mean = p.Mean; Std = p.Std }
    | None -> entry.Normalisation pool

/// Inputs over data the caller holds (a session's pool and optional test set): no split, no repeat.
let ofData (config: Configuration) (pool: Dataset) (test: Dataset option) =
    check config
    |> Result.bind (fun (config, entry, strategy) ->
        checkedPreparation config
        |> Result.bind (fun prep ->
            checkNetwork entry config.Spec pool
            |> Result.map (fun () ->
                {
                    Config = config
                    Entry = entry
                    Strategy = strategy
                    PoolImages = pool
                    Originals = pool.Count
                    Test = test
                    Validation = None
                    Skipped = []
                    Normalisation = normalisationOf entry prep pool
                    Preprocessing = prep
                })))

/// How a configuration's folder is decoded: its image options, or the backbone's preparation.
let imageOptionsOf (config: Configuration) =
    preparation config
    |> Result.map (fun prep -> (readingConfig config prep).Spec.Images)

/// Loads the data a configuration names and checks the spec fits it: the pool (repeated with --repeat), the
/// test split, the validation split after the pool, the initial labels.
let load (config: Configuration) =
    check config
    |> Result.bind (fun (config, entry, strategy) ->
        let spec = config.Spec

        match folderOnly entry config, checkedPreparation config with
        | _ :: _ as errors, _ -> Error(SpecInvalid errors)
        | [], Error e -> Error e
        | [], Ok prep ->
            match entry.Load(sourceOf (readingConfig config prep)) with
            | Error e -> Error(DataFailed e)
            | Ok {
                     Train = train
                     Test = test
                     Skipped = skipped
                 } ->
                match checkNetwork entry spec train, spec.PoolSize with
                | Error e, _ -> Error e
                | Ok(), Some p when p > train.Count ->
                    Error(
                        DoesNotFit(
                            "pool",
                            $"the pool of {p} is larger than the {train.Count} training images of {spec.Dataset}"
                        )
                    )
                | Ok(), _ when spec.RareClasses |> List.exists (fun c -> c >= train.Classes) ->
                    let c = spec.RareClasses |> List.find (fun c -> c >= train.Classes)

                    Error(
                        DoesNotFit(
                            "rare-classes",
                            $"class {c} does not exist: {spec.Dataset} has classes 0..{train.Classes - 1}"
                        )
                    )
                | Ok(), _ ->
                    let taken = Dataset.take (spec.PoolSize |> Option.defaultValue train.Count) train

                    // An imbalanced pool: each rare class keeps the first ceil(keep x n) of its pool images.
                    let originals =
                        if spec.RareClasses.IsEmpty then
                            taken
                        else
                            let rare = Set.ofList spec.RareClasses
                            let seen = Array.zeroCreate<int> train.Classes

                            let quota =
                                Array.init train.Classes (fun c ->
                                    let n = taken.Labels |> Array.filter ((=) c) |> Array.length
                                    max 1 (int (ceil (spec.RareKeep * float n - 1e-9))))

                            let kept =
                                [|
                                    for i in 0 .. taken.Count - 1 do
                                        let c = taken.Labels[i]

                                        if not (rare.Contains c) || seen[c] < quota[c] then
                                            seen[c] <- seen[c] + 1
                                            yield i
                                |]

                            Dataset.select kept taken

                    if test.Count = 0 then
                        let field, how =
                            if config.Settings.TestDir = "" then
                                "holdout",
                                "the held-out part (--holdout) is empty: every class needs at least 2 images, or give --test-dir"
                            else
                                "test-dir", "the test folder holds no image"

                        Error(DoesNotFit(field, how))
                    elif spec.Validation > train.Count - taken.Count then
                        Error(
                            DoesNotFit(
                                "validation",
                                $"{spec.Validation} validation images do not fit after a pool of {taken.Count}: {spec.Dataset} has {train.Count} training images (give a smaller --pool)"
                            )
                        )
                    elif spec.Repeat > 1 && train.Stored.IsSome then
                        Error(
                            DoesNotFit(
                                "repeat",
                                $"{spec.Dataset}'s images are read from a folder's decode cache; a repeated pool is built in memory, for the datasets stored in one file (fashion-mnist, cifar10, svhn)"
                            )
                        )
                    elif spec.Initial > originals.Count * spec.Repeat then
                        Error(
                            DoesNotFit(
                                "initial",
                                $"{spec.Initial} initial labels do not fit in a pool of {originals.Count * spec.Repeat}"
                            )
                        )
                    else
                        let pool =
                            Dataset.repeat (Rng.key spec.Seed 0 Rng.RepeatNoise) spec.Repeat spec.RepeatNoise originals

                        Ok
                            {
                                Config = config
                                Entry = entry
                                Strategy = strategy
                                PoolImages = pool
                                Originals = originals.Count
                                Test = Some test
                                Validation =
                                    if spec.Validation > 0 then
                                        Some(
                                            Dataset.select
                                                (Array.init spec.Validation (fun i -> taken.Count + i))
                                                train
                                        )
                                    else
                                        None
                                Skipped = skipped
                                Normalisation = normalisationOf entry prep pool
                                Preprocessing = prep
                            })

/// A split's images on the device with its true labels.
type Split =
    {
        Labels: int[]
        Tensors: Tensors.ImageTensors
    }

/// An opened experiment: it owns the tensors and frees them when disposed.
[<Sealed>]
type Workbench
    internal
    (
        inputs: Inputs,
        device: torch.Device,
        pool: Tensors.ImageTensors,
        test: Split option,
        validation: Split option,
        backbone: Backbone.Recorded option
    ) =
    let config = inputs.Config
    let settings = config.Settings

    /// The network "auto" stands for, chosen by the dataset (checked when the inputs were made).
    let architecture =
        match
            Architecture.resolve inputs.Config.Spec.Network inputs.NetworkInputs pool.Channels pool.Height pool.Width
        with
        | Ok a -> a
        | Error message -> invalidArg (nameof inputs) message

    // What the strategies and the trainers see: the spec with its network named.
    let roundSpec =
        { config.Spec with
            Network = Architecture.name architecture
        }

    let stopSet =
        Stopping.stopSet config.Spec.Seed config.Spec.Stopping.StopSet pool.Count

    let accuracy (what: string) (split: Split option) (sink: ProgressSink) (nets: Nets.Networks) =
        match split with
        | None -> nan
        | Some s ->
            let predicted = Scoring.predictAs what nets s.Tensors settings.ScoreBatch sink
            Metrics.accuracy predicted s.Labels

    /// The checked configuration and its data.
    member _.Inputs = inputs
    /// The checked configuration.
    member _.Config = config
    /// The spec the rounds run: the configuration's, its network named (never "auto").
    member _.RoundSpec = roundSpec
    /// The network the round trains, and in words why "auto" chose it.
    member _.Network = architecture, Architecture.why inputs.NetworkInputs architecture
    /// The backbone, when the inputs are its embeddings: its file, hash, width and the head's normalisation.
    member _.Backbone = backbone
    /// The device the tensors live on.
    member _.Device = device
    /// The pool's images on the device.
    member _.PoolTensors = pool
    /// True when there is a test split.
    member _.HasTest = test.IsSome

    /// The strategies' context, reporting to `sink`.
    member _.Context(sink: ProgressSink) : Context =
        {
            Spec = roundSpec
            Settings = settings
            Device = device
            PoolTensors = pool
            Sink = sink
        }

    /// Test accuracy of trained networks (NaN without a test split).
    member _.TestAccuracy(nets: Nets.Networks, sink: ProgressSink) = accuracy "evaluate" test sink nets

    /// The round's learner: the strategy's training and query, test and validation accuracy (NaN without the
    /// split), the stop set's summary, the networks' release.
    member w.Learner(sink: ProgressSink) : Learner<Nets.Networks, LearnError> =
        let ctx = w.Context sink

        {
            Train = inputs.Strategy.Train ctx
            Evaluate = fun nets -> Ok(accuracy "evaluate" test sink nets)
            Validate = fun nets -> Ok(accuracy "validation" validation sink nets)
            Query = inputs.Strategy.Query ctx
            Signals = inputs.Strategy.Signals ctx
            StopSet =
                fun nets ->
                    Scoring.probabilitiesAs "stop set" nets pool stopSet settings.ScoreBatch sink
                    |> Stopping.summarise pool.Classes
                    |> Ok
            Release = fun nets -> (nets :> IDisposable).Dispose()
        }

    /// Fresh, untrained networks of the spec's shape (to load saved weights into).
    member _.NewNetworks() =
        Nets.createNamed
            roundSpec.Network
            device
            pool.Channels
            pool.Height
            pool.Width
            pool.Classes
            (Training.criticOutput config.Spec.Method)

    interface IDisposable with
        member _.Dispose() =
            (pool :> IDisposable).Dispose()

            for s in [ test; validation ] do
                s |> Option.iter (fun s -> (s.Tensors :> IDisposable).Dispose())

/// With a backbone: the pool's, test split's and validation split's embeddings (each image through the backbone
/// once, or read back from the cache), and the per-dimension normalisation computed on the pool's. The backbone
/// is released afterwards: rounds only see embeddings.
let private embedAll (inputs: Inputs) (device: torch.Device) (sink: ProgressSink) =
    let file = inputs.Config.Spec.Backbone

    match Backbone.load device file with
    | Error e -> Error(BackboneFailed(e.File, e.Detail))
    | Ok backbone ->
        use backbone = backbone
        let made = Collections.Generic.List<PixelFile>()

        let embed what (d: Dataset) =
            Backbone.embed backbone sink what d
            |> Result.map (fun e ->
                made.Add e.File
                e.File)
            |> Result.mapError (fun e -> BackboneFailed(e.File, e.Detail))

        let optional what (d: Dataset option) =
            match d with
            | None -> Ok None
            | Some d -> embed what d |> Result.map Some

        let result =
            ResultExpression.result {
                let! pool = embed "embedding the pool" inputs.PoolImages
                let! test = optional "embedding the test split" inputs.Test
                let! validation = optional "embedding the validation split" inputs.Validation
                return pool, test, validation, backbone.Dim, backbone.Hash
            }

        if Result.isError result then
            for f in made do
                f.Handle.Dispose()

        result

/// Opens the inputs on the configured device (threads set): every split's tensors, normalised as the pool (with a
/// backbone: its embeddings, made first and reported to `sink`).
let openOn (sink: ProgressSink) (inputs: Inputs) =
    match Device.resolve inputs.Config.Settings.Device with
    | Error detail -> Error(DeviceFailed detail)
    | Ok device ->
        Device.configure inputs.Config.Settings.Threads
        let made = Collections.Generic.List<IDisposable>()

        let split (tensors: Dataset -> Tensors.ImageTensors) (d: Dataset option) =
            d
            |> Option.map (fun d ->
                {
                    Labels = d.Labels
                    Tensors = tensors d
                })

        let opened () =
            match inputs.Preprocessing with
            | None ->
                let tensors (d: Dataset) =
                    let t = Tensors.ofDataset device inputs.Normalisation d
                    made.Add t
                    t

                let pool = tensors inputs.PoolImages
                let test = split tensors inputs.Test
                let validation = split tensors inputs.Validation
                Ok(new Workbench(inputs, device, pool, test, validation, None))
            | Some _ ->
                embedAll inputs device sink
                |> Result.map (fun (poolFile, testFile, validationFile, dim, hash) ->
                    let norm = Backbone.statistics poolFile

                    let recorded: Backbone.Recorded =
                        {
                            File = IO.Path.GetFullPath inputs.Config.Spec.Backbone
                            Hash = hash
                            Dim = dim
                            Normalisation = norm
                        }

                    let tensors (file: PixelFile) (d: Dataset) =
                        let t = Tensors.ofEmbeddings device norm file dim d.Classes
                        made.Add t
                        t

                    let pool = tensors poolFile inputs.PoolImages

                    let splitOf (d: Dataset option) (file: PixelFile option) =
                        match d, file with
                        | Some d, Some f -> split (tensors f) (Some d)
                        | _ -> None

                    let test = splitOf inputs.Test testFile
                    let validation = splitOf inputs.Validation validationFile
                    new Workbench(inputs, device, pool, test, validation, Some recorded))

        try
            opened ()
        with _ ->
            for t in made do
                t.Dispose()

            reraise ()
