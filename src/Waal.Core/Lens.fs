namespace Waal.Core

/// A field of a record seen from the outside: read it, or make a copy with it changed. The option table reaches
/// every value of a configuration through one of these, so an entry names its field instead of spelling out the
/// nested copy.
type internal Lens<'Whole, 'Part> =
    {
        Get: 'Whole -> 'Part
        Set: 'Part -> 'Whole -> 'Whole
    }

/// The fields of a configuration that options set, one lens each.
[<RequireQualifiedAccess>]
module internal Lens =
    let make (get: 'w -> 'p) (set: 'p -> 'w -> 'w) : Lens<'w, 'p> = { Get = get; Set = set }

    /// The inner lens seen through the outer one.
    let compose (outer: Lens<'a, 'b>) (inner: Lens<'b, 'c>) : Lens<'a, 'c> =
        {
            Get = outer.Get >> inner.Get
            Set = fun v a -> outer.Set (inner.Set v (outer.Get a)) a
        }

    let private spec' =
        make (fun (c: Configuration) -> c.Spec) (fun s c -> { c with Spec = s })

    let private settings' =
        make (fun (c: Configuration) -> c.Settings) (fun s c -> { c with Settings = s })

    let private spec (get: ExperimentSpec -> 'a) (set: 'a -> ExperimentSpec -> ExperimentSpec) =
        compose spec' (make get set)

    let private settings (get: RunSettings -> 'a) (set: 'a -> RunSettings -> RunSettings) =
        compose settings' (make get set)

    let private train (get: TrainOptions -> 'a) (set: 'a -> TrainOptions -> TrainOptions) =
        compose spec' (compose (make (fun s -> s.Train) (fun t s -> { s with Train = t })) (make get set))

    let private method (get: MethodOptions -> 'a) (set: 'a -> MethodOptions -> MethodOptions) =
        compose spec' (compose (make (fun s -> s.Method) (fun m s -> { s with Method = m })) (make get set))

    let private pick (get: PickOptions -> 'a) (set: 'a -> PickOptions -> PickOptions) =
        compose spec' (compose (make (fun s -> s.Pick) (fun p s -> { s with Pick = p })) (make get set))

    let private batchQuery (get: BatchQueryOptions -> 'a) (set: 'a -> BatchQueryOptions -> BatchQueryOptions) =
        compose spec' (compose (make (fun s -> s.BatchQuery) (fun b s -> { s with BatchQuery = b })) (make get set))

    let private images (get: ImageOptions -> 'a) (set: 'a -> ImageOptions -> ImageOptions) =
        compose spec' (compose (make (fun s -> s.Images) (fun i s -> { s with Images = i })) (make get set))

    let private stopping (get: StopOptions -> 'a) (set: 'a -> StopOptions -> StopOptions) =
        compose spec' (compose (make (fun s -> s.Stopping) (fun t s -> { s with Stopping = t })) (make get set))

    // The experiment.
    let dataset = spec _.Dataset (fun v s -> { s with Dataset = v })
    let strategy = spec _.Strategy (fun v s -> { s with Strategy = v })
    let network = spec _.Network (fun v s -> { s with Network = v })
    let backbone = spec _.Backbone (fun v s -> { s with Backbone = v })
    let preset = spec _.Preset (fun v s -> { s with Preset = v })
    let initial = spec _.Initial (fun v s -> { s with Initial = v })
    let query = spec _.Query (fun v s -> { s with Query = v })
    let rounds = spec _.Rounds (fun v s -> { s with Rounds = v })
    let seed = spec _.Seed (fun v s -> { s with Seed = v })
    let pool = spec _.PoolSize (fun v s -> { s with PoolSize = v })
    let validation = spec _.Validation (fun v s -> { s with Validation = v })
    let repeat = spec _.Repeat (fun v s -> { s with Repeat = v })
    let repeatNoise = spec _.RepeatNoise (fun v s -> { s with RepeatNoise = v })
    let rareClasses = spec _.RareClasses (fun v s -> { s with RareClasses = v })
    let rareKeep = spec _.RareKeep (fun v s -> { s with RareKeep = v })

    // Folder datasets' images.
    let imageSize = images _.Size (fun v i -> { i with Size = v })
    let channels = images _.Channels (fun v i -> { i with Channels = v })
    let skipBad = images _.SkipBad (fun v i -> { i with SkipBad = v })
    let holdout = images _.Holdout (fun v i -> { i with Holdout = v })

    // Stopping.
    let stopRules = stopping _.Rules (fun v t -> { t with Rules = v })
    let stopSet = stopping _.StopSet (fun v t -> { t with StopSet = v })

    // Training.
    let epochs = train _.Epochs (fun v t -> { t with Epochs = v })
    let batch = train _.Batch (fun v t -> { t with Batch = v })
    let learningRate = train _.LearningRate (fun v t -> { t with LearningRate = v })
    let momentum = train _.Momentum (fun v t -> { t with Momentum = v })
    let weightDecay = train _.WeightDecay (fun v t -> { t with WeightDecay = v })
    let budget = train _.Budget (fun v t -> { t with Budget = v })
    let floor = train _.Floor (fun v t -> { t with Floor = v })
    let nesterov = train _.Nesterov (fun v t -> { t with Nesterov = v })
    let schedule = train _.Schedule (fun v t -> { t with Schedule = v })
    let warmup = train _.Warmup (fun v t -> { t with Warmup = v })

    // WAAL.
    let alpha = method _.Alpha (fun v m -> { m with Alpha = v })
    let selection = method _.Selection (fun v m -> { m with Selection = v })
    let imbalance = method _.Imbalance (fun v m -> { m with Imbalance = v })
    let gpSign = method _.GpSign (fun v m -> { m with GpSign = v })
    let gpWeight = method _.GpWeight (fun v m -> { m with GpWeight = v })
    let criticOutput = method _.CriticOutput (fun v m -> { m with CriticOutput = v })
    let bound = method _.Bound (fun v m -> { m with Bound = v })
    let augment = method _.Augment (fun v m -> { m with Augment = v })
    let adversary = method _.Adversary (fun v m -> { m with Adversary = v })
    let score = method _.Score (fun v m -> { m with Score = v })

    let criticOptimiser =
        method _.CriticOptimiser (fun v m -> { m with CriticOptimiser = v })

    let criticLearningRate =
        method _.CriticLearningRate (fun v m -> { m with CriticLearningRate = v })

    let uncertainty = method _.Uncertainty (fun v m -> { m with Uncertainty = v })
    let criticSteps = method _.CriticSteps (fun v m -> { m with CriticSteps = v })
    let criticTrained = method _.CriticTrained (fun v m -> { m with CriticTrained = v })
    let criticHoldout = method _.CriticHoldout (fun v m -> { m with CriticHoldout = v })
    let scoreScale = method _.ScoreScale (fun v m -> { m with ScoreScale = v })

    // Turning scores into a batch.
    let batchMode = pick _.Mode (fun v p -> { p with Mode = v })
    let pickBeta = pick _.Beta (fun v p -> { p with Beta = v })
    let pickCandidates = pick _.Candidates (fun v p -> { p with Candidates = v })

    // The batch-level queries (transport, mmd).
    let transportBeta = batchQuery _.Beta (fun v b -> { b with Beta = v })

    let transportCandidates =
        batchQuery _.Candidates (fun v b -> { b with Candidates = v })

    let transportTargets = batchQuery _.Targets (fun v b -> { b with Targets = v })
    let transportTrainer = batchQuery _.Trainer (fun v b -> { b with Trainer = v })

    // Run settings: never change a result.
    let dataDir = settings _.DataDir (fun v s -> { s with DataDir = v })
    let testDir = settings _.TestDir (fun v s -> { s with TestDir = v })
    let threads = settings _.Threads (fun v s -> { s with Threads = v })
    let device = settings _.Device (fun v s -> { s with Device = v })
    let scoreBatch = settings _.ScoreBatch (fun v s -> { s with ScoreBatch = v })
