using System.Collections;
using System.Text.RegularExpressions;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Waal.Core;

namespace Waal.Build.Tasks;

/// <summary>How an <c>Experiment</c> item's metadata become <c>waal run</c> options: every metadata name is an
/// option of the option table (Waal.Core.Options) in PascalCase, e.g. <c>GpWeight="1"</c> is
/// <c>--gp-weight 1</c>. Nothing here lists options: a new option in the table is a new metadata.</summary>
public static class ExperimentOptions
{
    private static readonly Regex SafeName = new("^[A-Za-z0-9][A-Za-z0-9._-]*$", RegexOptions.Compiled);

    /// <summary>An option's metadata name: its name in PascalCase (gp-weight: GpWeight), MSBuild's own spelling.</summary>
    public static string MetadataName(OptionDef o) => OptionDef.PascalCase(o.Name);

    /// <summary>The metadata names the table accepts, in table order (earlier names are accepted too).</summary>
    public static IReadOnlyList<string> Known => Options.all.Select(MetadataName).ToList();

    /// <summary>The option of a metadata name or of an earlier name's (case-insensitive, as MSBuild metadata
    /// are), or null.</summary>
    public static OptionDef? OptionOf(string metadata) =>
        Options.all.FirstOrDefault(o =>
            o.Names.Any(n => string.Equals(OptionDef.PascalCase(n), metadata, StringComparison.OrdinalIgnoreCase)));

    /// <summary>Why an experiment name cannot be a folder under the results folder, or null when it can: letters,
    /// digits, '.', '_' and '-', starting with a letter or digit (no path separators, no '..').</summary>
    public static string? NameProblem(string name) =>
        SafeName.IsMatch(name) && !name.Contains("..")
            ? null
            : $"Experiment '{name}': the name is a folder under the results folder, so it may hold only letters, digits, '.', '_' and '-', starting with a letter or digit";

    /// <summary>The unknown custom metadata of an item, each with the nearest known name.</summary>
    public static IReadOnlyList<(string Name, string Nearest)> Unknown(ITaskItem item) =>
        CustomMetadata(item)
            .Where(m => OptionOf(m.Key) == null)
            .Select(m => (m.Key, Options.nearest(Known, m.Key)))
            .ToList();

    /// <summary>The options of an item: every non-empty metadata as <c>--name value</c>, in table order.</summary>
    public static IReadOnlyList<string> Of(ITaskItem item)
    {
        var given = CustomMetadata(item).ToDictionary(m => m.Key, m => m.Value, StringComparer.OrdinalIgnoreCase);
        var options = new List<string>();
        // Each as it was spelled: a project that says CriticLr writes --critic-lr, so the experiment.args of
        // results made before a rename stay the same and nothing reruns.
        foreach (var o in Options.all)
            foreach (var name in o.Names)
            {
                if (given.TryGetValue(OptionDef.PascalCase(name), out var value) && !string.IsNullOrWhiteSpace(value))
                {
                    options.Add("--" + name);
                    options.Add(value.Trim());
                }
            }
        return options;
    }

    private static IEnumerable<KeyValuePair<string, string>> CustomMetadata(ITaskItem item)
    {
        foreach (DictionaryEntry e in item.CloneCustomMetadata())
            yield return new KeyValuePair<string, string>((string)e.Key, (string?)e.Value ?? "");
    }
}

/// <summary>Checks each experiment (a safe name, known metadata) and writes RESULTS/NAME/experiment.args (the
/// options, one per line), touching the file only when its content changes: the timestamp the incremental
/// build compares.</summary>
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
            if (ExperimentOptions.NameProblem(item.ItemSpec) is { } problem)
                Log.LogError(null, "WAALB004", null, BuildEngine.ProjectFileOfTaskNode, 0, 0, 0, 0, "{0}", problem);
            foreach (var (name, nearest) in ExperimentOptions.Unknown(item))
                Log.LogError(null, "WAALB003", null, BuildEngine.ProjectFileOfTaskNode, 0, 0, 0, 0,
                    "Experiment '{0}': unknown metadata '{1}'; did you mean '{2}'? (known: {3})",
                    item.ItemSpec, name, nearest, string.Join(", ", ExperimentOptions.Known));
        }
        if (Log.HasLoggedErrors) return false;

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
