namespace Waal;

/// <summary>Options of an <see cref="ActiveLearner"/>. Every property left null takes the option table's default
/// for the dataset and the strategy (the same default as the command line, spec.json and MSBuild).</summary>
public sealed record LearnerOptions
{
    /// <summary>The query strategy (default waal).</summary>
    public Strategy? Strategy { get; init; }

    /// <summary>The dataset kind, which picks the network and the normalisation (default fashion-mnist).</summary>
    public DatasetKind? Dataset { get; init; }

    /// <summary>Epochs per training (default 30: every strategy trains 30 x ceil(max(|L|, Floor) / BatchSize) steps
    /// a round; the reference preset: WAAL 2 passes over max(|L|,|U|) pairs, the baselines 10 over the labelled set,
    /// 20 for SVHN and CIFAR-10).</summary>
    public int? Epochs { get; init; }

    /// <summary>The seed of every random stream (initial draw, shuffles, network initialisation, dropout; default
    /// 1).</summary>
    public long? Seed { get; init; }

    /// <summary>Where to compute (default auto: CUDA when available).</summary>
    public ComputeDevice? Device { get; init; }

    /// <summary>libtorch threads (default 0: libtorch's own choice).</summary>
    public int? Threads { get; init; }

    /// <summary>Batch size (per half for WAAL; default 64).</summary>
    public int? BatchSize { get; init; }

    /// <summary>SGD learning rate (default 0.05; the reference preset 0.01, CIFAR-10's baselines 0.05).</summary>
    public double? LearningRate { get; init; }

    /// <summary>SGD momentum (default 0.9; the reference preset 0.5, CIFAR-10 0.3).</summary>
    public double? Momentum { get; init; }

    /// <summary>SGD's L2 weight decay on every network (default 5e-4; the reference preset 0: none).</summary>
    public double? WeightDecay { get; init; }

    /// <summary>How long a round trains (default floor: Epochs x max(|L|, Floor) samples; the reference preset
    /// epochs).</summary>
    public TrainBudget? TrainBudget { get; init; }

    /// <summary>WAAL: the weight of the adversarial terms (default 2e-3).</summary>
    public double? Alpha { get; init; }

    /// <summary>WAAL: the weight of the critic in the query score u - selection x critic (default 10).</summary>
    public double? Selection { get; init; }

    /// <summary>WAAL: the imbalance coefficient (default reference).</summary>
    public ImbalanceCoefficient? Imbalance { get; init; }

    /// <summary>WAAL: the gradient-penalty sign (default reference).</summary>
    public GpSign? GpSign { get; init; }

    /// <summary>WAAL: the gradient-penalty weight (default 2).</summary>
    public double? GpWeight { get; init; }

    /// <summary>WAAL: the critic's last activation (default sigmoid).</summary>
    public CriticActivation? Critic { get; init; }

    /// <summary>WAAL: the uncertainty bound (default mixed).</summary>
    public UncertaintyBound? Bound { get; init; }

    /// <summary>Random crop + flip for 3x32x32 data (default false).</summary>
    public bool? Augment { get; init; }

    /// <summary>WAAL: the adversary (default wasserstein).</summary>
    public AdversaryKind? Adversary { get; init; }

    /// <summary>WAAL: the query ranking (default uncertainty: the uncertainty term alone; the reference preset
    /// combined).</summary>
    public WaalScore? WaalScore { get; init; }

    /// <summary>The floor budget's M (<c>TrainBudget.Floor</c>; default 3000).</summary>
    public int? Floor { get; init; }

    /// <summary>Nesterov momentum in SGD (default true; the reference preset false).</summary>
    public bool? Nesterov { get; init; }

    /// <summary>The learning rate over a round (default cosine; the reference preset constant).</summary>
    public LearningRateSchedule? Schedule { get; init; }

    /// <summary>Warm-up epochs of the cosine schedule (default 1).</summary>
    public int? Warmup { get; init; }

    /// <summary>The critic's optimiser (default sgd: the networks' own, on the alpha-scaled loss).</summary>
    public CriticOptimiser? CriticOptimiser { get; init; }

    /// <summary>Adam's learning rate for the critic (default 0.001).</summary>
    public double? CriticLearningRate { get; init; }

    /// <summary>WAAL's uncertainty term (default margin; the reference preset bound).</summary>
    public WaalUncertainty? WaalUncertainty { get; init; }

    /// <summary>WAAL: critic steps per step of the networks (default 1).</summary>
    public int? CriticSteps { get; init; }

    /// <summary>WAAL: false keeps the critic at its random initialisation (a control; default true).</summary>
    public bool? CriticTrained { get; init; }

    /// <summary>WAAL: the fraction of the labelled and unlabelled items withheld from the critic's steps, so the
    /// signals measure it on items it never saw (default 0).</summary>
    public double? CriticHoldout { get; init; }

    /// <summary>WAAL's query: the scale on which the critic term meets the uncertainty (default paper).</summary>
    public ScoreScale? ScoreScale { get; init; }

    /// <summary>How a scalar score becomes a batch (default top-k).</summary>
    public BatchMode? BatchMode { get; init; }

    /// <summary>The soft-rank exponent (default 1).</summary>
    public double? Beta { get; init; }

    /// <summary>The cluster mode's candidates, as a multiple of the query batch (default 10).</summary>
    public int? Candidates { get; init; }

    /// <summary>Transport and mmd: the pool's weights u^beta, u = 1 - margin (default 2, chosen by the pilot of docs/findings.md §7; 0: plain W1 or MMD).</summary>
    public double? TransportBeta { get; init; }

    /// <summary>Transport and mmd: pick among the most uncertain C x k unlabelled items (default 10; 0: all).</summary>
    public int? TransportCandidates { get; init; }

    /// <summary>Transport and mmd: the pool measure is all unlabelled items, or a seeded sample of this many
    /// (default 20000).</summary>
    public int? TransportTargets { get; init; }

    /// <summary>Transport and mmd: the trainer of each round (default plain cross-entropy).</summary>
    public BatchTrainer? TransportTrainer { get; init; }

    /// <summary>The network (default auto: chosen by the dataset).</summary>
    public Network? Network { get; init; }

    /// <summary>Folder datasets: a pretrained image model (a TorchScript file, its preparation in a .json beside it)
    /// whose embeddings the head is trained on, each image embedded once (default none).</summary>
    public string? Backbone { get; init; }

    /// <summary>Stopping rules, as the command line's --stop-when writes them (e.g. "labels>=2000,kappa>=0.99");
    /// when one fires, <see cref="ActiveLearner.ProposeAsync"/> throws EXP014 and
    /// <see cref="ActiveLearner.StoppedBy"/> says which (default none: no rule).</summary>
    public string? StopWhen { get; init; }

    /// <summary>The stop set's size (default 1000 pool items, drawn once).</summary>
    public int? StopSet { get; init; }

    /// <summary>Where the defaults come from (default recommended: <see cref="Waal.Preset.Recommended"/>).</summary>
    public Preset? Preset { get; init; }

    /// <summary>Images per forward pass when scoring (default 250).</summary>
    public int? ScoreBatch { get; init; }
}

/// <summary>Progress of long work: the phase, steps done and steps in the phase.</summary>
/// <param name="Phase">What is running, e.g. "round 0 epoch 1/2", "query", "evaluate".</param>
/// <param name="Done">Steps done in the phase.</param>
/// <param name="Total">Steps in the phase.</param>
public sealed record RoundProgress(string Phase, int Done, int Total);

/// <summary>A batch proposed by <see cref="ActiveLearner.ProposeAsync"/>, waiting for its labels (it survives
/// <see cref="ActiveLearner.SaveAsync"/> and a restart).</summary>
/// <param name="Round">The round that proposed it.</param>
/// <param name="Labelled">Labelled items the round's model was trained on.</param>
/// <param name="TestAccuracy">The round model's accuracy on the test data, when test data was given.</param>
/// <param name="Indices">The pool indices to label, in query order.</param>
/// <param name="Steps">Optimiser steps of the round's training.</param>
/// <param name="Signals">The round's measurements by name: the stopping signals (stop_kappa, stop_agreement,
/// stop_uncertainty; kappa and agreement from round 1 on) and the strategy's own (WAAL: critic_auc, ...).</param>
public sealed record PendingBatch(int Round, int Labelled, double? TestAccuracy, IReadOnlyList<int> Indices, long Steps, IReadOnlyDictionary<string, double> Signals);

/// <summary>One completed round (<see cref="ActiveLearner.Accept"/>, <see cref="ActiveLearner.RunRoundAsync"/>).</summary>
/// <param name="Round">The round.</param>
/// <param name="Labelled">Labelled items the model was trained on.</param>
/// <param name="TestAccuracy">Accuracy on the test data, when test data was given.</param>
/// <param name="Queried">The indices queried and labelled at the end of the round.</param>
/// <param name="Steps">Optimiser steps of the round's training.</param>
/// <param name="Signals">The round's measurements by name (see <see cref="PendingBatch.Signals"/>).</param>
public sealed record RoundResult(int Round, int Labelled, double? TestAccuracy, IReadOnlyList<int> Queried, long Steps, IReadOnlyDictionary<string, double> Signals);

/// <summary>A failure with a stable code (e.g. DATA006, EXP006) and a one-line message.</summary>
public sealed class WaalException : Exception
{
    /// <summary>Creates the exception.</summary>
    public WaalException(string code, string message) : base($"{code}: {message}") => Code = code;

    /// <summary>The stable error code.</summary>
    public string Code { get; }
}

/// <summary>Labels a batch of pool indices: a person at a prompt, a file, a web service.</summary>
public interface IOracle
{
    /// <summary>Returns one label (0 .. classes-1) per index, in the same order.</summary>
    Task<IReadOnlyList<int>> LabelAsync(IReadOnlyList<int> indices, CancellationToken cancellationToken);
}

/// <summary>Ready-made oracles.</summary>
public static class Oracle
{
    /// <summary>An oracle from a function.</summary>
    public static IOracle FromFunc(Func<IReadOnlyList<int>, IReadOnlyList<int>> label) => new FuncOracle(label);

    private sealed class FuncOracle(Func<IReadOnlyList<int>, IReadOnlyList<int>> label) : IOracle
    {
        public Task<IReadOnlyList<int>> LabelAsync(IReadOnlyList<int> indices, CancellationToken cancellationToken) =>
            Task.FromResult(label(indices));
    }
}
