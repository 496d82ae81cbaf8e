/// The one Slurm client of Waal.Functional: a job script's header, `sbatch` to submit, `squeue` to look, and a
/// wait that reports each change. `waal query --slurm` (its shards and merge) and the experiment targets'
/// `-p:WaalScheduler=slurm` (a job array) both use it. Slurm is the engine: nothing here schedules.
module Waal.Jobs.Slurm

open System
open System.ComponentModel
open System.Diagnostics
open System.Text
open System.Text.RegularExpressions
open System.Threading

/// What a Slurm command did wrong, for the caller to word with its own error code.
type SlurmError =
    /// The command could not be started (Slurm's commands are not on PATH).
    | NotStarted of command: string * reason: string
    /// The command ran and refused (its exit code and what it said), or printed what it should not.
    | Failed of command: string * message: string

    /// The error in words, naming the command.
    member e.Message =
        match e with
        | NotStarted(command, reason) ->
            $"'{command}' could not be started ({reason}): Slurm's commands (sbatch, squeue) must be on PATH"
        | Failed(command, message) -> $"{command}: {message}"

/// The resources and the place of a job's tasks (empty text: the cluster's default).
type Resources =
    {
        Cpus: int
        Memory: string
        Time: string
        Partition: string
        Account: string
        Gpus: int
        /// Further #SBATCH arguments, e.g. ["--qos=long"].
        Extra: string list
    }

/// Text quoted for bash: 'text', with each ' written as '\''.
let shell (text: string) = "'" + text.Replace("'", "'\\''") + "'"

/// A job script's first lines: the shebang and the #SBATCH lines of a requeueable job (each task's log opened
/// for appending, so a requeued task adds to it), `array` as sbatch's --array ("" for a single job).
let header (name: string) (array: string) (output: string) (r: Resources) =
    let s = StringBuilder()
    let line (text: string) = s.Append(text).Append('\n') |> ignore
    line "#!/usr/bin/env bash"
    line $"#SBATCH --job-name={name}"

    if array <> "" then
        line $"#SBATCH --array={array}"

    line "#SBATCH --requeue"
    line "#SBATCH --open-mode=append"
    line $"#SBATCH --output={output}"
    line $"#SBATCH --cpus-per-task={r.Cpus}"

    for flag, value in
        [
            "--mem", r.Memory
            "--time", r.Time
            "--partition", r.Partition
            "--account", r.Account
            "--gres", (if r.Gpus > 0 then $"gpu:{r.Gpus}" else "")
        ] do
        if value <> "" then
            line $"#SBATCH {flag}={value}"

    for extra in r.Extra do
        line $"#SBATCH {extra}"

    s.ToString()

/// Runs a command to its end: its exit code, its output and its errors.
let private exec (file: string) (arguments: string list) =
    let start =
        ProcessStartInfo(file, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)

    for a in arguments do
        start.ArgumentList.Add a

    try
        use p = Process.Start start
        let stdout = p.StandardOutput.ReadToEndAsync()
        let stderr = p.StandardError.ReadToEnd()
        p.WaitForExit()
        Ok(p.ExitCode, stdout.Result, stderr)
    with :? Win32Exception as e ->
        Error(NotStarted(file, e.Message))

/// Submits a script with sbatch (`extra` before the script, e.g. a dependency); the job id.
let submit (script: string) (extra: string list) : Result<string, SlurmError> =
    exec "sbatch" ([ "--parsable" ] @ extra @ [ script ])
    |> Result.bind (fun (code, stdout, stderr) ->
        let job = stdout.Trim().Split(';')[0]

        if code <> 0 then
            Error(Failed("sbatch", $"refused {script} (exit code {code}): {(stderr + stdout).Trim()}"))
        elif not (Regex.IsMatch(job, "^[0-9]+$")) then
            Error(Failed("sbatch", $"printed '{stdout.Trim()}' for {script}; expected a job id"))
        else
            Ok job)

/// Every state of a job that has not ended. squeue's own listing, by its manual, is of pending, running and
/// completing jobs: a task held after a requeue (RH, SE) or being requeued (RQ) could look finished, and a build
/// collecting it would submit its experiment a second time.
let unfinished = "PD,CF,R,CG,S,ST,SI,SO,RS,RQ,RF,RH,RD,SE"

/// The jobs' tasks still in the queue (in any unfinished state), one line each in squeue's `format` (e.g. "%t":
/// the state, PD, R, CG...). A job squeue no longer knows has nothing queued.
let queued (jobs: string list) (format: string) : Result<string list, SlurmError> =
    let ids = String.Join(",", jobs)

    exec "squeue" [ "-h"; "-r"; "-t"; unfinished; "-j"; ids; "-o"; format ]
    |> Result.bind (fun (code, stdout, stderr) ->
        if code = 0 then
            Ok(
                stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
                |> List.ofArray
            )
        elif stderr.Contains("Invalid job id", StringComparison.OrdinalIgnoreCase) then
            Ok []
        else
            Error(Failed("squeue", $"-j {ids} failed (exit code {code}): {stderr.Trim()}")))

/// True for the states of a task that holds a node (running, completing, configuring).
let isRunning (state: string) =
    state = "R" || state = "CG" || state = "CF"

/// Looks at the queue every `poll` until none of the jobs' tasks is left: `report` gets what is queued at each
/// look. Ok true once the queue is empty, Ok false when `cancel` stopped the wait first (the jobs go on).
let waitFor
    (poll: TimeSpan)
    (cancel: CancellationToken)
    (jobs: string list)
    (format: string)
    (report: string list -> unit)
    : Result<bool, SlurmError> =
    let rec look () =
        match queued jobs format with
        | Error e -> Error e
        | Ok [] ->
            report []
            Ok true
        | Ok left ->
            report left

            if cancel.WaitHandle.WaitOne poll then Ok false else look ()

    look ()
