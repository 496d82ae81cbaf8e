namespace Waal;

// The typed choices of LearnerOptions. Member names are the option table's names in PascalCase; the facade turns
// them back into kebab-case (OptionTable.Kebab), and a test checks every member against the table and registries.

/// <summary>The query strategies; each member is the registry's name in kebab-case (LeastConfidence: least-confidence).</summary>
public enum Strategy
{
    /// <summary>Uniform without replacement.</summary>
    Random,
    /// <summary>Smallest top probability.</summary>
    LeastConfidence,
    /// <summary>Smallest gap between the two top probabilities.</summary>
    Margin,
    /// <summary>Largest predictive entropy.</summary>
    Entropy,
    /// <summary>Largest mutual information over MC-dropout passes.</summary>
    Bald,
    /// <summary>The pool points nearest k-means centroids of the embeddings.</summary>
    Kmeans,
    /// <summary>Greedy farthest-first on the embeddings.</summary>
    Kcenter,
    /// <summary>k-means++ seeds on gradient embeddings.</summary>
    Badge,
    /// <summary>Smallest DeepFool perturbation.</summary>
    Dfal,
    /// <summary>WAAL: smallest uncertainty minus selection x critic, with WAAL's adversarial trainer.</summary>
    Waal,
    /// <summary>The batch that most lowers the uncertainty-weighted W1 between the pool and the labelled set (greedy:
    /// it sees the whole batch, so copies of one image are not picked twice).</summary>
    Transport,
    /// <summary>Kernel herding: the batch that most lowers the uncertainty-weighted MMD to the labelled set.</summary>
    Mmd,
}

/// <summary>Which trainer the transport and mmd strategies' rounds use.</summary>
public enum BatchTrainer
{
    /// <summary>Plain cross-entropy on the labelled set, as every baseline.</summary>
    Plain,
    /// <summary>WAAL's adversarial trainer, with its options.</summary>
    Waal,
}

/// <summary>The dataset kinds: each picks the network and the normalisation.</summary>
public enum DatasetKind
{
    /// <summary>Fashion-MNIST (1x28x28).</summary>
    FashionMnist,
    /// <summary>CIFAR-10 (3x32x32).</summary>
    Cifar10,
    /// <summary>SVHN (3x32x32).</summary>
    Svhn,
    /// <summary>Images of any shape (a folder of class folders from the command line; arrays here): the
    /// normalisation is computed from the pool, the network chosen by shape.</summary>
    Folder,
}

/// <summary>The network registry.</summary>
public enum Network
{
    /// <summary>By dataset: Fashion-MNIST the small CNN, CIFAR-10 and SVHN VGG16-BN, a folder (or arrays) the residual
    /// net, with a <see cref="LearnerOptions.Backbone"/> the head.</summary>
    Auto,
    /// <summary>The reference small CNN (1x28x28 only).</summary>
    SmallCnn,
    /// <summary>VGG16 with batch norm (3x32x32 only).</summary>
    Vgg16,
    /// <summary>A residual net whose depth follows the image size (any size of at least 8x8).</summary>
    Resnet,
    /// <summary>The classifier alone on a backbone's embeddings (<see cref="LearnerOptions.Backbone"/>).</summary>
    Head,
}

/// <summary>Where the networks compute.</summary>
public enum ComputeDevice
{
    /// <summary>CUDA when libtorch sees a GPU, else the CPU.</summary>
    Auto,
    /// <summary>The CPU.</summary>
    Cpu,
    /// <summary>A CUDA GPU.</summary>
    Cuda,
}

/// <summary>How long a baseline trains in a round.</summary>
public enum TrainBudget
{
    /// <summary>Epochs passes over the labelled set (the baselines' reference).</summary>
    Epochs,
    /// <summary>As many steps as WAAL takes in that round.</summary>
    MatchWaal,
    /// <summary>Every strategy E x ceil(max(|L|, Floor) / batch) steps a round (the recommended protocol).</summary>
    Floor,
}

/// <summary>WAAL's imbalance coefficient c.</summary>
public enum ImbalanceCoefficient
{
    /// <summary>|L|/|U|, as the reference code.</summary>
    Reference,
    /// <summary>The paper's C0.</summary>
    Paper,
    /// <summary>1.</summary>
    One,
}

/// <summary>The sign of the gradient penalty in the critic step.</summary>
public enum GpSign
{
    /// <summary>-1, as the reference code.</summary>
    Reference,
    /// <summary>+1, as WGAN-GP.</summary>
    WganGp,
}

/// <summary>The critic's last activation.</summary>
public enum CriticActivation
{
    /// <summary>A sigmoid, as the reference.</summary>
    Sigmoid,
    /// <summary>The raw linear output.</summary>
    Linear,
}

/// <summary>WAAL's uncertainty bound on -log p.</summary>
public enum UncertaintyBound
{
    /// <summary>0.5 L1 + 0.5 L2 (the reference).</summary>
    Mixed,
    /// <summary>The L1 norm.</summary>
    L1,
    /// <summary>The L2 norm.</summary>
    L2,
    /// <summary>The largest entry.</summary>
    WorstCase,
}

/// <summary>WAAL's adversary.</summary>
public enum AdversaryKind
{
    /// <summary>The Wasserstein critic with the gradient penalty (the method).</summary>
    Wasserstein,
    /// <summary>The paper's H-divergence ablation (a BCE discriminator).</summary>
    HDivergence,
}

/// <summary>What WAAL's query ranks by.</summary>
public enum WaalScore
{
    /// <summary>u - selection x critic (the method).</summary>
    Combined,
    /// <summary>u alone.</summary>
    Uncertainty,
    /// <summary>The critic term alone.</summary>
    Diversity,
}

/// <summary>How the learning rate moves over a round.</summary>
public enum LearningRateSchedule
{
    /// <summary>The same rate throughout (the reference).</summary>
    Constant,
    /// <summary>A linear warm-up, then a half cosine down to 0.</summary>
    Cosine,
}

/// <summary>The critic's optimiser in WAAL's step B.</summary>
public enum CriticOptimiser
{
    /// <summary>The networks' SGD on the alpha-scaled loss (the reference).</summary>
    Sgd,
    /// <summary>Adam at its own rate on the unscaled loss.</summary>
    Adam,
}

/// <summary>WAAL's uncertainty term.</summary>
public enum WaalUncertainty
{
    /// <summary>The paper's bound of -log p (see <see cref="LearnerOptions.Bound"/>).</summary>
    Bound,
    /// <summary>The margin, standardised over the unlabelled pool against the standardised critic.</summary>
    Margin,
    /// <summary>The negative entropy, standardised over the unlabelled pool against the standardised critic.</summary>
    Entropy,
}

/// <summary>The scale on which WAAL's critic term meets its uncertainty term in the query score.</summary>
public enum ScoreScale
{
    /// <summary>The paper's bound and the critic raw; margin and entropy z-scored against the z-scored critic.</summary>
    Paper,
    /// <summary>Both terms z-scored over the unlabelled pool.</summary>
    Z,
    /// <summary>Both terms as rank fractions over the unlabelled pool.</summary>
    Rank,
}

/// <summary>How a scalar score becomes a batch (waal, entropy, margin, least-confidence).</summary>
public enum BatchMode
{
    /// <summary>The k best scores (the reference).</summary>
    TopK,
    /// <summary>k draws with probability proportional to rank^-beta.</summary>
    SoftRank,
    /// <summary>Equal quotas over the predicted classes, in score order.</summary>
    Balanced,
    /// <summary>The best member of each of k clusters of the top candidates.</summary>
    Cluster,
}

/// <summary>Where option defaults come from.</summary>
public enum Preset
{
    /// <summary>The published protocols (WAAL 2 epochs of max(|L|,|U|) pairs, baselines 10 epochs over L).</summary>
    Reference,
    /// <summary>The protocol and WAAL settings measured best (docs/findings.md); the default.</summary>
    Recommended,
}
