// The C# facade's tests, written in C# against its public API, run by Expecto's C# runner; the last line is the
// plain "N passed, N failed, N skipped" that build/test.sh totals.
using System.Diagnostics;
using System.Reflection;
using Expecto;
using Expecto.CSharp;
using Microsoft.FSharp.Core;
using Waal;

var fashion = Environment.GetEnvironmentVariable("WAAL_FASHION_MNIST") ?? "/usr/share/datasets/fashion-mnist";
var pool = LearnerData.FashionMnist(fashion, train: true, take: 1200);
var test = LearnerData.FashionMnist(fashion, train: false, take: 1000);
var options = new LearnerOptions { Epochs = 1, Seed = 3, Threads = 2, QueryBatch = 50 };

void Check(bool condition, string what)
{
    if (!condition) throw new Exception(what);
}

var tests = Runner.TestList("Facade", new[]
{
    Runner.TestCase("no F# type appears in any public signature of the Waal assembly", () =>
    {
        var bad = PublicSignatureTypes(typeof(ActiveLearner).Assembly).Where(IsFSharpType).Select(t => t.ToString()).Distinct().ToList();
        Check(bad.Count == 0, "F# types in public signatures: " + string.Join(", ", bad));
    }),

    Runner.TestCase("a round from C#: initial labels, train, evaluate, query, label through an oracle", async () =>
    {
        using var learner = ActiveLearner.Create(pool, options, test);
        var initial = learner.DrawInitial(100);
        Check(initial.Count == 100 && initial.Distinct().Count() == 100, "100 distinct initial indices");
        learner.AddLabels(initial, initial.Select(i => pool.Labels[i]).ToList());
        Check(learner.Labelled.Count == 100 && learner.Unlabelled.Count == 1100, "labelled and unlabelled partition the pool");

        var reports = new List<RoundProgress>();
        var progress = new SyncProgress(reports.Add);
        var oracle = Oracle.FromFunc(ix => ix.Select(i => pool.Labels[i]).ToList());
        var result = await learner.RunRoundAsync(oracle, 50, progress);
        Check(result.Round == 0 && result.Labelled == 100, $"round 0 trained on 100 labels, found {result}");
        Check(result.Queried.Count == 50 && result.Queried.All(i => initial.Contains(i) == false), "50 new indices");
        Check(result.TestAccuracy is > 0.0 and <= 1.0, $"an accuracy, found {result.TestAccuracy}");
        Check(result.Steps == 18, $"WAAL's steps: ceil(1100 / 64) = 18, found {result.Steps}");
        Check(learner.Labelled.Count == 150 && learner.LabelOf(result.Queried[0]) == pool.Labels[result.Queried[0]], "the oracle's labels were added");
        Check(reports.Any(r => r.Phase.Contains("epoch")) && reports.Any(r => r.Phase == "query"), "progress for training and the query");
    }),

    Runner.TestCase("bad labels are refused with a code and change nothing; queries need a model", async () =>
    {
        using var learner = ActiveLearner.Create(pool, options);
        learner.AddLabels(new[] { 1, 2 }, new[] { 3, 4 });
        Expect(() => learner.AddLabels(new[] { 5, 5 }, new[] { 1, 1 }), "SESSION004");
        Expect(() => learner.AddLabels(new[] { 2 }, new[] { 1 }), "SESSION004");
        Expect(() => learner.AddLabels(new[] { 7 }, new[] { 10 }), "SESSION004");
        Expect(() => learner.AddLabels(new[] { 1200 }, new[] { 1 }), "SESSION004");
        Check(learner.Labelled.SequenceEqual(new[] { 1, 2 }), "nothing changed");
        await ExpectAsync(() => learner.QueryAsync(10), "SESSION006");
        await ExpectAsync(() => learner.EvaluateAsync(), "SESSION006");
        Expect(() => ActiveLearner.Create(pool, options with { Strategy = "telepathy" }), "SESSION002");
        Expect(() => ActiveLearner.Create(pool, options with { Epochs = 0 }), "SESSION001");
    }),

    Runner.TestCase("cancellation stops training between steps", async () =>
    {
        using var learner = ActiveLearner.Create(pool, options with { Epochs = 50 });
        var first = learner.DrawInitial(100);
        learner.AddLabels(first, first.Select(i => pool.Labels[i]).ToList());
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.Done >= 5) cts.Cancel(); });
        var clock = Stopwatch.StartNew();
        try
        {
            await learner.TrainAsync(progress, cts.Token);
            throw new Exception("training was not cancelled");
        }
        catch (OperationCanceledException) { }
        Check(clock.Elapsed < TimeSpan.FromSeconds(20), $"stopped early ({clock.Elapsed})");
        Check(!learner.IsTrained, "no half-trained model is kept");
    }),

    Runner.TestCase("a saved session continues another day: same labels, same model, same next batch", async () =>
    {
        var folder = Path.Combine(Path.GetTempPath(), "waal-facade-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var learner = ActiveLearner.Create(pool, options, test);
            var first = learner.DrawInitial(100);
            learner.AddLabels(first, first.Select(i => pool.Labels[i]).ToList());
            await learner.TrainAsync();
            var accuracy = await learner.EvaluateAsync();
            var next = await learner.QueryAsync(40);
            await learner.SaveAsync(folder);

            using var again = await ActiveLearner.LoadAsync(folder, pool, test);
            Check(again.Labelled.SequenceEqual(learner.Labelled) && again.Round == 1, "labels and round restored");
            Check(await again.EvaluateAsync() == accuracy, "the same weights");
            Check((await again.QueryAsync(40)).SequenceEqual(next), "the same next batch");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, true);
        }
    }),

    Runner.TestCase("the console sample runs three rounds with its oracle fed from the hidden labels", () =>
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Waal.Sample.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(dll);
        info.ArgumentList.Add(fashion);
        info.ArgumentList.Add("--auto");
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var lines = stdout.Result.Split('\n');
        Check(p.ExitCode == 0, $"exit code {p.ExitCode}: {stderr}");
        Check(lines.Count(l => l.StartsWith("round ")) == 3, "three rounds");
        Check(lines.Count(l => l.StartsWith("label ")) == 4, "the oracle asked four times (initial + 3 rounds)");
        Check(lines.Any(l => l.StartsWith("labelled now: 500 of 2000")), "200 + 3 x 100 labels");
    }),
});

var summary = Expecto.Tests.CLIArguments.NewAppend_Summary_Handler(Expecto.Tests.SummaryHandler.NewSummaryHandler(FuncConvert.FromAction<Impl.TestRunSummary>(s =>
    Console.WriteLine($"\n{s.passed.Length} passed, {s.failed.Length + s.errored.Length} failed, {s.ignored.Length} skipped"))));
return Runner.RunTestsWithCLIArgs(new[] { summary }, args, Runner.TestSequenced(tests));

static void Expect(Action act, string code)
{
    try { act(); }
    catch (WaalException e) when (e.Code == code) { return; }
    throw new Exception($"expected WaalException {code}");
}

static async Task ExpectAsync(Func<Task> act, string code)
{
    try { await act(); }
    catch (WaalException e) when (e.Code == code) { return; }
    throw new Exception($"expected WaalException {code}");
}

static IEnumerable<Type> PublicSignatureTypes(Assembly assembly)
{
    IEnumerable<Type> Expand(Type t) =>
        new[] { t }.Concat(t.IsGenericType ? t.GetGenericArguments().SelectMany(Expand) : Enumerable.Empty<Type>())
                   .Concat(t.HasElementType ? Expand(t.GetElementType()!) : Enumerable.Empty<Type>());

    const BindingFlags all = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
    foreach (var type in assembly.GetExportedTypes())
    {
        if (type.BaseType is { } b) foreach (var x in Expand(b)) yield return x;
        foreach (var i in type.GetInterfaces()) foreach (var x in Expand(i)) yield return x;
        foreach (var m in type.GetMethods(all))
        {
            foreach (var x in Expand(m.ReturnType)) yield return x;
            foreach (var p in m.GetParameters()) foreach (var x in Expand(p.ParameterType)) yield return x;
        }
        foreach (var c in type.GetConstructors(all)) foreach (var p in c.GetParameters()) foreach (var x in Expand(p.ParameterType)) yield return x;
        foreach (var p in type.GetProperties(all)) foreach (var x in Expand(p.PropertyType)) yield return x;
        foreach (var f in type.GetFields(all)) foreach (var x in Expand(f.FieldType)) yield return x;
    }
}

static bool IsFSharpType(Type t) =>
    t.Assembly.GetName().Name == "FSharp.Core"
    || t.GetCustomAttributes(inherit: false).Any(a => a.GetType().FullName == "Microsoft.FSharp.Core.CompilationMappingAttribute");

/// <summary>Reports synchronously (Progress&lt;T&gt; posts to the thread pool, too late for assertions).</summary>
sealed class SyncProgress(Action<RoundProgress> report) : IProgress<RoundProgress>
{
    public void Report(RoundProgress value) => report(value);
}
