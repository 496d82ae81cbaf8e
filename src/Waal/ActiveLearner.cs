using Microsoft.FSharp.Core;
using Waal.Core;
using Session = Waal.Experiments.Session;

namespace Waal;

/// <summary>Active learning over your own pool: draw or give initial labels, train, ask which items to label
/// next, feed the labels back (from a person, a file, a service), and repeat. Every long operation is
/// asynchronous, reports progress and can be cancelled. Not thread-safe for concurrent calls: one operation at
/// a time (concurrent calls wait for each other).</summary>
public sealed class ActiveLearner : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Session.Session _session;
    private IProgress<RoundProgress>? _progress;
    private string _phase = "";
    private int _done;
    private int _total;

    private ActiveLearner(Func<Learning.ProgressSink, Session.Session> open) =>
        _session = open(Learning.ProgressSinkModule.ofDelegates(Start, Advance, Finish));

    /// <summary>Opens a learner over a pool of images (labels unknown to it), with optional test data for
    /// <see cref="EvaluateAsync"/>. Throws <see cref="WaalException"/> on bad options.</summary>
    public static ActiveLearner Create(LearnerData pool, LearnerOptions? options = null, LearnerData? test = null)
    {
        var spec = ToSpec(options ?? new LearnerOptions());
        return new ActiveLearner(sink => Errors.Unwrap(Session.create(spec, pool.Dataset, Some(test), sink)));
    }

    /// <summary>Reopens a session saved by <see cref="SaveAsync"/> over the same pool (and optional test data).</summary>
    public static Task<ActiveLearner> LoadAsync(string folder, LearnerData pool, LearnerData? test = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => new ActiveLearner(sink => Errors.Unwrap(Session.load(folder, pool.Dataset, Some(test), sink))), cancellationToken);

    /// <summary>The number of items in the pool.</summary>
    public int PoolSize => _session.Pool.Size;

    /// <summary>Trainings done so far (the round the next training belongs to).</summary>
    public int Round => _session.Round;

    /// <summary>True once a model has been trained (queries and evaluation need one).</summary>
    public bool IsTrained => FSharpOption<Learning.Nets.Networks>.get_IsSome(_session.Model);

    /// <summary>The labelled indices, ascending.</summary>
    public IReadOnlyList<int> Labelled => PoolModule.labelled(_session.Pool);

    /// <summary>The unlabelled indices, ascending.</summary>
    public IReadOnlyList<int> Unlabelled => PoolModule.unlabelled(_session.Pool);

    /// <summary>The label of an item, or null while it has none.</summary>
    public int? LabelOf(int index)
    {
        var l = PoolModule.labelOf(_session.Pool, index);
        return FSharpOption<int>.get_IsSome(l) ? l.Value : null;
    }

    /// <summary>Draws <paramref name="count"/> random unlabelled indices from the seeded stream: an initial batch
    /// to label. Nothing is labelled until <see cref="AddLabels"/>.</summary>
    public IReadOnlyList<int> DrawInitial(int count) => Session.drawInitial(count, _session);

    /// <summary>Adds labels; throws <see cref="WaalException"/> (SESSION004) and changes nothing when an index is
    /// out of range, already labelled or repeated, or a label is out of range.</summary>
    public void AddLabels(IReadOnlyList<int> indices, IReadOnlyList<int> labels)
    {
        if (indices.Count != labels.Count)
            throw new WaalException("SESSION004", $"{indices.Count} indices but {labels.Count} labels; expected one label per index");
        var items = indices.Select((index, i) => Tuple.Create(index, labels[i])).ToArray();
        _gate.Wait();
        try { _session = Errors.Unwrap(Session.label(items, _session)); }
        finally { _gate.Release(); }
    }

    /// <summary>Trains fresh networks on the labelled items with the strategy's trainer.</summary>
    public Task<TrainingResult> TrainAsync(IProgress<RoundProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Locked(progress, cancellationToken, () =>
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var labelled = _session.Pool.LabelledCount;
            var round = _session.Round;
            var (next, steps) = Errors.Unwrap(Session.train(cancellationToken, _session));
            _session = next;
            return new TrainingResult(round, labelled, steps, clock.Elapsed);
        });

    /// <summary>The next <paramref name="count"/> unlabelled indices to label, chosen by the strategy with the
    /// last trained model (min(count, unlabelled) distinct indices).</summary>
    public Task<IReadOnlyList<int>> QueryAsync(int count, IProgress<RoundProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Locked<IReadOnlyList<int>>(progress, cancellationToken, () => Errors.Unwrap(Session.query(cancellationToken, count, _session)));

    /// <summary>Accuracy of the last trained model on the test data given at creation.</summary>
    public Task<double> EvaluateAsync(IProgress<RoundProgress>? progress = null, CancellationToken cancellationToken = default) =>
        Locked(progress, cancellationToken, () => Errors.Unwrap(Session.evaluate(_session)));

    /// <summary>One round: train, evaluate (when test data was given), query <paramref name="count"/> items, ask
    /// the oracle for their labels and add them.</summary>
    public async Task<RoundResult> RunRoundAsync(IOracle oracle, int count, IProgress<RoundProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var round = Round;
        var labelled = _session.Pool.LabelledCount;
        var trained = await TrainAsync(progress, cancellationToken).ConfigureAwait(false);
        double? accuracy = FSharpOption<Tuple<Data.Dataset, Learning.Tensors.DataTensors>>.get_IsSome(_session.Test)
            ? await EvaluateAsync(progress, cancellationToken).ConfigureAwait(false)
            : null;
        var picked = await QueryAsync(count, progress, cancellationToken).ConfigureAwait(false);
        var labels = await oracle.LabelAsync(picked, cancellationToken).ConfigureAwait(false);
        AddLabels(picked, labels);
        return new RoundResult(round, labelled, accuracy, picked, trained.Steps);
    }

    /// <summary>Saves the session (options, label log, round, the last model's weights) into a folder, each file
    /// written atomically, so work can stop and continue another day with <see cref="LoadAsync"/>.</summary>
    public Task SaveAsync(string folder, CancellationToken cancellationToken = default) =>
        Locked<bool>(null, cancellationToken, () => { Errors.Unwrap(Session.save(folder, _session)); return true; });

    /// <summary>Releases the networks and the tensors.</summary>
    public void Dispose() => ((IDisposable)_session).Dispose();

    private Task<T> Locked<T>(IProgress<RoundProgress>? progress, CancellationToken cancellationToken, Func<T> work) =>
        Task.Run(async () =>
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                _progress = progress;
                return work();
            }
            finally
            {
                _progress = null;
                _gate.Release();
            }
        }, cancellationToken);

    private void Start(string phase, int total)
    {
        (_phase, _done, _total) = (phase, 0, total);
        _progress?.Report(new RoundProgress(phase, 0, total));
    }

    private void Advance(int steps)
    {
        _done += steps;
        _progress?.Report(new RoundProgress(_phase, _done, _total));
    }

    private void Finish()
    {
        if (_done != _total) _progress?.Report(new RoundProgress(_phase, _total, _total));
    }

    private static FSharpOption<Data.Dataset> Some(LearnerData? data) =>
        data is null ? FSharpOption<Data.Dataset>.None : FSharpOption<Data.Dataset>.Some(data.Dataset);

    private static ExperimentSpec ToSpec(LearnerOptions o)
    {
        var d = Spec.defaults(o.Dataset, "");
        var device = Spec.parseDevice(o.Device);
        var budget = Spec.parseBudget(o.TrainBudget);
        if (FSharpOption<DeviceChoice>.get_IsNone(device))
            throw new WaalException("SESSION001", $"Device: '{o.Device}' is not one of auto, cpu, cuda");
        if (FSharpOption<TrainBudget>.get_IsNone(budget))
            throw new WaalException("SESSION001", $"TrainBudget: '{o.TrainBudget}' is not one of epochs, match-waal");
        var train = new TrainOptions(o.Epochs, o.BatchSize, o.LearningRate, o.Momentum, budget.Value);
        var m = d.Method;
        var method = new MethodOptions(o.Alpha, o.Selection, m.Imbalance, m.GpSign, m.GpWeight, m.CriticOutput, m.Bound, m.Augment, m.Adversary, m.Score);
        return new ExperimentSpec(o.Dataset, d.DataDir, o.Strategy, d.Initial, o.QueryBatch, d.Rounds, o.Seed, d.Pool, o.Threads, device.Value, o.ScoreBatch, train, method);
    }
}
