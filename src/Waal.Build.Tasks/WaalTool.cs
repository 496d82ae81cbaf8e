using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Waal.Build.Tasks;

/// <summary>Runs the <c>waal</c> runner (waal.dll) through <c>dotnet</c> as a child process, so libtorch never
/// loads inside MSBuild, and turns its <c>error CODE: where: message</c> lines into MSBuild errors.</summary>
public abstract class WaalTool : ToolTask
{
    /// <summary>The runner assembly, waal.dll.</summary>
    [Required] public string Runner { get; set; } = "";

    /// <inheritdoc />
    protected override string ToolName => "dotnet";

    /// <inheritdoc />
    protected override MessageImportance StandardOutputLoggingImportance => MessageImportance.High;

    /// <inheritdoc />
    protected override string GenerateFullPathToTool() =>
        Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";

    /// <summary>The arguments after waal.dll.</summary>
    protected abstract IEnumerable<string> Arguments();

    /// <inheritdoc />
    protected override string GenerateCommandLineCommands()
    {
        var builder = new CommandLineBuilder();
        builder.AppendFileNameIfNotNull(Runner);
        foreach (var a in Arguments()) builder.AppendTextUnquoted(" " + Quote(a));
        return builder.ToString();
    }

    /// <inheritdoc />
    protected override bool ValidateParameters()
    {
        if (File.Exists(Runner)) return true;
        Log.LogError(null, "WAALB001", null, Runner, 0, 0, 0, 0, "the waal runner was not found: build src/Waal.Cli first");
        return false;
    }

    /// <inheritdoc />
    protected override void LogEventsFromTextOutput(string singleLine, MessageImportance messageImportance)
    {
        var error = Waal.Jobs.ErrorLine.tryParse(singleLine);
        if (error is not null)
            Log.LogError(null, error.Value.Item1, null, null, 0, 0, 0, 0, "{0}", error.Value.Item2);
        else
            base.LogEventsFromTextOutput(singleLine, messageImportance);
    }

    /// <inheritdoc />
    protected override bool HandleTaskExecutionErrors()
    {
        // The runner's own error line is the message; add a generic one only when it printed none.
        if (!Log.HasLoggedErrors)
            Log.LogError(null, "WAALB002", null, null, 0, 0, 0, 0, "the waal runner exited with code {0}", ExitCode);
        return false;
    }

    private static string Quote(string a) =>
        a.Length > 0 && a.IndexOfAny(new[] { ' ', '"', '\'', '\t' }) < 0 ? a : "\"" + a.Replace("\"", "\\\"") + "\"";
}

/// <summary>Runs one experiment: <c>waal run ... --out OutputDirectory --force</c>.</summary>
public sealed class RunExperiment : WaalTool
{
    /// <summary>The experiment's name (for messages).</summary>
    [Required] public string Name { get; set; } = "";

    /// <summary>The folder for the run's files.</summary>
    [Required] public string OutputDirectory { get; set; } = "";

    /// <summary>The experiment item; its metadata are the <c>waal run</c> options (see ExperimentOptions).</summary>
    [Required] public ITaskItem? Experiment { get; set; }

    /// <summary>The experiment's name when it ran (empty otherwise): a task output, so never inferred for a
    /// target skipped as up to date.</summary>
    [Output] public string Ran { get; private set; } = "";

    /// <inheritdoc />
    protected override IEnumerable<string> Arguments() =>
        new[] { "run" }.Concat(ExperimentOptions.Of(Experiment!)).Concat(new[] { "--out", OutputDirectory, "--force" });

    /// <inheritdoc />
    public override bool Execute()
    {
        Log.LogMessage(MessageImportance.High, "Waal: running experiment {0} into {1}", Name, OutputDirectory);
        var ok = base.Execute();
        if (ok) Ran = Name;
        return ok;
    }
}

/// <summary>Writes a report over run folders: <c>waal report RUNS... --out OutputDirectory</c>.</summary>
public sealed class WriteReport : WaalTool
{
    /// <summary>The run folders.</summary>
    [Required] public string[] Runs { get; set; } = Array.Empty<string>();

    /// <summary>Where report.md and learning_curve.png go.</summary>
    [Required] public string OutputDirectory { get; set; } = "";

    /// <summary>The accuracy reported: test (the default) or validation.</summary>
    public string Metric { get; set; } = "";

    /// <inheritdoc />
    protected override IEnumerable<string> Arguments() =>
        new[] { "report" }.Concat(Runs).Concat(new[] { "--out", OutputDirectory })
            .Concat(string.IsNullOrEmpty(Metric) ? Array.Empty<string>() : new[] { "--metric", Metric });
}
