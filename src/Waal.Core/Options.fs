namespace Waal.Core

open System
open System.Globalization

/// Whether an option is part of what an experiment computes.
type OptionScope =
    /// Changes the result: part of the spec (the experiment's identity).
    | Identity
    /// Never changes a result (where the data is, threads, device, scoring batch): part of the run settings.
    | Setting

/// How an option's value is written and read.
type OptionKind =
    /// A whole number (JSON number).
    | Integer
    /// A real number (JSON number).
    | Number
    /// One of fixed names (JSON string).
    | Choice of names: string list
    /// On or off (JSON true/false; on the command line the flag alone means on).
    | Flag
    /// Free text (JSON string).
    | Text
    /// A whole number or "all" (JSON number or null).
    | IntegerOrAll

/// What an option's default depends on: the dataset, the strategy and the preset.
type DefaultsFor =
    {
        Profile: DatasetProfile
        /// The strategy's name (lower case).
        Strategy: string
        Preset: Preset
    }

/// The front ends that build a configuration from given option values (`Options.build`).
type FrontEnd =
    /// `waal run` and `waal query-times`, and MSBuild's Experiment metadata through the run's command line.
    | CommandLine
    /// spec.json read back.
    | SpecFile
    /// The C# facade's LearnerOptions.
    | CSharp
    /// `waal label`: a person labels in small batches.
    | LabellingPage

/// One option: its name in every front end, its type, its default and how it reads and writes a configuration.
/// Every value travels as canonical text (invariant culture, round-trip exact), so one parser serves the command
/// line, spec.json, MSBuild metadata and the C# facade.
type OptionDef =
    {
        /// The command line's name without dashes, e.g. "gp-weight"; spec.json uses it in camelCase (gpWeight),
        /// MSBuild metadata in PascalCase (GpWeight).
        Name: string
        Scope: OptionScope
        Kind: OptionKind
        /// The accepted values in words (shown in help and errors), e.g. "a number >= 0".
        Expected: string
        Help: string
        /// The C# facade's property for it (LearnerOptions), when the facade exposes it.
        Facade: string option
        /// False for options added after the first spec.json format: a file without them means the default.
        Required: bool
        /// The default for a dataset, a strategy and a preset, as canonical text.
        Default: DefaultsFor -> string
        /// The configuration's value, as canonical text.
        Get: Configuration -> string
        /// Sets the value from text; an error says what was expected and what was found.
        Set: string -> Configuration -> Result<Configuration, string>
        /// Some for the options read before every other, because they pick the others' defaults (dataset,
        /// strategy, preset): the value a front end takes when none is given (None: it must be given).
        ReadFirst: (FrontEnd -> string option) option
        /// True for the options that apply to folder datasets only (a dataset stored in files has its own test
        /// split and image shape).
        FolderOnly: bool
        /// A default one front end uses before the table's (the labelling page's small batches).
        FrontEndDefault: FrontEnd -> string option
    }

    /// The key in spec.json: the name in camelCase.
    member o.JsonName =
        let parts = o.Name.Split '-'

        parts[0]
        + String.Join("", parts[1..] |> Array.map (fun p -> string (Char.ToUpperInvariant p[0]) + p[1..]))

    /// The MSBuild metadata name: the name in PascalCase.
    member o.Metadata =
        o.Name.Split '-'
        |> Array.map (fun p -> string (Char.ToUpperInvariant p[0]) + p[1..])
        |> String.concat ""

/// The recommended preset's values: the protocol and the WAAL settings chosen by the measurements in
/// docs/findings.md (every strategy trains the same budget).
[<RequireQualifiedAccess>]
module Recommended =
    /// E of the floor budget: E x ceil(max(|L|, Floor) / Batch) steps a round.
    let Epochs = 30
    let Floor = 3000
    let LearningRate = 0.05
    let Momentum = 0.9
    let WeightDecay = 5e-4
    let Nesterov = true
    let Schedule = CosineRate
    let Warmup = 1
    let Alpha = 0.002
    let Selection = 10.0
    let Imbalance = Imbalance.Reference
    let GpSign = ReferenceSign
    let CriticOutput = SigmoidOutput
    let CriticOptimiser = CriticSgd
    /// WAAL's query ranks by the margin alone: the critic's term made every measured batch worse
    /// (docs/findings.md §2-4); the critic still shapes the features through WAAL's training.
    let Uncertainty = MarginUncertainty
    let Score = UncertaintyOnly
    let WaalBatchMode = TopK

/// The one table of options, and everything derived from it: defaults, validation, parsing by name.
[<RequireQualifiedAccess>]
module Options =
    let private invariant = CultureInfo.InvariantCulture

    /// A number as canonical text (shortest round-trip form).
    let formatNumber (x: float) = x.ToString("R", invariant)

    let private parseInt (text: string) =
        match Int64.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, invariant) with
        | true, v -> Some v
        | _ -> None

    let private parseNumber (text: string) =
        match Double.TryParse(text.Trim(), NumberStyles.Float, invariant) with
        | true, v -> Some v
        | _ -> None

    let private integer name scope (lo: int64) (hi: int64) expected help facade dflt (get: Configuration -> int64) set =
        {
            Name = name
            Scope = scope
            Kind = Integer
            Expected = expected
            Help = help
            Facade = facade
            Required = true
            ReadFirst = None
            FolderOnly = false
            FrontEndDefault = fun _ -> None
            Default = dflt
            Get = fun c -> string (get c)
            Set =
                fun text c ->
                    match parseInt text with
                    | Some v when v >= lo && v <= hi -> Ok(set v c)
                    | Some v -> Error $"expected {expected}, found {v}"
                    | None -> Error $"expected {expected}, found '{text}'"
        }

    /// A real number: always finite (see Set), and `ok` on top.
    let private number name (ok: float -> bool) expected help facade dflt (get: Configuration -> float) set =
        {
            Name = name
            Scope = Identity
            Kind = Number
            Expected = expected
            Help = help
            Facade = facade
            Required = true
            ReadFirst = None
            FolderOnly = false
            FrontEndDefault = fun _ -> None
            Default = dflt
            Get = fun c -> formatNumber (get c)
            Set =
                fun text c ->
                    match parseNumber text with
                    // spec.json, MSBuild metadata and every front end record numbers as JSON, which has no
                    // infinity or NaN: a value that cannot be recorded is refused here, before anything is written.
                    | Some v when not (Double.IsFinite v) ->
                        Error
                            $"expected {expected}, found '{text.Trim()}', which is not a finite number (a run records only finite numbers)"
                    | Some v when ok v -> Ok(set v c)
                    | Some v -> Error $"expected {expected}, found {formatNumber v}"
                    | None -> Error $"expected {expected}, found '{text}'"
        }

    let private choice
        name
        scope
        (values: ('a * string) list)
        help
        facade
        (dflt: DefaultsFor -> 'a)
        (get: Configuration -> 'a)
        set
        =
        let names = values |> List.map snd

        let nameOf v =
            values |> List.find (fun (x, _) -> x = v) |> snd

        let expected = "one of " + String.Join(", ", names)

        {
            Name = name
            Scope = scope
            Kind = Choice names
            Expected = expected
            Help = help
            Facade = facade
            Required = true
            ReadFirst = None
            FolderOnly = false
            FrontEndDefault = fun _ -> None
            Default = fun d -> nameOf (dflt d)
            Get = fun c -> nameOf (get c)
            Set =
                fun text c ->
                    match values |> List.tryFind (fun (_, n) -> n = text.Trim().ToLowerInvariant()) with
                    | Some(v, _) -> Ok(set v c)
                    | None -> Error $"expected {expected}, found '{text}'"
        }

    let private text name scope (allowEmpty: bool) expected help facade dflt (get: Configuration -> string) set =
        {
            Name = name
            Scope = scope
            Kind = Text
            Expected = expected
            Help = help
            Facade = facade
            Required = true
            ReadFirst = None
            FolderOnly = false
            FrontEndDefault = fun _ -> None
            Default = dflt
            Get = get
            Set =
                fun value c ->
                    if String.IsNullOrWhiteSpace value && not allowEmpty then
                        Error $"expected {expected}, found nothing"
                    else
                        Ok(set (value.Trim()) c)
        }

    let private later (o: OptionDef) = { o with Required = false }

    /// Read before every other option; `fallback` gives a front end's value when none is given.
    let private readFirst (fallback: FrontEnd -> string option) (o: OptionDef) = { o with ReadFirst = Some fallback }

    /// Applies to folder datasets only.
    let private folderOnly (o: OptionDef) = { o with FolderOnly = true }

    /// The labelling page's own default: a person labels in batches of this size.
    let private onPage (value: string) (o: OptionDef) =
        { o with
            FrontEndDefault =
                function
                | LabellingPage -> Some value
                | _ -> None
        }

    let private isWaal (strategy: string) =
        String.Equals(strategy, "waal", StringComparison.OrdinalIgnoreCase)

    let private spec (f: ExperimentSpec -> ExperimentSpec) (c: Configuration) = { c with Spec = f c.Spec }

    let private settings (f: RunSettings -> RunSettings) (c: Configuration) = { c with Settings = f c.Settings }

    let private train (f: TrainOptions -> TrainOptions) =
        spec (fun s -> { s with Train = f s.Train })

    let private methodOf (f: MethodOptions -> MethodOptions) =
        spec (fun s -> { s with Method = f s.Method })

    let private always (v: string) = fun (_: DefaultsFor) -> v

    let private fixedChoice (v: 'a) = fun (_: DefaultsFor) -> v

    /// One default under the reference preset, another under the recommended one.
    let private byPreset (reference: string) (recommended: string) =
        fun (d: DefaultsFor) ->
            match d.Preset with
            | ReferencePreset -> reference
            | RecommendedPreset -> recommended

    let private choiceByPreset (reference: 'a) (recommended: 'a) =
        fun (d: DefaultsFor) ->
            match d.Preset with
            | ReferencePreset -> reference
            | RecommendedPreset -> recommended

    let private flag name help facade dflt (get: Configuration -> bool) set =
        {
            Name = name
            Scope = Identity
            Kind = Flag
            Expected = "true or false"
            Help = help
            Facade = facade
            Required = true
            ReadFirst = None
            FolderOnly = false
            FrontEndDefault = fun _ -> None
            Default = dflt
            Get = fun c -> if get c then "true" else "false"
            Set =
                fun value c ->
                    match value.Trim().ToLowerInvariant() with
                    | "true" -> Ok(set true c)
                    | "false" -> Ok(set false c)
                    | _ -> Error $"expected true or false, found '{value}'"
        }

    let private pick (f: PickOptions -> PickOptions) =
        spec (fun s -> { s with Pick = f s.Pick })

    let private batchQuery (f: BatchQueryOptions -> BatchQueryOptions) =
        spec (fun s -> { s with BatchQuery = f s.BatchQuery })

    /// A list of class indices as canonical text: sorted, distinct, comma-separated ("" none).
    let private formatClasses (classes: int list) =
        String.Join(",", classes |> List.distinct |> List.sort)

    let private images (f: ImageOptions -> ImageOptions) =
        spec (fun s -> { s with Images = f s.Images })

    /// The networks of the network registry, by name (Architecture.choices).
    let networks = Architecture.choices

    let private maxInt = int64 Int32.MaxValue

    /// Every option, in the order front ends list them. Adding an option is adding one entry here (and its
    /// field in the spec types); the command line, spec.json, MSBuild metadata and the C# facade follow.
    let all: OptionDef list =
        [
            text
                "dataset"
                Identity
                false
                "a dataset name"
                "the dataset (its registry entry picks the reader, normalisation and network)."
                (Some "Dataset")
                (fun d -> d.Profile.Name)
                (fun c -> c.Spec.Dataset)
                (fun v ->
                    spec (fun s ->
                        { s with
                            Dataset = v.ToLowerInvariant()
                        }))
            |> readFirst (function
                | CSharp -> Some "fashion-mnist"
                | _ -> None)
            text
                "data-dir"
                Setting
                true
                "a folder"
                "the folder of the dataset's files (fashion-mnist: $WAAL_FASHION_MNIST or Debian's folder)."
                None
                (always "")
                (fun c -> c.Settings.DataDir)
                (fun v -> settings (fun s -> { s with DataDir = v }))
            later (
                text
                    "test-dir"
                    Setting
                    true
                    "a folder"
                    "a folder dataset's test split: a folder with the same class folders (`--test folder=DIR` is the same). Without it, --holdout of each class is held out."
                    None
                    (always "")
                    (fun c -> c.Settings.TestDir)
                    (fun v -> settings (fun s -> { s with TestDir = v }))
            )
            |> folderOnly
            later (
                integer
                    "image-size"
                    Identity
                    0L
                    4096L
                    "an integer in 0..4096"
                    "folder datasets: resize each image's shorter side to N and keep the centre N x N (0: every image at its stored size, which must be the same)."
                    None
                    (always "0")
                    (fun c -> int64 c.Spec.Images.Size)
                    (fun v -> images (fun i -> { i with Size = int v }))
            )
            |> folderOnly
            later (
                integer
                    "channels"
                    Identity
                    0L
                    3L
                    "0, 1 or 3"
                    "folder datasets: 1 (grey), 3 (RGB) or 0 (1 when every image is grey, else 3)."
                    None
                    (always "0")
                    (fun c -> int64 c.Spec.Images.Channels)
                    (fun v -> images (fun i -> { i with Channels = int v }))
                |> fun o ->
                    { o with
                        Set =
                            fun text c ->
                                match text.Trim() with
                                | "2" -> Error "expected 0, 1 or 3, found 2"
                                | _ -> o.Set text c
                    }
            )
            |> folderOnly
            later (
                flag
                    "skip-bad-images"
                    "folder datasets: skip (and count in the run's dataset.json) files that cannot be decoded instead of stopping."
                    None
                    (always "false")
                    (fun c -> c.Spec.Images.SkipBad)
                    (fun v -> images (fun i -> { i with SkipBad = v }))
            )
            |> folderOnly
            later (
                number
                    "holdout"
                    (fun v -> v > 0.0 && v < 1.0)
                    "a number in (0, 1)"
                    "folder datasets without --test-dir: the fraction of each class held out as the test split (seeded, stratified, the same for every seed)."
                    None
                    (always "0.2")
                    (fun c -> c.Spec.Images.Holdout)
                    (fun v -> images (fun i -> { i with Holdout = v }))
            )
            |> folderOnly
            later (
                text
                    "stop-when"
                    Identity
                    true
                    Stopping.expected
                    "stop early when a rule fires after a round: labels>=N (a label budget), kappa>=T[/W] or agreement>=T[/W] (consecutive rounds' predictions on the stop set, mean over the last W = 3 pairs), uncertainty<=T (mean 1 - max p on the stop set); comma-separated, the first to fire ends the run."
                    (Some "StopWhen")
                    (always "")
                    (fun c -> Stopping.toText c.Spec.Stopping.Rules)
                    (fun v -> id)
                |> fun o ->
                    { o with
                        Set =
                            fun text c ->
                                Stopping.parse text
                                |> Result.map (fun rules ->
                                    { c with
                                        Spec =
                                            { c.Spec with
                                                Stopping = { c.Spec.Stopping with Rules = rules }
                                            }
                                    })
                    }
            )
            later (
                integer
                    "stop-set"
                    Identity
                    1L
                    1000000L
                    "an integer in 1..1000000"
                    "the stop set's size: pool items (drawn once) whose predictions the stopping signals compare across rounds."
                    (Some "StopSet")
                    (always "1000")
                    (fun c -> int64 c.Spec.Stopping.StopSet)
                    (fun v ->
                        spec (fun s ->
                            { s with
                                Stopping = { s.Stopping with StopSet = int v }
                            }))
            )
            later (
                choice
                    "network"
                    Identity
                    (networks |> List.map (fun n -> n, n))
                    "the network: auto (chosen by the dataset: fashion-mnist small-cnn, cifar10 and svhn vgg16, a folder resnet, with --backbone head), small-cnn (1x28x28 only), vgg16 (3x32x32 only), resnet (any size >= 8), head (a backbone's embeddings)."
                    (Some "Network")
                    (fixedChoice "auto")
                    (fun c -> c.Spec.Network)
                    (fun v -> spec (fun s -> { s with Network = v }))
            )
            later (
                text
                    "backbone"
                    Identity
                    true
                    "a TorchScript file"
                    "folder datasets: a pretrained image model (TorchScript, with its preparation in a .json beside it; docs/backbones.md): every image is embedded once and each round trains the head on the embeddings (\"\": none)."
                    (Some "Backbone")
                    (always "")
                    (fun c -> c.Spec.Backbone)
                    (fun v -> spec (fun s -> { s with Backbone = v }))
            )
            |> folderOnly
            text
                "strategy"
                Identity
                false
                "a strategy name"
                "the query strategy (waal or a baseline; see the README's table)."
                (Some "Strategy")
                (always "waal")
                (fun c -> c.Spec.Strategy)
                (fun v ->
                    spec (fun s ->
                        { s with
                            Strategy = v.ToLowerInvariant()
                        }))
            |> readFirst (function
                | SpecFile -> None
                | _ -> Some "waal")
            integer
                "initial"
                Identity
                1L
                maxInt
                "an integer >= 1"
                "initial random labels."
                None
                (always "1000")
                (fun c -> int64 c.Spec.Initial)
                (fun v -> spec (fun s -> { s with Initial = int v }))
            |> onPage "20"
            integer
                "query"
                Identity
                1L
                maxInt
                "an integer >= 1"
                "labels per query: the round's batch, unless a label budget cuts it (the paper's imbalance coefficient reads the batch queried)."
                None
                (always "1000")
                (fun c -> int64 c.Spec.Query)
                (fun v -> spec (fun s -> { s with Query = int v }))
            |> onPage "20"
            integer
                "rounds"
                Identity
                0L
                maxInt
                "an integer >= 0"
                "query rounds; rounds 0..R are evaluated."
                None
                (always "5")
                (fun c -> int64 c.Spec.Rounds)
                (fun v -> spec (fun s -> { s with Rounds = int v }))
            integer
                "seed"
                Identity
                Int64.MinValue
                Int64.MaxValue
                "a 64-bit integer"
                "the seed of every random stream (initial draw, shuffles, initialisation, dropout)."
                (Some "Seed")
                (always "1")
                (fun c -> c.Spec.Seed)
                (fun v -> spec (fun s -> { s with Seed = v }))
            {
                Name = "pool"
                Scope = Identity
                Kind = IntegerOrAll
                Expected = "an integer >= 1 or all"
                Help = "the first P training images form the pool."
                Facade = None
                Required = true
                ReadFirst = None
                FolderOnly = false
                FrontEndDefault = fun _ -> None
                Default = always "all"
                Get =
                    fun c ->
                        match c.Spec.PoolSize with
                        | Some p -> string p
                        | None -> "all"
                Set =
                    fun value c ->
                        if value.Trim().ToLowerInvariant() = "all" then
                            Ok(spec (fun s -> { s with PoolSize = None }) c)
                        else
                            match parseInt value with
                            | Some v when v >= 1L && v <= maxInt ->
                                Ok(spec (fun s -> { s with PoolSize = Some(int v) }) c)
                            | Some v -> Error $"expected an integer >= 1 or all, found {v}"
                            | None -> Error $"expected an integer >= 1 or all, found '{value}'"
            }
            integer
                "threads"
                Setting
                0L
                1024L
                "an integer in 0..1024 (0: libtorch's default)"
                "libtorch threads (0: libtorch's choice)."
                (Some "Threads")
                (always "0")
                (fun c -> int64 c.Settings.Threads)
                (fun v -> settings (fun s -> { s with Threads = int v }))
            choice
                "device"
                Setting
                [ AutoDevice, "auto"; CpuDevice, "cpu"; CudaDevice, "cuda" ]
                "where to compute (auto: CUDA when available)."
                (Some "Device")
                (fixedChoice AutoDevice)
                (fun c -> c.Settings.Device)
                (fun v -> settings (fun s -> { s with Device = v }))
            integer
                "score-batch"
                Setting
                1L
                maxInt
                "an integer >= 1"
                "images per forward pass when scoring (250: measured, see docs/performance.md)."
                (Some "ScoreBatch")
                (always "250")
                (fun c -> int64 c.Settings.ScoreBatch)
                (fun v -> settings (fun s -> { s with ScoreBatch = int v }))
            integer
                "epochs"
                Identity
                1L
                maxInt
                "an integer >= 1"
                "epochs per round (reference preset: waal 2, baselines 10 for Fashion-MNIST, else 20; recommended: see docs/findings.md)."
                (Some "Epochs")
                (fun d ->
                    match d.Preset with
                    | RecommendedPreset -> string Recommended.Epochs
                    | ReferencePreset when isWaal d.Strategy -> "2"
                    | ReferencePreset -> string d.Profile.BaselineEpochs)
                (fun c -> int64 c.Spec.Train.Epochs)
                (fun v -> train (fun t -> { t with Epochs = int v }))
            integer
                "batch"
                Identity
                1L
                maxInt
                "an integer >= 1"
                "batch size, per half for WAAL."
                (Some "BatchSize")
                (always "64")
                (fun c -> int64 c.Spec.Train.Batch)
                (fun v -> train (fun t -> { t with Batch = int v }))
            number
                "lr"
                (fun v -> v > 0.0)
                "a number > 0"
                "SGD learning rate (reference: 0.01; CIFAR-10's baselines 0.05)."
                (Some "LearningRate")
                (fun d ->
                    match d.Preset with
                    | RecommendedPreset -> formatNumber Recommended.LearningRate
                    | ReferencePreset when isWaal d.Strategy -> "0.01"
                    | ReferencePreset -> formatNumber d.Profile.BaselineLearningRate)
                (fun c -> c.Spec.Train.LearningRate)
                (fun v -> train (fun t -> { t with LearningRate = v }))
            number
                "momentum"
                (fun v -> v >= 0.0 && v < 1.0)
                "a number in [0, 1)"
                "SGD momentum (reference: 0.5; CIFAR-10 0.3)."
                (Some "Momentum")
                (fun d ->
                    match d.Preset with
                    | RecommendedPreset -> formatNumber Recommended.Momentum
                    | ReferencePreset -> formatNumber d.Profile.Momentum)
                (fun c -> c.Spec.Train.Momentum)
                (fun v -> train (fun t -> { t with Momentum = v }))
            later (
                number
                    "weight-decay"
                    (fun v -> v >= 0.0)
                    "a number >= 0"
                    "SGD's L2 weight decay on every network (0: none, as the reference)."
                    (Some "WeightDecay")
                    (byPreset "0" (formatNumber Recommended.WeightDecay))
                    (fun c -> c.Spec.Train.WeightDecay)
                    (fun v -> train (fun t -> { t with WeightDecay = v }))
            )
            later (
                choice
                    "train-budget"
                    Identity
                    [
                        EpochsOverLabelled, "epochs"
                        MatchWaal, "match-waal"
                        EpochsOverFloor, "floor"
                    ]
                    "a round's length: epochs (baselines E passes over L, WAAL E epochs of max(|L|,|U|) pairs), match-waal (baselines as many steps as WAAL), floor (every strategy E x ceil(max(|L|, floor) / batch) steps)."
                    (Some "TrainBudget")
                    (choiceByPreset EpochsOverLabelled EpochsOverFloor)
                    (fun c -> c.Spec.Train.Budget)
                    (fun v -> train (fun t -> { t with Budget = v }))
            )
            later (
                integer
                    "floor"
                    Identity
                    1L
                    maxInt
                    "an integer >= 1"
                    "the floor budget's M: a round trains at least E x ceil(M / batch) steps."
                    (Some "Floor")
                    (always (string Recommended.Floor))
                    (fun c -> int64 c.Spec.Train.Floor)
                    (fun v -> train (fun t -> { t with Floor = int v }))
            )
            later (
                flag
                    "nesterov"
                    "Nesterov momentum in SGD."
                    (Some "Nesterov")
                    (byPreset "false" (if Recommended.Nesterov then "true" else "false"))
                    (fun c -> c.Spec.Train.Nesterov)
                    (fun v -> train (fun t -> { t with Nesterov = v }))
            )
            later (
                choice
                    "schedule"
                    Identity
                    [ ConstantRate, "constant"; CosineRate, "cosine" ]
                    "the learning rate over a round: constant, or cosine to 0 after a linear warm-up."
                    (Some "Schedule")
                    (choiceByPreset ConstantRate Recommended.Schedule)
                    (fun c -> c.Spec.Train.Schedule)
                    (fun v -> train (fun t -> { t with Schedule = v }))
            )
            later (
                integer
                    "warmup"
                    Identity
                    0L
                    maxInt
                    "an integer >= 0"
                    "epochs of linear warm-up before the cosine schedule."
                    (Some "Warmup")
                    (byPreset "0" (string Recommended.Warmup))
                    (fun c -> int64 c.Spec.Train.Warmup)
                    (fun v -> train (fun t -> { t with Warmup = int v }))
            )
            number
                "alpha"
                (fun v -> v >= 0.0)
                "a number >= 0"
                "weight of the adversarial terms."
                (Some "Alpha")
                (byPreset "0.002" (formatNumber Recommended.Alpha))
                (fun c -> c.Spec.Method.Alpha)
                (fun v -> methodOf (fun m -> { m with Alpha = v }))
            number
                "selection"
                (fun _ -> true)
                "a finite number"
                "weight of the critic in the query score u - selection x critic."
                (Some "Selection")
                (byPreset "10" (formatNumber Recommended.Selection))
                (fun c -> c.Spec.Method.Selection)
                (fun v -> methodOf (fun m -> { m with Selection = v }))
            choice
                "imbalance"
                Identity
                [
                    Imbalance.Reference, "reference"
                    Imbalance.Paper, "paper"
                    Imbalance.One, "one"
                ]
                "the coefficient c: reference |L|/|U|, the paper's C0, or one."
                (Some "Imbalance")
                (choiceByPreset Imbalance.Reference Recommended.Imbalance)
                (fun c -> c.Spec.Method.Imbalance)
                (fun v -> methodOf (fun m -> { m with Imbalance = v }))
            choice
                "gp-sign"
                Identity
                [ ReferenceSign, "reference"; WganGpSign, "wgan-gp" ]
                "gradient-penalty sign in the critic step (reference: -1; wgan-gp: +1)."
                (Some "GpSign")
                (choiceByPreset ReferenceSign Recommended.GpSign)
                (fun c -> c.Spec.Method.GpSign)
                (fun v -> methodOf (fun m -> { m with GpSign = v }))
            number
                "gp-weight"
                (fun v -> v >= 0.0)
                "a number >= 0"
                "gradient-penalty weight."
                (Some "GpWeight")
                (always "2")
                (fun c -> c.Spec.Method.GpWeight)
                (fun v -> methodOf (fun m -> { m with GpWeight = v }))
            choice
                "critic"
                Identity
                CriticOutput.names
                "the critic's last activation."
                (Some "Critic")
                (choiceByPreset SigmoidOutput Recommended.CriticOutput)
                (fun c -> c.Spec.Method.CriticOutput)
                (fun v -> methodOf (fun m -> { m with CriticOutput = v }))
            choice
                "bound"
                Identity
                [
                    Uncertainty.Mixed, "mixed"
                    Uncertainty.L1, "l1"
                    Uncertainty.L2, "l2"
                    Uncertainty.WorstCase, "worst-case"
                ]
                "the uncertainty bound (mixed: 0.5 L1 + 0.5 L2)."
                (Some "Bound")
                (fixedChoice Uncertainty.Mixed)
                (fun c -> c.Spec.Method.Bound)
                (fun v -> methodOf (fun m -> { m with Bound = v }))
            {
                Name = "augment"
                Scope = Identity
                Kind = Flag
                Expected = "true or false"
                Help = "random crop + flip for 3x32x32 data (off, as in the paper)."
                Facade = Some "Augment"
                Required = true
                ReadFirst = None
                FolderOnly = false
                FrontEndDefault = fun _ -> None
                Default = always "false"
                Get = fun c -> if c.Spec.Method.Augment then "true" else "false"
                Set =
                    fun value c ->
                        match value.Trim().ToLowerInvariant() with
                        | "true" -> Ok(methodOf (fun m -> { m with Augment = true }) c)
                        | "false" -> Ok(methodOf (fun m -> { m with Augment = false }) c)
                        | _ -> Error $"expected true or false, found '{value}'"
            }
            later (
                choice
                    "adversary"
                    Identity
                    [ Wasserstein, "wasserstein"; HDivergence, "h-divergence" ]
                    "WAAL's adversary: the Wasserstein critic, or the paper's H-divergence ablation."
                    (Some "Adversary")
                    (fixedChoice Wasserstein)
                    (fun c -> c.Spec.Method.Adversary)
                    (fun v -> methodOf (fun m -> { m with Adversary = v }))
            )
            later (
                choice
                    "waal-score"
                    Identity
                    [
                        Combined, "combined"
                        UncertaintyOnly, "uncertainty"
                        DiversityOnly, "diversity"
                    ]
                    "WAAL's query ranking: combined (u - selection x critic), or the ablations."
                    (Some "WaalScore")
                    (choiceByPreset Combined Recommended.Score)
                    (fun c -> c.Spec.Method.Score)
                    (fun v -> methodOf (fun m -> { m with Score = v }))
            )
            later (
                choice
                    "critic-optimiser"
                    Identity
                    [ CriticSgd, "sgd"; CriticAdam, "adam" ]
                    "the critic's optimiser: sgd (the networks' SGD on the alpha-scaled loss) or adam (its own rate, unscaled loss)."
                    (Some "CriticOptimiser")
                    (choiceByPreset CriticSgd Recommended.CriticOptimiser)
                    (fun c -> c.Spec.Method.CriticOptimiser)
                    (fun v -> methodOf (fun m -> { m with CriticOptimiser = v }))
            )
            later (
                number
                    "critic-lr"
                    (fun v -> v > 0.0)
                    "a number > 0"
                    "Adam's learning rate for the critic (critic-optimiser adam)."
                    (Some "CriticLearningRate")
                    (always "0.001")
                    (fun c -> c.Spec.Method.CriticLearningRate)
                    (fun v -> methodOf (fun m -> { m with CriticLearningRate = v }))
            )
            later (
                choice
                    "waal-uncertainty"
                    Identity
                    [
                        BoundUncertainty, "bound"
                        MarginUncertainty, "margin"
                        EntropyUncertainty, "entropy"
                    ]
                    "WAAL's uncertainty term: the paper's bound (see --bound), or margin or entropy, standardised over U against the standardised critic."
                    (Some "WaalUncertainty")
                    (choiceByPreset BoundUncertainty Recommended.Uncertainty)
                    (fun c -> c.Spec.Method.Uncertainty)
                    (fun v -> methodOf (fun m -> { m with Uncertainty = v }))
            )
            later (
                choice
                    "batch-mode"
                    Identity
                    [
                        TopK, "top-k"
                        SoftRank, "soft-rank"
                        ClassBalanced, "balanced"
                        Clustered, "cluster"
                    ]
                    "how waal, entropy, margin and least-confidence turn scores into a batch: top-k, soft-rank (P ~ rank^-beta), balanced (quotas over predicted classes), cluster (best of each of k clusters among the top candidates x k)."
                    (Some "BatchMode")
                    (fun d ->
                        match d.Preset with
                        | RecommendedPreset when isWaal d.Strategy -> Recommended.WaalBatchMode
                        | _ -> TopK)
                    (fun c -> c.Spec.Pick.Mode)
                    (fun v -> pick (fun p -> { p with Mode = v }))
            )
            later (
                number
                    "beta"
                    (fun v -> v >= 0.0)
                    "a number >= 0"
                    "the soft-rank exponent: 0 uniform, 1 Kirsch et al.'s default, large values approach top-k (--batch-mode top-k is the limit)."
                    (Some "Beta")
                    (always "1")
                    (fun c -> c.Spec.Pick.Beta)
                    (fun v -> pick (fun p -> { p with Beta = v }))
            )
            later (
                integer
                    "candidates"
                    Identity
                    1L
                    10000L
                    "an integer in 1..10000"
                    "the cluster mode's candidates, as a multiple of the query size."
                    (Some "Candidates")
                    (always "10")
                    (fun c -> int64 c.Spec.Pick.Candidates)
                    (fun v -> pick (fun p -> { p with Candidates = int v }))
            )
            later (
                number
                    "transport-beta"
                    (fun v -> v >= 0.0 && v <= 16.0)
                    "a number in [0, 16]"
                    "transport and mmd: the pool's weights w(x) ~ u(x)^beta, u = 1 - margin (0: plain W1 or MMD of the pool; larger: the uncertain part of the pool counts more)."
                    (Some "TransportBeta")
                    // The pilot of docs/findings.md §7 chose 2 by the plan's rule.
                    (always "2")
                    (fun c -> c.Spec.BatchQuery.Beta)
                    (fun v -> batchQuery (fun b -> { b with Beta = v }))
            )
            later (
                integer
                    "transport-candidates"
                    Identity
                    0L
                    10000L
                    "an integer in 0..10000"
                    "transport and mmd: pick among the most uncertain C x k unlabelled items (0: among all of them)."
                    (Some "TransportCandidates")
                    (always "10")
                    (fun c -> int64 c.Spec.BatchQuery.Candidates)
                    (fun v -> batchQuery (fun b -> { b with Candidates = int v }))
            )
            later (
                integer
                    "transport-targets"
                    Identity
                    1L
                    maxInt
                    "an integer >= 1"
                    "transport and mmd: the pool measure is every unlabelled item, or a seeded uniform sample of this many when there are more (bounds time and memory at any pool size)."
                    (Some "TransportTargets")
                    (always "20000")
                    (fun c -> int64 c.Spec.BatchQuery.Targets)
                    (fun v -> batchQuery (fun b -> { b with Targets = int v }))
            )
            later (
                choice
                    "transport-trainer"
                    Identity
                    [ PlainTrainer, "plain"; WaalTrainer, "waal" ]
                    "transport and mmd: the rounds train with plain cross-entropy (plain) or with WAAL's adversarial trainer and its options (waal)."
                    (Some "TransportTrainer")
                    (fixedChoice PlainTrainer)
                    (fun c -> c.Spec.BatchQuery.Trainer)
                    (fun v -> batchQuery (fun b -> { b with Trainer = v }))
            )
            later (
                integer
                    "validation"
                    Identity
                    0L
                    maxInt
                    "an integer >= 0"
                    "the next V training images after the pool: a validation split evaluated every round beside the test set (rounds.csv's validation_accuracy), to choose settings without the test set (0: none)."
                    None
                    (always "0")
                    (fun c -> int64 c.Spec.Validation)
                    (fun v -> spec (fun s -> { s with Validation = int v }))
            )
            later (
                integer
                    "repeat"
                    Identity
                    1L
                    10L
                    "an integer in 1..10"
                    "each pool image R times, each copy with Gaussian noise (--repeat-noise): a redundant pool, as Kirsch et al.'s Repeated-MNIST (1: the pool as it is)."
                    None
                    (always "1")
                    (fun c -> int64 c.Spec.Repeat)
                    (fun v -> spec (fun s -> { s with Repeat = int v }))
            )
            later (
                number
                    "repeat-noise"
                    (fun v -> v >= 0.0 && v <= 1.0)
                    "a number in [0, 1]"
                    "the standard deviation of the noise added to each copy of a repeated pool, as a fraction of the pixel range (0.03: about BatchBALD's 0.1 in normalised MNIST units)."
                    None
                    (always "0.03")
                    (fun c -> c.Spec.RepeatNoise)
                    (fun v -> spec (fun s -> { s with RepeatNoise = v }))
            )
            later (
                text
                    "rare-classes"
                    Identity
                    true
                    "class indices separated by commas, e.g. 0,4,6"
                    "an imbalanced pool: these classes keep only --rare-keep of their pool images (the first, in pool order); the test and validation splits are untouched (empty: none)."
                    None
                    (always "")
                    (fun c -> formatClasses c.Spec.RareClasses)
                    (fun v -> spec (fun s -> s))
                |> fun o ->
                    { o with
                        Set =
                            fun text c ->
                                let parts =
                                    text.Split(
                                        ',',
                                        StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries
                                    )

                                let parsed = parts |> Array.map parseInt

                                match
                                    Array.tryFindIndex
                                        (fun (v: int64 option) -> v.IsNone || v.Value < 0L || v.Value > 9999L)
                                        parsed
                                with
                                | Some i ->
                                    Error $"expected class indices separated by commas, e.g. 0,4,6, found '{parts[i]}'"
                                | None ->
                                    Ok(
                                        spec
                                            (fun s ->
                                                { s with
                                                    RareClasses =
                                                        parsed
                                                        |> Array.map (fun v -> int v.Value)
                                                        |> List.ofArray
                                                        |> List.distinct
                                                        |> List.sort
                                                })
                                            c
                                    )
                    }
            )
            later (
                number
                    "rare-keep"
                    (fun v -> v > 0.0 && v <= 1.0)
                    "a number in (0, 1]"
                    "the fraction of each --rare-classes class's pool images kept (rounded up, at least one)."
                    None
                    (always "0.1")
                    (fun c -> c.Spec.RareKeep)
                    (fun v -> spec (fun s -> { s with RareKeep = v }))
            )
            later (
                integer
                    "critic-steps"
                    Identity
                    1L
                    100L
                    "an integer in 1..100"
                    "WAAL: critic steps (step B) per step of the networks (step A)."
                    (Some "CriticSteps")
                    (always "1")
                    (fun c -> int64 c.Spec.Method.CriticSteps)
                    (fun v -> methodOf (fun m -> { m with CriticSteps = int v }))
            )
            later (
                flag
                    "critic-trained"
                    "WAAL: train the critic (false: it keeps its random initialisation, a control on the same score path)."
                    (Some "CriticTrained")
                    (always "true")
                    (fun c -> c.Spec.Method.CriticTrained)
                    (fun v -> methodOf (fun m -> { m with CriticTrained = v }))
            )
            later (
                number
                    "critic-holdout"
                    (fun v -> v >= 0.0 && v < 0.5)
                    "a number in [0, 0.5)"
                    "WAAL: the fraction of L and of U withheld from the critic's steps (the classifier still trains on them), so diagnostics.csv measures the critic on items it never saw (0: none)."
                    (Some "CriticHoldout")
                    (always "0")
                    (fun c -> c.Spec.Method.CriticHoldout)
                    (fun v -> methodOf (fun m -> { m with CriticHoldout = v }))
            )
            later (
                choice
                    "score-scale"
                    Identity
                    [ PaperScale, "paper"; ZScale, "z"; RankScale, "rank" ]
                    "WAAL's query: the scale on which the critic term meets the uncertainty, u - selection x d: paper (the bound and the critic raw; margin and entropy z-scored), z (both z-scored over U) or rank (both as rank fractions)."
                    (Some "ScoreScale")
                    (fixedChoice PaperScale)
                    (fun c -> c.Spec.Method.ScoreScale)
                    (fun v -> methodOf (fun m -> { m with ScoreScale = v }))
            )
            later (
                choice
                    "preset"
                    Identity
                    [ ReferencePreset, "reference"; RecommendedPreset, "recommended" ]
                    "where the defaults come from: recommended (the protocol and WAAL settings of docs/findings.md) or reference (the authors' code's settings at a CPU budget of 2 epochs a round, not the paper's 80-epoch protocol; a spec.json without this field)."
                    (Some "Preset")
                    (fun d -> d.Preset)
                    (fun c -> c.Spec.Preset)
                    (fun v -> spec (fun s -> { s with Preset = v }))
            )
            |> readFirst (function
                | SpecFile -> Some "reference"
                | _ -> Some "recommended")
        ]

    /// The option of that command-line name (case-insensitive).
    let tryFind (name: string) =
        all
        |> List.tryFind (fun o -> String.Equals(o.Name, name, StringComparison.OrdinalIgnoreCase))

    /// The option of that MSBuild metadata name (case-insensitive, as MSBuild metadata are).
    let tryFindMetadata (name: string) =
        all
        |> List.tryFind (fun o -> String.Equals(o.Metadata, name, StringComparison.OrdinalIgnoreCase))

    /// The edit distance between two names (case-insensitive), for "did you mean" hints.
    let distance (a: string) (b: string) =
        let a, b = a.ToLowerInvariant(), b.ToLowerInvariant()

        let d =
            Array2D.init (a.Length + 1) (b.Length + 1) (fun i j ->
                if i = 0 then j
                elif j = 0 then i
                else 0)

        for i in 1 .. a.Length do
            for j in 1 .. b.Length do
                let cost = if a[i - 1] = b[j - 1] then 0 else 1
                d[i, j] <- min (min (d[i - 1, j] + 1) (d[i, j - 1] + 1)) (d[i - 1, j - 1] + cost)

        d[a.Length, b.Length]

    /// The known name nearest to an unknown one.
    let nearest (known: string seq) (name: string) =
        known |> Seq.minBy (fun k -> distance k name)

    // A configuration every field of which is overwritten by `defaults`: a seed to fold the table over.
    let private blank =
        {
            Spec =
                {
                    Dataset = ""
                    Strategy = ""
                    Initial = 0
                    Query = 0
                    Rounds = 0
                    Seed = 0L
                    PoolSize = None
                    Validation = 0
                    Repeat = 1
                    RepeatNoise = 0.0
                    RareClasses = []
                    RareKeep = 1.0
                    Train =
                        {
                            Epochs = 0
                            Batch = 0
                            LearningRate = 0.0
                            Momentum = 0.0
                            WeightDecay = 0.0
                            Budget = EpochsOverLabelled
                            Floor = 0
                            Nesterov = false
                            Schedule = ConstantRate
                            Warmup = 0
                        }
                    Method =
                        {
                            Alpha = 0.0
                            Selection = 0.0
                            Imbalance = Imbalance.Reference
                            GpSign = ReferenceSign
                            GpWeight = 0.0
                            CriticOutput = SigmoidOutput
                            Bound = Uncertainty.Mixed
                            Augment = false
                            Adversary = Wasserstein
                            Score = Combined
                            CriticOptimiser = CriticSgd
                            CriticLearningRate = 0.0
                            Uncertainty = BoundUncertainty
                            CriticSteps = 0
                            CriticTrained = true
                            CriticHoldout = 0.0
                            ScoreScale = PaperScale
                        }
                    Pick =
                        {
                            Mode = TopK
                            Beta = 0.0
                            Candidates = 0
                        }
                    BatchQuery =
                        {
                            Beta = 0.0
                            Candidates = 0
                            Targets = 0
                            Trainer = PlainTrainer
                        }
                    Preset = ReferencePreset
                    Images =
                        {
                            Size = 0
                            Channels = 0
                            SkipBad = false
                            Holdout = 0.0
                        }
                    Network = ""
                    Backbone = ""
                    Stopping = { Rules = []; StopSet = 0 }
                }
            Settings =
                {
                    DataDir = ""
                    TestDir = ""
                    Threads = 0
                    Device = AutoDevice
                    ScoreBatch = 0
                }
        }

    /// The configuration of a dataset, a strategy and a preset: every option at its table default.
    let defaults (profile: DatasetProfile) (strategy: string) (preset: Preset) : Configuration =
        let d =
            {
                Profile = profile
                Strategy = strategy.ToLowerInvariant()
                Preset = preset
            }

        all
        |> List.fold
            (fun c o ->
                match o.Set (o.Default d) c with
                | Ok c -> c
                | Error e -> failwith $"the option table's default for {o.Name} is invalid: {e}")
            blank

    /// Sets one option by name; unknown names and bad values are errors naming the option.
    let set (name: string) (value: string) (c: Configuration) : Result<Configuration, SpecError> =
        match tryFind name with
        | None ->
            let near = nearest (all |> List.map (fun o -> o.Name)) name

            Error
                {
                    Field = name
                    Message = $"unknown option '{name}'; did you mean '{near}'?"
                }
        | Some o -> o.Set value c |> Result.mapError (fun m -> { Field = o.Name; Message = m })

    /// A preset by its name (reference, recommended).
    let presetOf (text: string) : Result<Preset, string> =
        match text.Trim().ToLowerInvariant() with
        | "reference" -> Ok ReferencePreset
        | "recommended" -> Ok RecommendedPreset
        | _ -> Error $"expected one of reference, recommended, found '{text}'"

    /// The one way every front end builds a configuration from the option values it was given, as (option,
    /// text) in the order given. The options read first (dataset, strategy, preset: their last value, else the
    /// front end's fallback) pick every other option's default; then come the front end's own defaults (the
    /// labelling page's batches of 20) for options not given, then every given value in order. Every error names
    /// its option and none is dropped; `defaultsOf dataset strategy preset` gives the defaults (the data layer's
    /// adds the dataset's standard folder).
    let build
        (defaultsOf: string -> string -> Preset -> Result<Configuration, string>)
        (front: FrontEnd)
        (given: (OptionDef * string) list)
        : Result<Configuration, SpecError list> =
        let readFirst (name: string) =
            let o = all |> List.find (fun o -> o.Name = name)

            match given |> List.filter (fun (g, _) -> g.Name = name) |> List.tryLast with
            | Some(_, v) -> Ok v
            | None ->
                match o.ReadFirst |> Option.bind (fun fallback -> fallback front) with
                | Some v -> Ok v
                | None ->
                    Error
                        {
                            Field = name
                            Message = $"missing; expected {o.Expected}"
                        }

        let preset =
            readFirst "preset"
            |> Result.bind (fun p -> presetOf p |> Result.mapError (fun m -> { Field = "preset"; Message = m }))

        let start =
            match readFirst "dataset", readFirst "strategy", preset with
            | Error e, _, _
            | _, Error e, _
            | _, _, Error e -> Error e
            | Ok dataset, Ok strategy, Ok preset ->
                defaultsOf dataset strategy preset
                |> Result.mapError (fun m -> { Field = "dataset"; Message = m })

        match start with
        | Error e -> Error [ e ]
        | Ok start ->
            let named = given |> List.map (fun (o, _) -> o.Name) |> Set.ofList

            let ownDefaults =
                [
                    for o in all do
                        if not (named.Contains o.Name) then
                            match o.FrontEndDefault front with
                            | Some v -> o, v
                            | None -> ()
                ]

            let c, errors =
                (ownDefaults @ given)
                |> List.fold
                    (fun (c, errors) (o, v) ->
                        match o.Set v c with
                        | Ok c -> c, errors
                        | Error m -> c, { Field = o.Name; Message = m } :: errors)
                    (start, [])

            match List.rev errors with
            | [] -> Ok c
            | errors -> Error errors

    /// The value of one option by name, as canonical text.
    let get (name: string) (c: Configuration) =
        match tryFind name with
        | Some o -> o.Get c
        | None -> invalidArg (nameof name) $"unknown option '{name}'"

    /// The settings of a configuration built from a spec alone (e.g. read for a report): the table defaults.
    let defaultSettings =
        {
            DataDir = ""
            TestDir = ""
            Threads = 0
            Device = AutoDevice
            ScoreBatch = 250
        }

    /// The value of a spec's option by name, as canonical text.
    let specValue (name: string) (s: ExperimentSpec) =
        get name { Spec = s; Settings = defaultSettings }

    /// What a run's strategy is, in words: for WAAL, which parts of the method are in use. The recommended
    /// preset's waal is "WAAL's trainer, margin query, critic off": the critic shapes the features through the
    /// training but is not in the query (docs/findings.md §6 measured why). Written to spec.json's `summary`, the
    /// report's settings lines and `waal run`'s first lines.
    let describe (s: ExperimentSpec) =
        let name = s.Strategy.ToLowerInvariant()

        if name = "transport" || name = "mmd" then
            let b = s.BatchQuery
            let distance = if name = "transport" then "W1" else "MMD"

            let weights =
                if b.Beta = 0.0 then
                    "uniform weights"
                else
                    $"weights u^{formatNumber b.Beta}"

            let trainer =
                match b.Trainer with
                | PlainTrainer -> "cross-entropy training"
                | WaalTrainer -> "WAAL's trainer"

            $"{name}: the batch that most lowers the {distance} from the pool ({weights}) to the labelled set, {trainer}"
        elif not (isWaal s.Strategy) then
            s.Strategy
        else
            let m = s.Method
            let u = specValue "waal-uncertainty" s
            let frozen = if m.CriticTrained then "" else ", frozen random critic"

            match m.Score with
            | UncertaintyOnly -> $"WAAL's trainer, {u} query, critic off"
            | DiversityOnly -> $"WAAL's trainer, critic-only query{frozen}"
            | Combined when m.ScoreScale = PaperScale && m.Uncertainty = BoundUncertainty ->
                $"WAAL, the paper's query: bound - {formatNumber m.Selection} x critic{frozen}"
            | Combined ->
                let scale = specValue "score-scale" s
                $"WAAL: {u} - {formatNumber m.Selection} x critic on the {scale} scale{frozen}"

    /// Every problem with a configuration's values (empty when valid): each option's value must read back.
    let problems (c: Configuration) : SpecError list =
        [
            for o in all do
                match o.Set (o.Get c) c with
                | Ok _ -> ()
                | Error m -> { Field = o.Name; Message = m }
        ]

    /// The configuration, or every problem with it.
    let validate (c: Configuration) =
        match problems c with
        | [] -> Ok c
        | errors -> Error errors

    /// The spec with its seed blanked, for grouping runs that differ only in their seed.
    let withoutSeed (s: ExperimentSpec) = { s with Seed = 0L }
