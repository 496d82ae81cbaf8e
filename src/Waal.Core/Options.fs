namespace Waal.Core

open System

/// The one table of options, and everything derived from it: defaults, validation, parsing by name. The entries
/// live in three rooms (OptionTable.Experiment.fs, OptionTable.Training.fs, OptionTable.Query.fs), written in
/// OptionDef.fs's words; the presets' values are records (Presets.fs).
[<RequireQualifiedAccess>]
module Options =
    /// A number as canonical text (shortest round-trip form).
    let formatNumber (x: float) = OptionWords.formatNumber x

    /// The networks of the network registry, by name (Architecture.choices).
    let networks = Architecture.choices

    let private isWaal (strategy: string) =
        String.Equals(strategy, "waal", StringComparison.OrdinalIgnoreCase)

    /// Every option, in the order front ends list them. Adding an option is adding one entry to a room of the
    /// table (and its field in the spec types, with its lens); the command line, spec.json, MSBuild metadata and
    /// the C# facade follow.
    let all: OptionDef list =
        OptionTable.Experiment.head
        @ OptionTable.Training.options
        @ OptionTable.Query.method
        @ OptionTable.Experiment.pool
        @ OptionTable.Query.critic
        @ [ OptionTable.Training.preset ]

    /// The option of that command-line name or earlier name (case-insensitive).
    let tryFind (name: string) =
        all
        |> List.tryFind (fun o ->
            o.Names
            |> List.exists (fun n -> String.Equals(n, name, StringComparison.OrdinalIgnoreCase)))

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

    /// A front end's fallbacks from (option name, value) pairs: `fallbacks [ "strategy", "waal" ]`.
    let fallbacks (values: (string * string) list) : string -> string option =
        let m = Map.ofList values
        fun name -> m.TryFind name

    /// The one way every front end builds a configuration from the option values it was given, as (option,
    /// text) in the order given. The options read first (dataset, strategy, preset: their last value, else the
    /// front end's fallback) pick every other option's default; then come the front end's fallbacks for the
    /// other options not given (the labelling page's batches of 20), then every given value in order. Every
    /// error names its option and none is dropped; `defaultsOf dataset strategy preset` gives the defaults (the
    /// data layer's adds the dataset's standard folder). Each front end declares its own fallbacks: Core names
    /// none of them.
    let build
        (defaultsOf: string -> string -> Preset -> Result<Configuration, string>)
        (fallback: string -> string option)
        (given: (OptionDef * string) list)
        : Result<Configuration, SpecError list> =
        let readFirst (name: string) =
            let o = all |> List.find (fun o -> o.Name = name)

            match given |> List.filter (fun (g, _) -> g.Name = name) |> List.tryLast with
            | Some(_, v) -> Ok v
            | None ->
                match fallback name with
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
                        if not o.ReadFirst && not (named.Contains o.Name) then
                            match fallback o.Name with
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
