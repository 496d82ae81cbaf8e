// Three rounds of active learning from C#: a pool of Fashion-MNIST images, a console oracle that shows the
// indices to label and reads the answers from standard input, and the test accuracy after each round.
// Run: dotnet run --project src/Waal.Sample -c Release -- [FOLDER] [--auto] [--session DIR] [--epochs E]
// With --auto the oracle answers itself from the dataset's hidden labels (what the tests do). With --session DIR
// the session is saved after every step, so labelling can stop at any moment (even killed mid-batch) and continue
// later from DIR with the same batch waiting. --epochs E (default 10) sets each round's training: E x 47 steps.
using Waal;

var folder = args.Where((a, i) => !a.StartsWith("--") && (i == 0 || (args[i - 1] != "--session" && args[i - 1] != "--epochs"))).FirstOrDefault()
    ?? Environment.GetEnvironmentVariable("WAAL_FASHION_MNIST")
    ?? "/usr/share/datasets/fashion-mnist";
var auto = args.Contains("--auto");
var sessionAt = Array.IndexOf(args, "--session");
var session = sessionAt >= 0 && sessionAt + 1 < args.Length ? args[sessionAt + 1] : null;
var epochsAt = Array.IndexOf(args, "--epochs");
var epochs = epochsAt >= 0 && epochsAt + 1 < args.Length && int.TryParse(args[epochsAt + 1], out var given) && given >= 1 ? given : 10;

try
{
    var pool = LearnerData.FashionMnist(folder, train: true, take: 2000);
    var test = LearnerData.FashionMnist(folder, train: false, take: 2000);
    // The recommended preset with 10 epochs over max(|L|, 3000) images a round (470 steps).
    var options = new LearnerOptions { Strategy = Strategy.Waal, Epochs = epochs, Seed = 1, Threads = 2 };
    IOracle oracle = new ConsoleOracle(auto ? pool.Labels : null);
    var resuming = session is not null && File.Exists(Path.Combine(session, "progress.json"));
    using var learner = resuming ? await ActiveLearner.LoadAsync(session!, pool, test) : ActiveLearner.Create(pool, options, test);
    async Task Save() { if (session is not null) await learner.SaveAsync(session); }

    // The initial labels come from the same oracle as every later batch.
    if (learner.Labelled.Count == 0)
    {
        var first = learner.DrawInitial(200);
        learner.AddLabels(first, await oracle.LabelAsync(first, CancellationToken.None));
        await Save();
    }

    var progress = new Progress<RoundProgress>(p =>
    {
        if (p.Done == p.Total) Console.Error.WriteLine($"  {p.Phase}: {p.Total} steps");
    });

    while (learner.Round < 3)
    {
        // One round in two halves: a batch waits for its labels, saved, for as long as the person takes.
        var pending = learner.Pending ?? await learner.ProposeAsync(100, progress);
        await Save();
        var result = learner.Accept(await oracle.LabelAsync(pending.Indices, CancellationToken.None));
        await Save();
        Console.WriteLine($"round {result.Round}: {result.Labelled} labels, test accuracy {result.TestAccuracy:P2}, {result.Steps} steps, queried {result.Queried.Count}");
    }

    Console.WriteLine($"labelled now: {learner.Labelled.Count} of {learner.PoolSize}");
    return 0;
}
catch (WaalException e)
{
    Console.Error.WriteLine($"error {e.Message}");
    return 2;
}

/// <summary>Asks for labels at the console: one line of space-separated class numbers per batch. With hidden
/// labels given, it types the answers itself (and shows them), as a person who knows them would.</summary>
sealed class ConsoleOracle(IReadOnlyList<int>? hidden) : IOracle
{
    public Task<IReadOnlyList<int>> LabelAsync(IReadOnlyList<int> indices, CancellationToken cancellationToken)
    {
        Console.WriteLine($"label {indices.Count} images (indices {string.Join(" ", indices)}):");
        var line = hidden is null ? Console.ReadLine() ?? "" : string.Join(" ", indices.Select(i => hidden[i]));
        if (hidden is not null) Console.WriteLine($"> {line[..Math.Min(line.Length, 40)]}{(line.Length > 40 ? " ..." : "")}");
        var labels = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        return Task.FromResult<IReadOnlyList<int>>(labels);
    }
}
