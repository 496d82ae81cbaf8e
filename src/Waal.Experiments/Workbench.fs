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
        /// The pool's normalisation (computed once: a folder's is a pass over every pixel).
        Normalisation: Normalisation
    }

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

/// The network the spec names, checked against the images' shape.
let private checkNetwork (spec: ExperimentSpec) (images: Dataset) =
    match Architecture.resolve spec.Network images.Channels images.Height images.Width with
    | Error message -> Error(SpecInvalid [ { Field = "network"; Message = message } ])
    | Ok _ -> Ok()

/// Inputs over data the caller holds (a session's pool and optional test set): no split, no repeat.
let ofData (config: Configuration) (pool: Dataset) (test: Dataset option) =
    check config
    |> Result.bind (fun (config, entry, strategy) ->
        checkNetwork config.Spec pool
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
                Normalisation = entry.Normalisation pool
            }))

/// Loads the data a configuration names and checks the spec fits it: the pool (repeated with --repeat), the
/// test split, the validation split after the pool, the initial labels.
let load (config: Configuration) =
    check config
    |> Result.bind (fun (config, entry, strategy) ->
        let spec = config.Spec

        match folderOnly entry config with
        | _ :: _ as errors -> Error(SpecInvalid errors)
        | [] ->
            match entry.Load(sourceOf config) with
            | Error e -> Error(DataFailed e)
            | Ok {
                     Train = train
                     Test = test
                     Skipped = skipped
                 } ->
                match checkNetwork spec train, spec.PoolSize with
                | Error e, _ -> Error e
                | Ok(), Some p when p > train.Count ->
                    Error(
                        DoesNotFit(
                            "pool",
                            $"the pool of {p} is larger than the {train.Count} training images of {spec.Dataset}"
                        )
                    )
                | Ok(), _ ->
                    let originals =
                        Dataset.take (spec.PoolSize |> Option.defaultValue train.Count) train

                    if test.Count = 0 then
                        let field, how =
                            if config.Settings.TestDir = "" then
                                "holdout",
                                "the held-out part (--holdout) is empty: every class needs at least 2 images, or give --test-dir"
                            else
                                "test-dir", "the test folder holds no image"

                        Error(DoesNotFit(field, how))
                    elif spec.Validation > train.Count - originals.Count then
                        Error(
                            DoesNotFit(
                                "validation",
                                $"{spec.Validation} validation images do not fit after a pool of {originals.Count}: {spec.Dataset} has {train.Count} training images (give a smaller --pool)"
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
                                                (Array.init spec.Validation (fun i -> originals.Count + i))
                                                train
                                        )
                                    else
                                        None
                                Skipped = skipped
                                Normalisation = entry.Normalisation pool
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
    (inputs: Inputs, device: torch.Device, pool: Tensors.ImageTensors, test: Split option, validation: Split option) =
    let config = inputs.Config
    let settings = config.Settings

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
    /// The device the tensors live on.
    member _.Device = device
    /// The pool's images on the device.
    member _.PoolTensors = pool
    /// True when there is a test split.
    member _.HasTest = test.IsSome

    /// The strategies' context, reporting to `sink`.
    member _.Context(sink: ProgressSink) : Context =
        {
            Spec = config.Spec
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
            config.Spec.Network
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

/// Opens the inputs on the configured device (threads set): every split's tensors, normalised as the pool.
let openOn (inputs: Inputs) =
    match Device.resolve inputs.Config.Settings.Device with
    | Error detail -> Error(DeviceFailed detail)
    | Ok device ->
        Device.configure inputs.Config.Settings.Threads
        let made = Collections.Generic.List<IDisposable>()

        let tensors (d: Dataset) =
            let t = Tensors.ofDataset device inputs.Normalisation d
            made.Add t
            t

        let split (d: Dataset option) =
            d
            |> Option.map (fun d ->
                {
                    Labels = d.Labels
                    Tensors = tensors d
                })

        try
            let pool = tensors inputs.PoolImages
            let test = split inputs.Test
            let validation = split inputs.Validation
            Ok(new Workbench(inputs, device, pool, test, validation))
        with _ ->
            for t in made do
                t.Dispose()

            reraise ()
