namespace Waal;

/// <summary>Options of an <see cref="ActiveLearner"/>; every property defaults to the reference value.</summary>
public sealed record LearnerOptions
{
    /// <summary>The query strategy: waal, random, least-confidence, margin, entropy, bald, kmeans, kcenter, badge or dfal.</summary>
    public string Strategy { get; init; } = "waal";

    /// <summary>The dataset kind, which picks the network and the normalisation: fashion-mnist, cifar10 or svhn.</summary>
    public string Dataset { get; init; } = "fashion-mnist";

    /// <summary>Epochs per training (WAAL: passes over max(|L|,|U|) pairs; baselines: passes over the labelled set).</summary>
    public int Epochs { get; init; } = 2;

    /// <summary>The seed of every random stream (initial draw, shuffles, network initialisation, dropout).</summary>
    public long Seed { get; init; } = 1;

    /// <summary>Where to compute: auto (CUDA when available), cpu or cuda.</summary>
    public string Device { get; init; } = "auto";

    /// <summary>libtorch threads; 0 keeps libtorch's default.</summary>
    public int Threads { get; init; }

    /// <summary>Batch size (per half for WAAL).</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>SGD learning rate.</summary>
    public double LearningRate { get; init; } = 0.01;

    /// <summary>SGD momentum.</summary>
    public double Momentum { get; init; } = 0.5;

    /// <summary>WAAL: the weight of the adversarial terms.</summary>
    public double Alpha { get; init; } = 2e-3;

    /// <summary>WAAL: the weight of the critic in the query score u - selection x critic.</summary>
    public double Selection { get; init; } = 10;

    /// <summary>Baselines' training budget: epochs (passes over the labelled set) or match-waal.</summary>
    public string TrainBudget { get; init; } = "epochs";

    /// <summary>The query batch size the imbalance coefficient assumes.</summary>
    public int QueryBatch { get; init; } = 1000;

    /// <summary>Images per forward pass when scoring.</summary>
    public int ScoreBatch { get; init; } = 250;
}

/// <summary>Progress of long work: the phase, steps done and steps in the phase.</summary>
/// <param name="Phase">What is running, e.g. "round 0 epoch 1/2", "query", "evaluate".</param>
/// <param name="Done">Steps done in the phase.</param>
/// <param name="Total">Steps in the phase.</param>
public sealed record RoundProgress(string Phase, int Done, int Total);

/// <summary>What a training produced.</summary>
/// <param name="Round">The round this training belongs to (0 for the first).</param>
/// <param name="Labelled">Labelled items it trained on.</param>
/// <param name="Steps">Optimiser steps taken.</param>
/// <param name="Duration">Wall time.</param>
public sealed record TrainingResult(int Round, int Labelled, long Steps, TimeSpan Duration);

/// <summary>One round of <see cref="ActiveLearner.RunRoundAsync"/>.</summary>
/// <param name="Round">The round.</param>
/// <param name="Labelled">Labelled items the model was trained on.</param>
/// <param name="TestAccuracy">Accuracy on the test data, when test data was given.</param>
/// <param name="Queried">The indices queried and labelled at the end of the round.</param>
/// <param name="Steps">Optimiser steps of the round's training.</param>
public sealed record RoundResult(int Round, int Labelled, double? TestAccuracy, IReadOnlyList<int> Queried, long Steps);

/// <summary>A failure with a stable code (e.g. DATA006, SESSION003) and a one-line message.</summary>
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
