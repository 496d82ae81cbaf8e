namespace Waal.Core

open System
open System.IO
open System.Text
open System.Text.Json

/// The sign of the gradient penalty in the critic step, loss = -alpha gap + s x weight x alpha x GP.
type GpSign =
    /// s = -1, as the reference code does: the critic step MAXIMISES the penalty.
    | ReferenceSign
    /// s = +1, as WGAN-GP does: the penalty pulls the critic toward 1-Lipschitz.
    | WganGpSign

/// The critic's last activation.
type CriticOutput =
    /// sigmoid, output in (0, 1), as the reference.
    | SigmoidOutput
    /// the raw linear output (a proper Kantorovich potential).
    | LinearOutput

/// Where the networks compute.
type DeviceChoice =
    /// CUDA when libtorch sees a GPU, else the CPU.
    | AutoDevice
    | CpuDevice
    | CudaDevice

/// How long the plain cross-entropy trainer (the baselines') trains in a round.
type TrainBudget =
    /// `Epochs` passes over the labelled set, as the baselines' reference (DeepAL).
    | EpochsOverLabelled
    /// As many iterations as WAAL takes in that round: Epochs x ceil(max(|L|,|U|) / Batch).
    | MatchWaal

/// The adversary of WAAL's min-max game.
type Adversary =
    /// The Wasserstein critic with the gradient penalty (the method).
    | Wasserstein
    /// The paper's ablation: a discriminator trained with binary cross-entropy "unlabelled vs labelled".
    | HDivergence

/// What WAAL's query ranks by (the paper's ablations).
type WaalScore =
    /// u - selection x critic (the method).
    | Combined
    /// u alone (selection 0).
    | UncertaintyOnly
    /// -critic alone: the items least like the labelled set.
    | DiversityOnly

/// How a round trains: the optimiser and the length of training.
type TrainOptions =
    {
        Epochs: int
        Batch: int
        LearningRate: float
        Momentum: float
        /// For the plain trainer only; WAAL always trains Epochs x max(|L|,|U|) pairs.
        Budget: TrainBudget
    }

/// WAAL's own settings (ignored by strategies that do not use them).
type MethodOptions =
    {
        Alpha: float
        Selection: float
        Imbalance: Imbalance.Coefficient
        GpSign: GpSign
        GpWeight: float
        CriticOutput: CriticOutput
        Bound: Uncertainty.Bound
        Augment: bool
        Adversary: Adversary
        Score: WaalScore
    }

/// Everything that defines an experiment; what spec.json holds.
type ExperimentSpec =
    {
        /// fashion-mnist, cifar10 or svhn.
        Dataset: string
        /// The folder holding the dataset's files.
        DataDir: string
        Strategy: string
        Initial: int
        Query: int
        /// Query rounds; the experiment has Rounds + 1 evaluated rounds (0 .. Rounds).
        Rounds: int
        Seed: int64
        /// The first Pool training images form the pool (None: all of them).
        Pool: int option
        /// libtorch's intra-op threads (0: libtorch's default).
        Threads: int
        Device: DeviceChoice
        /// Images per forward pass when scoring the pool or the test set.
        ScoreBatch: int
        Train: TrainOptions
        Method: MethodOptions
    }

/// A spec field that is out of range or unreadable: the field as spec.json and the CLI name it.
type SpecError = { Field: string; Message: string }

/// Defaults, validation and JSON for experiment specs.
module Spec =
    /// The datasets the runner knows.
    let datasets = [ "fashion-mnist"; "cifar10"; "svhn" ]

    /// The reference settings (waal.md): SGD lr 0.01, momentum 0.5 (CIFAR-10: 0.3), batch 64 + 64,
    /// alpha 2e-3, selection 10, c = |L|/|U|, the reference GP sign with weight 2, sigmoid critic, no augmentation.
    let defaults (dataset: string) (dataDir: string) =
        {
            Dataset = dataset
            DataDir = dataDir
            Strategy = "waal"
            Initial = 1000
            Query = 1000
            Rounds = 5
            Seed = 1L
            Pool = None
            Threads = 0
            Device = AutoDevice
            ScoreBatch = 250
            Train =
                {
                    Epochs = 2
                    Batch = 64
                    LearningRate = 0.01
                    Momentum = if dataset = "cifar10" then 0.3 else 0.5
                    Budget = EpochsOverLabelled
                }
            Method =
                {
                    Alpha = 2e-3
                    Selection = 10.0
                    Imbalance = Imbalance.Reference
                    GpSign = ReferenceSign
                    GpWeight = 2.0
                    CriticOutput = SigmoidOutput
                    Bound = Uncertainty.Mixed
                    Augment = false
                    Adversary = Wasserstein
                    Score = Combined
                }
        }

    /// The baselines' reference training (DeepAL): 10 epochs over L for Fashion-MNIST, 20 for SVHN and CIFAR-10,
    /// CIFAR-10 with lr 0.05 and momentum 0.3; everything else as given.
    let baselineTrain (dataset: string) (t: TrainOptions) =
        { t with
            Epochs = (if dataset = "fashion-mnist" then 10 else 20)
            LearningRate = (if dataset = "cifar10" then 0.05 else t.LearningRate)
        }

    /// Names as written in spec.json and on the command line.
    let imbalanceName =
        function
        | Imbalance.Reference -> "reference"
        | Imbalance.Paper -> "paper"
        | Imbalance.One -> "one"

    let gpSignName =
        function
        | ReferenceSign -> "reference"
        | WganGpSign -> "wgan-gp"

    let criticName =
        function
        | SigmoidOutput -> "sigmoid"
        | LinearOutput -> "linear"

    let deviceName =
        function
        | AutoDevice -> "auto"
        | CpuDevice -> "cpu"
        | CudaDevice -> "cuda"

    let boundName =
        function
        | Uncertainty.Mixed -> "mixed"
        | Uncertainty.L1 -> "l1"
        | Uncertainty.L2 -> "l2"
        | Uncertainty.WorstCase -> "worst-case"

    let budgetName =
        function
        | EpochsOverLabelled -> "epochs"
        | MatchWaal -> "match-waal"

    let adversaryName =
        function
        | Wasserstein -> "wasserstein"
        | HDivergence -> "h-divergence"

    let scoreName =
        function
        | Combined -> "combined"
        | UncertaintyOnly -> "uncertainty"
        | DiversityOnly -> "diversity"

    let private parseWith (all: 'a list) (name: 'a -> string) (text: string) =
        all |> List.tryFind (fun v -> name v = text.ToLowerInvariant())

    let private choices (all: 'a list) (name: 'a -> string) =
        all |> List.map name |> String.concat " | "

    let private imbalances = [ Imbalance.Reference; Imbalance.Paper; Imbalance.One ]
    let private gpSigns = [ ReferenceSign; WganGpSign ]
    let private critics = [ SigmoidOutput; LinearOutput ]
    let private devices = [ AutoDevice; CpuDevice; CudaDevice ]

    let private bounds =
        [ Uncertainty.Mixed; Uncertainty.L1; Uncertainty.L2; Uncertainty.WorstCase ]

    let private budgets = [ EpochsOverLabelled; MatchWaal ]
    let private adversaries = [ Wasserstein; HDivergence ]
    let private scores = [ Combined; UncertaintyOnly; DiversityOnly ]

    /// Parses a name; the error lists the accepted ones.
    let parseImbalance (text: string) = parseWith imbalances imbalanceName text
    let parseGpSign (text: string) = parseWith gpSigns gpSignName text
    let parseCritic (text: string) = parseWith critics criticName text
    let parseDevice (text: string) = parseWith devices deviceName text
    let parseBound (text: string) = parseWith bounds boundName text
    let parseBudget (text: string) = parseWith budgets budgetName text

    let parseAdversary (text: string) =
        parseWith adversaries adversaryName text

    let parseScore (text: string) = parseWith scores scoreName text

    /// Every problem with the values of a spec (empty when it is valid); dataset sizes are checked on load.
    let problems (s: ExperimentSpec) : SpecError list =
        [
            let bad field message = { Field = field; Message = message }

            if not (List.contains s.Dataset datasets) then
                let known = String.Join(", ", datasets)
                bad "dataset" $"unknown dataset '{s.Dataset}'; expected one of {known}"

            if String.IsNullOrWhiteSpace s.Strategy then
                bad "strategy" "expected a strategy name, found nothing"

            if s.Initial < 1 then
                bad "initial" $"expected at least 1 initial label, found {s.Initial}"

            if s.Query < 1 then
                bad "query" $"expected a query batch of at least 1, found {s.Query}"

            if s.Rounds < 0 then
                bad "rounds" $"expected 0 or more rounds, found {s.Rounds}"

            match s.Pool with
            | Some p when p < 1 -> bad "pool" $"expected a pool of at least 1 image, found {p}"
            | _ -> ()

            if s.Threads < 0 then
                bad "threads" $"expected 0 (libtorch's default) or more threads, found {s.Threads}"

            if s.ScoreBatch < 1 then
                bad "score-batch" $"expected at least 1, found {s.ScoreBatch}"

            if s.Train.Epochs < 1 then
                bad "epochs" $"expected at least 1 epoch, found {s.Train.Epochs}"

            if s.Train.Batch < 1 then
                bad "batch" $"expected a batch of at least 1, found {s.Train.Batch}"

            if not (s.Train.LearningRate > 0.0 && Double.IsFinite s.Train.LearningRate) then
                bad "lr" $"expected a positive learning rate, found {s.Train.LearningRate}"

            if not (s.Train.Momentum >= 0.0 && s.Train.Momentum < 1.0) then
                bad "momentum" $"expected a momentum in [0, 1), found {s.Train.Momentum}"

            if not (s.Method.Alpha >= 0.0 && Double.IsFinite s.Method.Alpha) then
                bad "alpha" $"expected alpha >= 0, found {s.Method.Alpha}"

            if not (Double.IsFinite s.Method.Selection) then
                bad "selection" $"expected a finite number, found {s.Method.Selection}"

            if not (s.Method.GpWeight >= 0.0 && Double.IsFinite s.Method.GpWeight) then
                bad "gp-weight" $"expected a weight >= 0, found {s.Method.GpWeight}"
        ]

    /// The spec, or every problem with it.
    let validate (s: ExperimentSpec) =
        match problems s with
        | [] -> Ok s
        | errors -> Error errors

    /// The spec as indented JSON, with the versions of the software that ran it (not part of its identity).
    let toJson (versions: (string * string) list) (s: ExperimentSpec) =
        use stream = new MemoryStream()

        do
            use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
            w.WriteStartObject()
            w.WriteString("dataset", s.Dataset)
            w.WriteString("dataDir", s.DataDir)
            w.WriteString("strategy", s.Strategy)
            w.WriteNumber("initial", s.Initial)
            w.WriteNumber("query", s.Query)
            w.WriteNumber("rounds", s.Rounds)
            w.WriteNumber("seed", s.Seed)

            match s.Pool with
            | Some p -> w.WriteNumber("pool", p)
            | None -> w.WriteNull "pool"

            w.WriteNumber("threads", s.Threads)
            w.WriteString("device", deviceName s.Device)
            w.WriteNumber("scoreBatch", s.ScoreBatch)
            w.WriteNumber("epochs", s.Train.Epochs)
            w.WriteNumber("batch", s.Train.Batch)
            w.WriteNumber("lr", s.Train.LearningRate)
            w.WriteNumber("momentum", s.Train.Momentum)
            w.WriteString("trainBudget", budgetName s.Train.Budget)
            w.WriteNumber("alpha", s.Method.Alpha)
            w.WriteNumber("selection", s.Method.Selection)
            w.WriteString("imbalance", imbalanceName s.Method.Imbalance)
            w.WriteString("gpSign", gpSignName s.Method.GpSign)
            w.WriteNumber("gpWeight", s.Method.GpWeight)
            w.WriteString("critic", criticName s.Method.CriticOutput)
            w.WriteString("bound", boundName s.Method.Bound)
            w.WriteBoolean("augment", s.Method.Augment)
            w.WriteString("adversary", adversaryName s.Method.Adversary)
            w.WriteString("waalScore", scoreName s.Method.Score)
            w.WriteStartObject "versions"

            for name, version in versions do
                w.WriteString(name, version)

            w.WriteEndObject()
            w.WriteEndObject()

        Encoding.UTF8.GetString(stream.ToArray())

    /// Reads a spec written by `toJson`; every unreadable or out-of-range field is reported by name.
    let ofJson (text: string) : Result<ExperimentSpec, SpecError list> =
        let parsed =
            try
                Ok(JsonDocument.Parse text)
            with :? JsonException as e ->
                Error
                    [
                        {
                            Field = "document"
                            Message = $"not valid JSON ({e.Message})"
                        }
                    ]

        parsed
        |> Result.bind (fun doc ->
            use doc = doc
            let root = doc.RootElement

            if root.ValueKind <> JsonValueKind.Object then
                Error
                    [
                        {
                            Field = "document"
                            Message = $"expected an object, found {root.ValueKind}"
                        }
                    ]
            else
                let errors = ResizeArray<SpecError>()

                let fail field message =
                    errors.Add { Field = field; Message = message }

                let field
                    (optional: bool)
                    (name: string)
                    (read: JsonElement -> 'a option)
                    (expected: string)
                    (fallback: 'a)
                    =
                    match root.TryGetProperty name with
                    | true, e ->
                        match
                            (try
                                read e
                             with _ ->
                                 None)
                        with
                        | Some v -> v
                        | None ->
                            fail name $"expected {expected}, found {e.GetRawText()}"
                            fallback
                    | _ when optional -> fallback
                    | _ ->
                        fail name "missing"
                        fallback

                let get name read expected fallback = field false name read expected fallback
                // Fields added after the first spec.json format: older files mean the defaults.
                let later name read expected fallback = field true name read expected fallback

                let str (e: JsonElement) =
                    if e.ValueKind = JsonValueKind.String then
                        Some(e.GetString())
                    else
                        None

                let int32 (e: JsonElement) =
                    match e.TryGetInt32() with
                    | true, v -> Some v
                    | _ -> None

                let int64 (e: JsonElement) =
                    match e.TryGetInt64() with
                    | true, v -> Some v
                    | _ -> None

                let number (e: JsonElement) =
                    match e.TryGetDouble() with
                    | true, v -> Some v
                    | _ -> None

                let boolean (e: JsonElement) =
                    match e.ValueKind with
                    | JsonValueKind.True -> Some true
                    | JsonValueKind.False -> Some false
                    | _ -> None

                let named parse all name =
                    str >> Option.bind parse, $"one of {choices all name}"

                let d = defaults "fashion-mnist" ""
                let imb, imbText = named parseImbalance imbalances imbalanceName
                let gps, gpsText = named parseGpSign gpSigns gpSignName
                let crit, critText = named parseCritic critics criticName
                let dev, devText = named parseDevice devices deviceName
                let bnd, bndText = named parseBound bounds boundName
                let bud, budText = named parseBudget budgets budgetName
                let adv, advText = named parseAdversary adversaries adversaryName
                let sco, scoText = named parseScore scores scoreName

                let pool =
                    get
                        "pool"
                        (fun e ->
                            if e.ValueKind = JsonValueKind.Null then
                                Some None
                            else
                                int32 e |> Option.map Some)
                        "an integer or null"
                        None

                let spec =
                    {
                        Dataset = get "dataset" str "a string" d.Dataset
                        DataDir = get "dataDir" str "a string" d.DataDir
                        Strategy = get "strategy" str "a string" d.Strategy
                        Initial = get "initial" int32 "an integer" d.Initial
                        Query = get "query" int32 "an integer" d.Query
                        Rounds = get "rounds" int32 "an integer" d.Rounds
                        Seed = get "seed" int64 "an integer" d.Seed
                        Pool = pool
                        Threads = get "threads" int32 "an integer" d.Threads
                        Device = get "device" dev devText d.Device
                        ScoreBatch = get "scoreBatch" int32 "an integer" d.ScoreBatch
                        Train =
                            {
                                Epochs = get "epochs" int32 "an integer" d.Train.Epochs
                                Batch = get "batch" int32 "an integer" d.Train.Batch
                                LearningRate = get "lr" number "a number" d.Train.LearningRate
                                Momentum = get "momentum" number "a number" d.Train.Momentum
                                Budget = later "trainBudget" bud budText d.Train.Budget
                            }
                        Method =
                            {
                                Alpha = get "alpha" number "a number" d.Method.Alpha
                                Selection = get "selection" number "a number" d.Method.Selection
                                Imbalance = get "imbalance" imb imbText d.Method.Imbalance
                                GpSign = get "gpSign" gps gpsText d.Method.GpSign
                                GpWeight = get "gpWeight" number "a number" d.Method.GpWeight
                                CriticOutput = get "critic" crit critText d.Method.CriticOutput
                                Bound = get "bound" bnd bndText d.Method.Bound
                                Augment = get "augment" boolean "true or false" d.Method.Augment
                                Adversary = later "adversary" adv advText d.Method.Adversary
                                Score = later "waalScore" sco scoText d.Method.Score
                            }
                    }

                if errors.Count > 0 then
                    Error(List.ofSeq errors)
                else
                    validate spec)

    /// The spec with the fields that do not change what is computed (seed aside) blanked, for grouping runs
    /// that differ only in their seed: data folder, threads, device and scoring batch.
    let identity (s: ExperimentSpec) =
        { s with
            DataDir = ""
            Threads = 0
            Device = AutoDevice
            ScoreBatch = 0
            Seed = 0L
        }
