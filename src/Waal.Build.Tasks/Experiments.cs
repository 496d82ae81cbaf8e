using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Waal.Build.Tasks;

/// <summary>How an <c>Experiment</c> item's metadata becomes <c>waal run</c> options.</summary>
public static class ExperimentOptions
{
    /// <summary>Metadata name and option, in the order they are written.</summary>
    public static readonly IReadOnlyList<(string Metadata, string Option)> Known = new[]
    {
        ("Dataset", "--dataset"), ("Strategy", "--strategy"), ("Seed", "--seed"), ("Initial", "--initial"),
        ("Query", "--query"), ("Rounds", "--rounds"), ("Epochs", "--epochs"), ("Pool", "--pool"),
        ("Threads", "--threads"), ("Device", "--device"), ("ScoreBatch", "--score-batch"), ("TrainBudget", "--train-budget"),
        ("Batch", "--batch"), ("Lr", "--lr"), ("Momentum", "--momentum"), ("Alpha", "--alpha"),
        ("Selection", "--selection"), ("Imbalance", "--imbalance"), ("GpSign", "--gp-sign"), ("GpWeight", "--gp-weight"),
        ("Critic", "--critic"), ("Bound", "--bound"), ("Adversary", "--adversary"), ("WaalScore", "--waal-score"),
    };

    /// <summary>The options of an item: each known, non-empty metadata as an option and its value, and
    /// <c>--augment</c> when Augment is true.</summary>
    public static IReadOnlyList<string> Of(ITaskItem item)
    {
        var options = new List<string>();
        foreach (var (metadata, option) in Known)
        {
            var value = item.GetMetadata(metadata);
            if (!string.IsNullOrWhiteSpace(value)) { options.Add(option); options.Add(value.Trim()); }
        }
        if (string.Equals(item.GetMetadata("Augment"), "true", StringComparison.OrdinalIgnoreCase)) options.Add("--augment");
        return options;
    }
}

/// <summary>Writes RESULTS/NAME/experiment.args (the options, one per line) for each experiment, touching the
/// file only when its content changes: the timestamp the incremental build compares.</summary>
public sealed class WriteExperimentArgs : Microsoft.Build.Utilities.Task
{
    /// <summary>The <c>Experiment</c> items.</summary>
    [Required] public ITaskItem[] Experiments { get; set; } = Array.Empty<ITaskItem>();

    /// <summary>The folder holding one folder per experiment.</summary>
    [Required] public string ResultsDirectory { get; set; } = "";

    /// <inheritdoc />
    public override bool Execute()
    {
        foreach (var item in Experiments)
        {
            var folder = Path.Combine(ResultsDirectory, item.ItemSpec);
            Directory.CreateDirectory(folder);
            var path = Path.Combine(folder, "experiment.args");
            var text = string.Join("\n", ExperimentOptions.Of(item)) + "\n";
            if (!File.Exists(path) || File.ReadAllText(path) != text)
            {
                File.WriteAllText(path, text);
                Log.LogMessage(MessageImportance.Low, "Waal: {0}: parameters changed", item.ItemSpec);
            }
        }
        return !Log.HasLoggedErrors;
    }
}
