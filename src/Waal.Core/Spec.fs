namespace Waal.Core

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

/// How long a round trains.
type TrainBudget =
    /// The references: the plain trainer makes `Epochs` passes over the labelled set (DeepAL's baselines);
    /// WAAL makes `Epochs` epochs of max(|L|,|U|) labelled-unlabelled pairs (the WAAL authors').
    | EpochsOverLabelled
    /// The plain trainer takes as many steps as WAAL's reference budget in that round:
    /// Epochs x ceil(max(|L|,|U|) / Batch). WAAL as EpochsOverLabelled.
    | MatchWaal
    /// Every trainer, WAAL included: Epochs x ceil(max(|L|, Floor) / Batch) steps, each on one labelled batch
    /// (passes over a shuffled L); WAAL pairs each with an unlabelled batch from shuffled passes over U. Every
    /// strategy trains the same number of steps by construction, and the budget grows with |L|.
    | EpochsOverFloor

/// How the learning rate moves over a round's steps.
type Schedule =
    /// The same rate throughout (the reference).
    | ConstantRate
    /// A linear warm-up over the first `Warmup` epochs' steps, then a half cosine down to 0 at the last step.
    | CosineRate

/// The critic's optimiser in WAAL's step B.
type CriticOptimiser =
    /// The networks' SGD (rate, momentum, schedule) on the alpha-scaled loss (the reference: an effective rate
    /// of lr x alpha).
    | CriticSgd
    /// Adam at its own rate on the unscaled loss -gap + sign x weight x GP (as DeepAL+ trains it).
    | CriticAdam

/// How a strategy with a scalar score turns the scores of U into a batch.
type BatchMode =
    /// The k best scores (the reference).
    | TopK
    /// k draws without replacement with P proportional to rank^-beta (Gumbel-top-k on the keyed stream):
    /// beta -> infinity is top-k, beta = 0 uniform (Kirsch et al., TMLR 2023).
    | SoftRank
    /// Equal quotas over the predicted classes, each filled in score order (the remainder to the classes of the
    /// best leftover scores); a class with too few candidates leaves its places to the others.
    | ClassBalanced
    /// The best `Candidates` x k scores clustered into k groups (k-means++ on the embeddings), the best-scoring
    /// member of each.
    | Clustered

/// What WAAL's uncertainty term is.
type WaalUncertainty =
    /// The paper's bound of -log p (the `Bound` option), on its own scale (the reference).
    | BoundUncertainty
    /// The margin p(1) - p(2), standardised over U, against the standardised critic.
    | MarginUncertainty
    /// The negative entropy sum p log p, standardised over U, against the standardised critic.
    | EntropyUncertainty

/// A named set of defaults: every option not given takes its value from the preset.
type Preset =
    /// The authors' code's settings at a CPU budget (not the paper's 80-epoch protocol): WAAL 2 epochs of max(|L|,|U|) pairs, baselines 10 epochs over L (Fashion-MNIST),
    /// SGD without schedule, the reference critic and top-k. Runs made before presets existed are this preset.
    | ReferencePreset
    /// The protocol measured in docs/findings.md: a budget that grows with |L| (with a floor), the same for every
    /// strategy, and the WAAL settings that did best.
    | RecommendedPreset

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

/// On which scale WAAL's critic term meets its uncertainty term in the query score u - selection x d.
type ScoreScale =
    /// The paper's bound and the critic as they are; margin and entropy z-scored against the z-scored critic.
    | PaperScale
    /// Both terms z-scored over U (mean 0, deviation 1): selection is the critic's weight in deviations.
    | ZScale
    /// Both terms as ranks over U scaled to [0, 1]: selection is the critic's weight in rank fractions.
    | RankScale

/// How a round trains: the optimiser and the length of training.
type TrainOptions =
    {
        Epochs: int
        Batch: int
        LearningRate: float
        Momentum: float
        /// SGD's L2 weight decay (0: none, as the reference).
        WeightDecay: float
        Budget: TrainBudget
        /// M of the EpochsOverFloor budget: a round trains on at least M labelled images' worth of batches.
        Floor: int
        Nesterov: bool
        Schedule: Schedule
        /// Warm-up epochs of the cosine schedule.
        Warmup: int
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
        CriticOptimiser: CriticOptimiser
        /// Adam's rate for the critic (CriticAdam only).
        CriticLearningRate: float
        Uncertainty: WaalUncertainty
        /// Critic steps (step B) per step of the networks (step A).
        CriticSteps: int
        /// False: the critic keeps its random initialisation (a control: the same score path, nothing learned).
        CriticTrained: bool
        /// The fraction of the labelled and of the unlabelled items withheld from the critic's steps (the
        /// classifier still trains on them), to measure the critic on items it never saw (0: none).
        CriticHoldout: float
        /// The scale of the critic term against the uncertainty in the query score.
        ScoreScale: ScoreScale
    }

/// How a scalar score becomes a batch (every strategy that ranks by one score: waal, entropy, margin,
/// least-confidence).
type PickOptions =
    {
        Mode: BatchMode
        /// The soft-rank exponent.
        Beta: float
        /// The clustered mode's candidates, as a multiple of k.
        Candidates: int
    }

/// Which trainer a batch query's rounds use (the transport and mmd strategies).
type BatchTrainer =
    /// Plain cross-entropy on the labelled set, as every baseline.
    | PlainTrainer
    /// WAAL's adversarial trainer (with the method options), so the query's effect and the trainer's are judged
    /// apart.
    | WaalTrainer

/// The batch queries that choose the whole batch against the pool's measure: `transport` (greedy on the
/// uncertainty-weighted W1 between the pool and L u S) and `mmd` (kernel herding on the same weights).
type BatchQueryOptions =
    {
        /// The pool's weights w(x) ~ u(x)^Beta, u the margin uncertainty (0: plain W1 / MMD).
        Beta: float
        /// Candidates: the most uncertain Candidates x k unlabelled items (0: every unlabelled item).
        Candidates: int
        /// The pool measure: every unlabelled item, or a keyed uniform sample of this many when U is larger.
        Targets: int
        Trainer: BatchTrainer
    }

/// How the files of a folder dataset become images (the datasets stored in one file ignore it).
type ImageOptions =
    {
        /// 0: the stored size (all images alike); N: the shorter side resized to N, the centre N x N kept.
        Size: int
        /// 0: 1 when every image is grey, else 3; or 1 or 3.
        Channels: int
        /// Files that cannot be decoded are skipped and counted instead of stopping the run.
        SkipBad: bool
        /// Without a test folder: the fraction of each class held out (seeded, stratified) as the test split.
        Holdout: float
    }

/// When an experiment ends before its last round.
type StopOptions =
    {
        /// The rules (none: run every round); the first that fires ends the experiment after that round.
        Rules: StopRule list
        /// The size of the fixed stop set: pool items drawn once (key (seed, 0, "stop-set")) whose predictions
        /// every round are compared with the previous round's.
        StopSet: int
    }

/// Everything that defines an experiment's result: two experiments with equal specs compute the same thing
/// (on the same machine and thread count). The experiment's identity is this record itself.
type ExperimentSpec =
    {
        /// A dataset name from the dataset registry (Waal.Data.Datasets).
        Dataset: string
        Strategy: string
        Initial: int
        Query: int
        /// Query rounds; the experiment has Rounds + 1 evaluated rounds (0 .. Rounds).
        Rounds: int
        Seed: int64
        /// The first PoolSize training images form the pool (None: all of them): `--pool`.
        PoolSize: int option
        /// The next Validation training images after the pool: a validation split, evaluated every round beside
        /// the test set, so that settings are chosen without touching the test set (0: none).
        Validation: int
        /// Copies of each pool image (1: none): Kirsch et al.'s Repeated-MNIST, a redundant pool where top-k by
        /// uncertainty picks the same image several times. Item c x P + i is copy c of image i.
        Repeat: int
        /// The standard deviation of the Gaussian noise added to every copy, as a fraction of the pixel range.
        RepeatNoise: float
        /// Classes kept at RareKeep of their pool images (the first ones, in pool order): an imbalanced pool; the
        /// test and validation splits are untouched (empty: none).
        RareClasses: int list
        /// The fraction of each rare class's pool images kept.
        RareKeep: float
        Train: TrainOptions
        Method: MethodOptions
        Pick: PickOptions
        /// The transport and mmd strategies' settings.
        BatchQuery: BatchQueryOptions
        /// The preset the defaults came from (recorded; the values above are what counts).
        Preset: Preset
        /// How a folder dataset's files become images.
        Images: ImageOptions
        /// When to stop early.
        Stopping: StopOptions
        /// A network from the network registry, or "auto" (chosen by the dataset: a reference dataset's network
        /// by its shape, the residual net for a folder, the head with a backbone).
        Network: string
        /// A pretrained TorchScript image model whose outputs replace the pixels as the networks' inputs (""
        /// none): every image is embedded once and each round trains the head on the embeddings.
        Backbone: string
    }

/// How and where an experiment runs: settings that never change a result.
type RunSettings =
    {
        /// The folder holding the dataset's files.
        DataDir: string
        /// A folder dataset's test folder ("" : a held-out part of DataDir).
        TestDir: string
        /// libtorch's intra-op threads (0: libtorch's default).
        Threads: int
        Device: DeviceChoice
        /// Images per forward pass when scoring the pool or the test set.
        ScoreBatch: int
    }

/// A spec and the settings it runs with: what spec.json holds and what every front end builds.
type Configuration =
    {
        Spec: ExperimentSpec
        Settings: RunSettings
    }

/// A spec field that is out of range or unreadable: the option's name, as the command line spells it.
type SpecError = { Field: string; Message: string }

/// The facts about a dataset that option defaults depend on; the dataset registry (Waal.Data.Datasets) holds
/// one per dataset.
type DatasetProfile =
    {
        Name: string
        /// The reference SGD momentum for this dataset (every strategy).
        Momentum: float
        /// The baselines' reference epochs over the labelled set.
        BaselineEpochs: int
        /// The baselines' reference learning rate.
        BaselineLearningRate: float
    }
