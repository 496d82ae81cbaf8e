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
        /// SGD's L2 weight decay (0: none, as the reference).
        WeightDecay: float
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
        /// The first Pool training images form the pool (None: all of them).
        Pool: int option
        Train: TrainOptions
        Method: MethodOptions
    }

/// How and where an experiment runs: settings that never change a result.
type RunSettings =
    {
        /// The folder holding the dataset's files.
        DataDir: string
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
