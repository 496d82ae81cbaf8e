using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Waal.Build.Tasks;

/// <summary>Runs the out-of-date experiments as one Slurm job array (<c>-p:WaalScheduler=slurm</c>): writes
/// RESULTS/slurm/PROJECT.sbatch (a script a user can read and resubmit by hand) and PROJECT.tasks (one experiment
/// name per array index), submits it with <c>sbatch</c>, records the job in RESULTS/slurm/PROJECT.job, and by
/// default waits, printing the done, running and pending tasks, then fails the build with each failed task's
/// <c>error CODE: message</c>. A later build first settles the recorded job (waits for it, or says it still runs),
/// then resubmits only what is missing. Slurm is the engine: nothing here schedules.</summary>
public sealed class SlurmExperiments : Microsoft.Build.Utilities.Task, ICancelableTask
{
    private readonly CancellationTokenSource _cancel = new();

    /// <summary>The <c>Experiment</c> items (already checked by WriteExperimentArgs).</summary>
    [Required] public ITaskItem[] Experiments { get; set; } = Array.Empty<ITaskItem>();

    /// <summary>The folder holding one folder per experiment; the job's files go to its <c>slurm</c> folder.</summary>
    [Required] public string ResultsDirectory { get; set; } = "";

    /// <summary>The experiments project's name: the job's files are named after it, so projects sharing a results
    /// folder do not share them.</summary>
    [Required] public string ProjectName { get; set; } = "";

    /// <summary>The runner (waal.dll) staged in the results' shared area, which the tasks run.</summary>
    [Required] public string Runner { get; set; } = "";

    /// <summary>The dotnet host the tasks run the runner with (default: the one running this build).</summary>
    public string Dotnet { get; set; } = "";

    /// <summary><c>--partition</c> (empty: the cluster's default).</summary>
    public string Partition { get; set; } = "";

    /// <summary><c>--time</c>, in any form sbatch accepts (empty: the partition's default).</summary>
    public string Time { get; set; } = "";

    /// <summary><c>--cpus-per-task</c>; an experiment without a Threads metadata runs with this many threads.</summary>
    public int Cpus { get; set; } = 2;

    /// <summary><c>--mem</c> (for example 4G).</summary>
    public string Memory { get; set; } = "4G";

    /// <summary><c>--gres=gpu:N</c> when above 0.</summary>
    public int Gpus { get; set; }

    /// <summary>At most this many tasks at once (<c>--array=0-N%T</c>); 0: no limit.</summary>
    public int Throttle { get; set; }

    /// <summary><c>--account</c>.</summary>
    public string Account { get; set; } = "";

    /// <summary>Further <c>#SBATCH</c> arguments, separated by spaces (for example <c>--qos=long --constraint=avx512</c>).</summary>
    public string ExtraArguments { get; set; } = "";

    /// <summary>Wait for the job (the default) or return once it is submitted.</summary>
    public bool Wait { get; set; } = true;

    /// <summary>Seconds between two looks at the queue while waiting.</summary>
    public double PollSeconds { get; set; } = 5;

    /// <summary>The experiments that ran (and succeeded) in this build.</summary>
    [Output] public string[] Ran { get; private set; } = Array.Empty<string>();

    /// <summary>The job submitted by this build (empty when nothing was).</summary>
    [Output] public string JobId { get; private set; } = "";

    private string SlurmFolder => Path.Combine(ResultsDirectory, "slurm");
    private string JobRecord => Path.Combine(SlurmFolder, ProjectName + ".job");

    /// <inheritdoc />
    public void Cancel() => _cancel.Cancel();

    /// <inheritdoc />
    public override bool Execute()
    {
        try
        {
            return Run();
        }
        catch (SlurmFailed e)
        {
            Log.LogError(null, e.Code, null, e.File, 0, 0, 0, 0, "{0}", e.Message);
            return false;
        }
    }

    private bool Run()
    {
        Directory.CreateDirectory(Path.Combine(SlurmFolder, "logs"));

        // A job an earlier build submitted: wait for it (or say it still runs), then judge by the folders.
        var ran = new List<string>();
        if (ReadRecord() is { } earlier)
        {
            var left = Queued(earlier.Job);
            if (left.Count > 0 && !Wait)
            {
                Log.LogMessage(MessageImportance.High,
                    "Waal: slurm job {0} (submitted by an earlier build) still has {1} task(s) queued or running; build again to collect it",
                    earlier.Job, left.Count);
                JobId = earlier.Job;
                return true;
            }
            if (left.Count > 0)
            {
                Log.LogMessage(MessageImportance.High, "Waal: waiting for slurm job {0}, submitted by an earlier build", earlier.Job);
                if (!WaitFor(earlier.Job, earlier.Names.Count)) return false;
            }
            ran.AddRange(earlier.Names.Where(Complete));
            // What the earlier job left unfinished is submitted again below; say why it did not finish.
            foreach (var name in earlier.Names.Where(n => !Complete(n)))
                ReportFailure(earlier.Job, earlier.Names.IndexOf(name), name, asWarning: true);
            File.Delete(JobRecord);
        }

        var names = Experiments.Select(e => e.ItemSpec).Where(n => !Complete(n)).ToList();
        if (names.Count == 0)
        {
            Ran = ran.ToArray();
            return true;
        }

        var script = WriteScript(names);
        var job = Submit(script);
        JobId = job;
        File.WriteAllText(JobRecord, job + "\n" + string.Join("\n", names) + "\n");
        Log.LogMessage(MessageImportance.High, "Waal: submitted {0} experiment(s) as slurm job {1} ({2}): {3}",
            names.Count, job, script, string.Join(", ", names));
        if (!Wait)
        {
            Log.LogMessage(MessageImportance.High,
                "Waal: not waiting (WaalWait=false); `squeue -j {0}` shows it, and a later build collects what finished", job);
            Ran = ran.ToArray();
            return true;
        }

        var ok = WaitFor(job, names.Count);
        if (!ok && _cancel.IsCancellationRequested) return false;
        File.Delete(JobRecord);
        foreach (var name in names)
        {
            if (Complete(name)) ran.Add(name);
            else ReportFailure(job, names.IndexOf(name), name);
        }
        Ran = ran.ToArray();
        return !Log.HasLoggedErrors;
    }

    /// <summary>Done: the folder's <c>.complete</c> is newer than its <c>experiment.args</c>.</summary>
    private bool Complete(string name)
    {
        var folder = Path.Combine(ResultsDirectory, name);
        var complete = new FileInfo(Path.Combine(folder, ".complete"));
        var args = new FileInfo(Path.Combine(folder, "experiment.args"));
        return complete.Exists && args.Exists && complete.LastWriteTimeUtc >= args.LastWriteTimeUtc;
    }

    private void ReportFailure(string job, int index, string name, bool asWarning = false)
    {
        var log = Path.Combine(SlurmFolder, "logs", $"{ProjectName}-{job}_{index}.out");
        var last = Waal.Jobs.ErrorLine.lastIn(log);
        var (code, text) = last is not null
            ? (last.Value.Item1, last.Value.Item2)
            : ("WAALB012", "ended without a result and without an error line (cancelled, killed, out of time or memory, or its node was lost); the next build resubmits it");
        var message = $"Experiment '{name}' (slurm task {job}_{index}): {text}";
        if (asWarning)
            Log.LogWarning(null, code, null, log, 0, 0, 0, 0, "{0} (submitted again)", message);
        else
            Log.LogError(null, code, null, log, 0, 0, 0, 0, "{0}", message);
    }

    private string WriteScript(IReadOnlyList<string> names)
    {
        var tasks = Path.Combine(SlurmFolder, ProjectName + ".tasks");
        File.WriteAllText(tasks, string.Join("\n", names) + "\n");
        var dotnet = Dotnet.Length > 0 ? Dotnet
            : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var array = $"0-{names.Count - 1}" + (Throttle > 0 ? $"%{Throttle}" : "");
        var resources = new Waal.Jobs.Slurm.Resources(Cpus, Memory, Time, Partition, Account, Gpus,
            ListModule.OfSeq(ExtraArguments.Split(' ', StringSplitOptions.RemoveEmptyEntries)));
        var s = new StringBuilder();
        s.Append(Waal.Jobs.Slurm.header($"waal-{ProjectName}", array, $"{Path.Combine(SlurmFolder, "logs")}/{ProjectName}-%A_%a.out", resources));
        s.Append("# Written by the Waal.Functional experiment targets (-p:WaalScheduler=slurm). One array task per line of\n");
        s.Append($"# {ProjectName}.tasks beside this file; each runs `waal run` into RESULTS/NAME with the options in\n");
        s.Append("# RESULTS/NAME/experiment.args, or `waal resume` when the folder holds this experiment begun (a requeued\n");
        s.Append("# or resubmitted task loses at most the round in flight). Resubmit by hand: sbatch THIS_FILE.\n");
        s.Append("set -uo pipefail\n");
        s.Append($"results={Shell(ResultsDirectory)}\n");
        s.Append($"runner={Shell(Runner)}\n");
        s.Append($"dotnet={Shell(dotnet)}\n");
        s.Append($"tasks={Shell(tasks)}\n");
        s.Append("name=\"$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" \"$tasks\")\"\n");
        s.Append("folder=\"$results/$name\"\n");
        s.Append("[ -n \"$name\" ] && [ -f \"$folder/experiment.args\" ] || { echo \"error WAALB013: $tasks: no experiment for array task $SLURM_ARRAY_TASK_ID\"; exit 2; }\n");
        s.Append("echo \"waal: task $SLURM_JOB_ID (${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}), experiment $name, on $(hostname), restart ${SLURM_RESTART_COUNT:-0}\"\n");
        s.Append("mapfile -t args < \"$folder/experiment.args\"\n");
        s.Append("threads=(); printf '%s\\n' \"${args[@]}\" | grep -qx -- --threads || threads=(--threads \"${SLURM_CPUS_PER_TASK:-1}\")\n");
        s.Append("rm -f \"$folder/.complete\"\n");
        s.Append("if [ -f \"$folder/progress.json\" ] && [ \"$folder/spec.json\" -nt \"$folder/experiment.args\" ]; then\n");
        s.Append("  \"$dotnet\" \"$runner\" resume \"$folder\"\n");
        s.Append("else\n");
        s.Append("  \"$dotnet\" \"$runner\" run \"${args[@]}\" \"${threads[@]}\" --out \"$folder\" --force\n");
        s.Append("fi\n");
        s.Append("code=$?\n");
        s.Append("[ $code -eq 0 ] && touch \"$folder/.complete\"\n");
        s.Append("exit $code\n");
        var path = Path.Combine(SlurmFolder, ProjectName + ".sbatch");
        File.WriteAllText(path, s.ToString());
        return path;
    }

    private static string Shell(string text) => Waal.Jobs.Slurm.shell(text);

    private static T Slurm<T>(FSharpResult<T, Waal.Jobs.Slurm.SlurmError> result, string? file) =>
        result.IsOk
            ? result.ResultValue
            : throw new SlurmFailed(result.ErrorValue.IsNotStarted ? "WAALB010" : "WAALB011", file,
                result.ErrorValue.Message + (result.ErrorValue.IsNotStarted ? " (-p:WaalScheduler=slurm)" : ""));

    private static string Submit(string script) =>
        Slurm(Waal.Jobs.Slurm.submit(script, FSharpList<string>.Empty), script);

    /// <summary>The job's array tasks still in the queue, with their state (PD, R, CG, ...).</summary>
    private static List<string> Queued(string job) =>
        Slurm(Waal.Jobs.Slurm.queued(ListModule.OfSeq(new[] { job }), "%t"), null).ToList();

    private bool WaitFor(string job, int total)
    {
        var last = "";
        var clock = Stopwatch.StartNew();
        var report = FuncConvert.FromAction<FSharpList<string>>(states =>
        {
            var running = states.Count(Waal.Jobs.Slurm.isRunning);
            var pending = states.Length - running;
            var done = Math.Max(0, total - states.Length);
            var line = $"Waal: slurm job {job}: {done} done, {running} running, {pending} pending";
            if (line == last) return;
            Log.LogMessage(MessageImportance.High, "{0} ({1:F0} s)", line, clock.Elapsed.TotalSeconds);
            last = line;
        });
        var emptied = Slurm(Waal.Jobs.Slurm.waitFor(TimeSpan.FromSeconds(PollSeconds), _cancel.Token,
            ListModule.OfSeq(new[] { job }), "%t", report), null);
        if (!emptied)
            Log.LogWarning(null, "WAALB014", null, null, 0, 0, 0, 0,
                "stopped waiting; slurm job {0} goes on (`scancel {0}` stops it) and a later build collects it", job);
        return emptied;
    }

    private (string Job, List<string> Names)? ReadRecord()
    {
        if (!File.Exists(JobRecord)) return null;
        var lines = File.ReadAllLines(JobRecord).Where(l => l.Length > 0).ToList();
        if (lines.Count < 1 || !Regex.IsMatch(lines[0], "^[0-9]+$"))
            throw new SlurmFailed("WAALB011", JobRecord, $"not a job record (found '{lines.FirstOrDefault()}'; expected a job id, then one experiment name per line); delete it to submit afresh");
        return (lines[0], lines.Skip(1).ToList());
    }

    private sealed class SlurmFailed : Exception
    {
        public SlurmFailed(string code, string? file, string message) : base(message)
        {
            Code = code;
            File = file;
        }

        public string Code { get; }
        public string? File { get; }
    }
}
