// Three rounds of active learning from C#: a pool of Fashion-MNIST images, a console oracle that shows the
// indices to label and reads the answers from standard input, and the test accuracy after each round.
// Run: dotnet run --project src/Waal.Sample -c Release -- [FOLDER] [--auto]
// With --auto the oracle answers itself from the dataset's hidden labels (what the tests do).
using Waal;

var folder = args.FirstOrDefault(a => !a.StartsWith("--"))
    ?? Environment.GetEnvironmentVariable("WAAL_FASHION_MNIST")
    ?? "/usr/share/datasets/fashion-mnist";
var auto = args.Contains("--auto");

try
{
    var pool = LearnerData.FashionMnist(folder, train: true, take: 2000);
    var test = LearnerData.FashionMnist(folder, train: false, take: 2000);
    var options = new LearnerOptions { Strategy = "waal", Epochs = 5, Seed = 1, Threads = 2, QueryBatch = 100 };
    using var learner = ActiveLearner.Create(pool, options, test);

    // The initial labels come from the same oracle as every later batch.
    IOracle oracle = new ConsoleOracle(auto ? pool.Labels : null);
    var first = learner.DrawInitial(200);
    learner.AddLabels(first, await oracle.LabelAsync(first, CancellationToken.None));

    var progress = new Progress<RoundProgress>(p =>
    {
        if (p.Done == p.Total) Console.Error.WriteLine($"  {p.Phase}: {p.Total} steps");
    });

    for (var round = 0; round < 3; round++)
    {
        var result = await learner.RunRoundAsync(oracle, 100, progress);
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
        Console.WriteLine($"label {indices.Count} images (indices {string.Join(" ", indices.Take(8))}{(indices.Count > 8 ? " ..." : "")}):");
        var line = hidden is null ? Console.ReadLine() ?? "" : string.Join(" ", indices.Select(i => hidden[i]));
        if (hidden is not null) Console.WriteLine($"> {line[..Math.Min(line.Length, 40)]}{(line.Length > 40 ? " ..." : "")}");
        var labels = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
        return Task.FromResult<IReadOnlyList<int>>(labels);
    }
}
