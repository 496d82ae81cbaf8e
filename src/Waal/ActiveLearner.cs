using System.Globalization;
using System.Reflection;
using System.Text;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using SessionModule = Waal.Experiments.Session;

namespace Waal;

/// <summary>Active learning over your own pool, one round in two halves: <see cref="ProposeAsync"/> trains a
/// model, evaluates it and picks a batch to label; <see cref="Accept"/> takes the labels for exactly that batch.
/// Between them the batch waits, for a second or a day: <see cref="SaveAsync"/> keeps it, and
/// <see cref="LoadAsync"/> brings the same batch back. Every long operation is asynchronous, reports progress
/// and can be cancelled. One operation at a time: concurrent calls wait for each other.</summary>
public sealed class ActiveLearner : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly CancellationTokenSource _disposing = new();
    private readonly SessionModule.Session _session;
    private IProgress<RoundProgress>? _progress;
    private string _phase = "";
    private int _done;
    private int _total;
    private int _disposed;

    private ActiveLearner(Func<Learning.ProgressSink, FSharpResult<SessionModule.Session, Experiments.ExperimentError>> open) =>
        _session = Errors.Unwrap(open(Learning.ProgressSinkModule.ofDelegates(Start, Advance, Finish)));

    /// <summary>Opens a learner over a pool of images (labels unknown to it), with optional test data for
    /// evaluation. Throws <see cref="WaalException"/> (EXP001) naming the option on bad options.</summary>
    public static ActiveLearner Create(LearnerData pool, LearnerOptions? options = null, LearnerData? test = null)
    {
        ArgumentNullException.ThrowIfNull(pool);
        Errors.NativeBackend();
        options ??= new LearnerOptions();
        // Images read from a folder are normalised with their own statistics unless a dataset is named.
        if (options.Dataset is null && pool.Files.Count > 0) options = options with { Dataset = DatasetKind.Folder };
        var config = OptionTable.ToConfiguration(options);
        return new ActiveLearner(sink => SessionModule.create(config, pool.Dataset, Some(test), sink));
    }

    /// <summary>Reopens a session saved by <see cref="SaveAsync"/> over the same pool (and optional test data),
    /// with its labels, its model and the batch that was waiting for labels.</summary>
    public static Task<ActiveLearner> LoadAsync(string folder, LearnerData pool, LearnerData? test = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        ArgumentNullException.ThrowIfNull(pool);
        Errors.NativeBackend();
        return Task.Run(() => new ActiveLearner(sink => SessionModule.load(folder, pool.Dataset, Some(test), sink)), cancellationToken);
    }

    /// <summary>The number of items in the pool.</summary>
    public int PoolSize => Live.Pool.Size;

    /// <summary>The round the next proposal belongs to (the pending batch's round while one waits).</summary>
    public int Round => Live.Round;

    /// <summary>True once a model has been trained (evaluation needs one).</summary>
    public bool IsTrained => FSharpOption<Learning.Nets.Networks>.get_IsSome(Live.Model);

    /// <summary>The labelled indices, ascending.</summary>
    public IReadOnlyList<int> Labelled => Core.PoolModule.labelled(Live.Pool);

    /// <summary>The unlabelled indices, ascending.</summary>
    public IReadOnlyList<int> Unlabelled => Core.PoolModule.unlabelled(Live.Pool);

    /// <summary>The batch waiting for labels, or null.</summary>
    public PendingBatch? Pending => ToPending(Live.Pending);

    /// <summary>The stopping rule that ended the rounds, with why (null while none has fired).</summary>
    public string? StoppedBy => FSharpOption<string>.get_IsSome(Live.Progress.Stopped) ? Live.Progress.Stopped.Value : null;

    /// <summary>The label of an item, or null while it has none.</summary>
    public int? LabelOf(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, PoolSize);
        var l = Core.PoolModule.labelOf(Live.Pool, index);
        return FSharpOption<int>.get_IsSome(l) ? l.Value : null;
    }

    /// <summary>Draws <paramref name="count"/> random unlabelled indices from the seeded stream: an initial batch
    /// to label. Nothing is labelled until <see cref="AddLabels"/>.</summary>
    public IReadOnlyList<int> DrawInitial(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return Locked(() => Live.DrawInitial(count));
    }

    /// <summary>Adds labels outside a round (the initial set, or extra labels between rounds); throws
    /// <see cref="WaalException"/> and changes nothing when an index is out of range, already labelled or
    /// repeated, a label is out of range (EXP010), or a batch is waiting for labels (EXP011).</summary>
    public void AddLabels(IReadOnlyList<int> indices, IReadOnlyList<int> labels)
    {
        var items = Pairs(indices, labels);
        Locked(() => Errors.Unwrap(Live.Label(items)));
    }

    /// <summary>The first half of a round: trains fresh networks on the labelled items with the strategy's
    /// trainer, evaluates them (when test data was given) and picks the next <paramref name="count"/> unlabelled
    /// items, which then wait for <see cref="Accept"/>. A cancelled proposal changes nothing.</summary>
    public Task<PendingBatch> ProposeAsync(int count, IProgress<RoundProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        return LockedAsync(progress, cancellationToken, token =>
        {
            var next = Errors.Unwrap(Live.Propose(token, count));
            if (FSharpOption<string>.get_IsSome(next.Stopped))
                throw Errors.Session(Experiments.ExperimentError.NewStopped(next.Stopped.Value));
            return ToPending(next.Pending) ?? throw Errors.Session(Experiments.ExperimentError.NewOutOfTurn(next.Round, "nothing is left to label: every item of the pool has a label"));
        });
    }

    /// <summary>The second half of a round: labels for the pending batch, one per index in the order of
    /// <see cref="PendingBatch.Indices"/>. Throws <see cref="WaalException"/> and changes nothing when no batch
    /// waits (EXP011), the count differs or a label is out of range (EXP010).</summary>
    public RoundResult Accept(IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        return Locked(() =>
        {
            var pending = ToPending(Live.Pending) ?? throw Errors.Session(Experiments.ExperimentError.NewOutOfTurn(Live.Round, "no batch is waiting for labels: propose one first"));
            var items = Pairs(pending.Indices, labels);
            var record = Errors.Unwrap(Live.Accept(items));
            return new RoundResult(record.Round, record.Labelled, Accuracy(record.TestAccuracy), record.Queried, record.TrainIterations, SignalsOf(record));
        });
    }

    /// <summary>The last trained model's class probabilities for pool items (one row per index, one column per
    /// class): what a labelling page of your own shows beside each image of <see cref="Pending"/> (the model's
    /// guess and how sure it is). Throws <see cref="WaalException"/> before any training (EXP012) and
    /// <see cref="ArgumentOutOfRangeException"/> for an index outside the pool.</summary>
    public Task<IReadOnlyList<IReadOnlyList<double>>> PredictPoolAsync(IReadOnlyList<int> indices, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var size = PoolSize;
        foreach (var i in indices)
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)size, nameof(indices));
        return LockedAsync<IReadOnlyList<IReadOnlyList<double>>>(null, cancellationToken, _ =>
        {
            var flat = Errors.Unwrap(Live.Probabilities(indices.ToArray()));
            var classes = indices.Count == 0 ? 0 : flat.Length / indices.Count;
            return Enumerable.Range(0, indices.Count)
                .Select(r => (IReadOnlyList<double>)Enumerable.Range(0, classes).Select(c => (double)flat[r * classes + c]).ToArray())
                .ToArray();
        });
    }

    /// <summary>Accuracy of the last trained model on the test data given at creation.</summary>
    public Task<double> EvaluateAsync(IProgress<RoundProgress>? progress = null, CancellationToken cancellationToken = default) =>
        LockedAsync(progress, cancellationToken, _ => Errors.Unwrap(Live.Evaluate()));

    /// <summary>One whole round: <see cref="ProposeAsync"/>, the oracle's labels for the batch, <see cref="Accept"/>.</summary>
    public async Task<RoundResult> RunRoundAsync(IOracle oracle, int count, IProgress<RoundProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(oracle);
        var pending = Pending ?? await ProposeAsync(count, progress, cancellationToken).ConfigureAwait(false);
        var labels = await oracle.LabelAsync(pending.Indices, cancellationToken).ConfigureAwait(false);
        return Accept(labels);
    }

    /// <summary>Saves the session (options, the state with its pending batch, the last model's weights) into a
    /// folder, each file written atomically, so work can stop and continue another day with
    /// <see cref="LoadAsync"/>.</summary>
    public Task SaveAsync(string folder, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        return LockedAsync<bool>(null, cancellationToken, _ => { Errors.Unwrap(Live.Save(folder)); return true; });
    }

    /// <summary>Releases the networks and the tensors. Safe while a call runs: that call is cancelled (a
    /// proposal stops at its next step) and the memory is released when it has returned. Later calls throw
    /// <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        _disposing.Cancel();
        _gate.Wait();
        try { ((IDisposable)_session).Dispose(); }
        finally { _gate.Release(); }
    }

    private SessionModule.Session Live
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
            return _session;
        }
    }

    private T Locked<T>(Func<T> work)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        _gate.Wait();
        try { return work(); }
        finally { _gate.Release(); }
    }

    private void Locked(Action work) => Locked(() => { work(); return true; });

    private Task<T> LockedAsync<T>(IProgress<RoundProgress>? progress, CancellationToken cancellationToken, Func<CancellationToken, T> work)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
        return Task.Run(async () =>
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
            await _gate.WaitAsync(linked.Token).ConfigureAwait(false);
            try
            {
                ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) == 1, this);
                _progress = progress;
                return work(linked.Token);
            }
            finally
            {
                _progress = null;
                _gate.Release();
            }
        }, cancellationToken);
    }

    private static Tuple<int, int>[] Pairs(IReadOnlyList<int> indices, IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(indices);
        ArgumentNullException.ThrowIfNull(labels);
        if (indices.Count != labels.Count)
            throw new WaalException(Errors.Code("LabelsRefused"), $"{indices.Count} indices but {labels.Count} labels; expected one label per index");
        return indices.Select((index, i) => Tuple.Create(index, labels[i])).ToArray();
    }

    private static double? Accuracy(double a) => double.IsNaN(a) ? null : a;

    private static IReadOnlyDictionary<string, double> SignalsOf(Core.RoundRecord record) =>
        record.StopSignals.Concat(record.Signals).GroupBy(s => s.Item1).ToDictionary(g => g.Key, g => g.Last().Item2);

    private static PendingBatch? ToPending(FSharpOption<Core.PendingBatch> pending) =>
        FSharpOption<Core.PendingBatch>.get_IsSome(pending)
            ? new PendingBatch(pending.Value.Record.Round, pending.Value.Record.Labelled, Accuracy(pending.Value.Record.TestAccuracy), pending.Value.Indices, pending.Value.Record.TrainIterations, SignalsOf(pending.Value.Record))
            : null;

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
}

/// <summary>The option table seen from C#: each table option that names a <see cref="LearnerOptions"/>
/// property is set from it when it is not null; everything else keeps the table's default.</summary>
internal static class OptionTable
{
    /// <summary>The facade's own fallbacks: a learner without a dataset learns Fashion-MNIST, without a strategy
    /// with WAAL, without a preset by the recommended preset.</summary>
    private static readonly FSharpFunc<string, FSharpOption<string>> Fallbacks = Core.Options.fallbacks(
        ListModule.OfSeq(new[]
        {
            Tuple.Create("dataset", "fashion-mnist"),
            Tuple.Create("strategy", "waal"),
            Tuple.Create("preset", "recommended"),
        }));

    /// <summary>The <see cref="LearnerOptions"/> property of an option: its name in PascalCase (gp-weight:
    /// GpWeight). The facade exposes an option when LearnerOptions has that property.</summary>
    public static string PropertyName(Core.OptionDef o) => Core.OptionDef.PascalCase(o.Name);

    /// <summary>The property of an option the facade exposes, or null.</summary>
    public static string? ExposedProperty(Core.OptionDef o) =>
        typeof(LearnerOptions).GetProperty(PropertyName(o)) is null ? null : PropertyName(o);

    /// <summary>The table's options the facade exposes, with their properties.</summary>
    public static IEnumerable<(Core.OptionDef Option, PropertyInfo Property)> Exposed() =>
        Core.Options.all
            .Select(o => (o, typeof(LearnerOptions).GetProperty(PropertyName(o))))
            .Where(e => e.Item2 is not null)
            .Select(e => (e.o, e.Item2!));

    /// <summary>An enum member's name in the table: PascalCase to kebab-case (MatchWaal: match-waal).</summary>
    public static string Kebab(string pascal)
    {
        var b = new StringBuilder();
        for (var i = 0; i < pascal.Length; i++)
        {
            if (i > 0 && char.IsUpper(pascal[i])) b.Append('-');
            b.Append(char.ToLowerInvariant(pascal[i]));
        }
        return b.ToString();
    }

    /// <summary>A property value as the table's canonical text.</summary>
    public static string Text(object value) => value switch
    {
        Enum e => Kebab(e.ToString()),
        bool b => b ? "true" : "false",
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    public static Core.Configuration ToConfiguration(LearnerOptions o)
    {
        // The properties that are set, as the table's text, in the table's order; Options.build reads the dataset,
        // strategy and preset first (the facade's fallbacks: fashion-mnist, waal, recommended) as every front end does.
        var given = Exposed()
            .Select(e => (e.Option, e.Property, Value: e.Property.GetValue(o)))
            .Where(e => e.Value is not null)
            .Select(e => Tuple.Create(e.Option, Text(e.Value!)))
            .ToList();
        var built = Core.Options.build(
            FuncConvert.FromFunc<string, string, Core.Preset, FSharpResult<Core.Configuration, string>>(Data.Datasets.defaultsFor),
            Fallbacks,
            ListModule.OfSeq(given));
        if (built.IsError)
        {
            var e = built.ErrorValue.Head;
            var property = Exposed().FirstOrDefault(x => x.Option.Name == e.Field).Property?.Name ?? e.Field;
            throw new WaalException(Errors.Code("SpecInvalid"), $"LearnerOptions.{property}: {e.Message}");
        }
        return built.ResultValue;
    }
}
