module Waal.Cli.Tests.Tests

open System
open System.Diagnostics
open System.IO
open Expecto
open Waal.Testing.Formats

let private fashion = Waal.Testing.Environment.fashion

let private waal = Waal.Cli.Tests.InProcess.waal

/// Runs the built `waal` as a child process (the same assembly the CLI project builds, copied beside these tests).
let private waalProcess (args: string list) =
    let dll = Path.Combine(AppContext.BaseDirectory, "waal.dll")

    let info =
        ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true)

    info.ArgumentList.Add dll

    for a in args do
        info.ArgumentList.Add a

    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out.Result, err

/// One error line on stderr, nothing on stdout, exit code 2, naming the code and the file.
let private expectDataError (code: string) (file: string) (args: string list) =
    let exit, out, err = waal args
    Expect.equal exit 2 "exit code 2"
    Expect.isEmpty out "nothing on stdout"
    Expect.equal err.Length 1 $"one line on stderr: %A{err}"
    Expect.stringStarts err[0] $"error {code}: {file}: " "error CODE: file: message"

let private inspect =
    testList
        "data inspect"
        [
            test "the real Fashion-MNIST training set: one summary line, then 6,000 in each of 10 classes" {
                let exit, out, err =
                    waal [ "data"; "inspect"; Path.Combine(fashion, "train-images-idx3-ubyte.gz") ]

                Expect.equal exit 0 "exit code"
                Expect.isEmpty err "no errors"
                Expect.equal out[0] "images=60000 shape=1x28x28 classes=10" "summary line"
                Expect.equal out[1..] [| for c in 0..9 -> $"class {c}: 6000" |] "per-class counts"
            }

            test "the real test set with an explicit --labels and --format idx" {
                let exit, out, _ =
                    waal
                        [
                            "data"
                            "inspect"
                            Path.Combine(fashion, "t10k-images-idx3-ubyte.gz")
                            "--format"
                            "idx"
                            "--labels"
                            Path.Combine(fashion, "t10k-labels-idx1-ubyte.gz")
                        ]

                Expect.equal exit 0 "exit code"
                Expect.equal out[0] "images=10000 shape=1x28x28 classes=10" "summary line"
                Expect.equal out[1..] [| for c in 0..9 -> $"class {c}: 1000" |] "per-class counts"
            }

            test "CIFAR-10 folders and SVHN files generated here are read and summarised" {
                inTemp (fun dir ->
                    for i in 1..5 do
                        write dir $"data_batch_{i}.bin" (cifar [| byte i; 0uy |]) |> ignore

                    let exit, out, _ = waal [ "data"; "inspect"; dir ]
                    Expect.equal exit 0 "cifar exit code"
                    Expect.equal out[0] "images=10 shape=3x32x32 classes=10" "cifar summary"
                    Expect.equal out[1] "class 0: 5" "five zeros"
                    let mat = write dir "train_32x32.mat" (svhn false true false [| 10; 10; 3 |])
                    let exit, out, _ = waal [ "data"; "inspect"; mat ]
                    Expect.equal exit 0 "svhn exit code"
                    Expect.equal out[0] "images=3 shape=3x32x32 classes=10" "svhn summary"
                    Expect.equal out[1] "class 0: 2" "10 means the digit 0")
            }

            test "corrupt files: one line 'error CODE: file: message' on stderr and exit code 2" {
                inTemp (fun dir ->
                    // The real test images, cut in half: the gzip stream ends early, inside the pixel data.
                    let real = File.ReadAllBytes(Path.Combine(fashion, "t10k-images-idx3-ubyte.gz"))
                    let cut = write dir "cut-images-idx3-ubyte.gz" real[.. real.Length / 2]

                    expectDataError
                        "DATA006"
                        cut
                        [
                            "data"
                            "inspect"
                            cut
                            "--labels"
                            Path.Combine(fashion, "t10k-labels-idx1-ubyte.gz")
                        ]

                    let wrongMagic =
                        write
                            dir
                            "m-images-idx3-ubyte"
                            (Array.append [| 7uy |] (idx [| 1; 2; 2 |] [| 0uy; 1uy; 2uy; 3uy |]))

                    expectDataError "DATA005" wrongMagic [ "data"; "inspect"; wrongMagic ]

                    let images =
                        write dir "a-images-idx3-ubyte" (idx [| 2; 2; 2 |] (Array.zeroCreate 8))

                    let labels = write dir "a-labels-idx1-ubyte" (idx [| 2 |] [| 1uy; 12uy |])
                    expectDataError "DATA009" labels [ "data"; "inspect"; images ]
                    File.WriteAllBytes(labels, idx [| 3 |] [| 1uy; 2uy; 3uy |])
                    expectDataError "DATA008" labels [ "data"; "inspect"; images ]

                    let truncated =
                        write dir "t-images-idx3-ubyte" (idx [| 5; 28; 28 |] (Array.zeroCreate 100))

                    expectDataError "DATA006" truncated [ "data"; "inspect"; truncated ]
                    let bin = write dir "short.bin" (Array.zeroCreate 3000)
                    expectDataError "DATA006" bin [ "data"; "inspect"; bin ]
                    let missing = Path.Combine(dir, "missing.mat")
                    expectDataError "DATA001" missing [ "data"; "inspect"; missing ])
            }

            test "a bad command line is one CLI001 line and exit code 2" {
                for args in
                    [
                        []
                        [ "data" ]
                        [ "data"; "inspect" ]
                        [ "data"; "inspect"; "x"; "--format"; "png" ]
                        [ "frobnicate" ]
                    ] do
                    let exit, out, err = waal args
                    Expect.equal exit 2 $"exit code for %A{args}"
                    Expect.isEmpty out "nothing on stdout"
                    Expect.equal err.Length 1 $"one line for %A{args}"
                    Expect.stringStarts err[0] "error CLI001: command line: " "the code"
            }

            test "as a real process: the summary on stdout with exit 0, a bad file on stderr with exit 2" {
                let exit, out, err = waalProcess [ "data"; "inspect"; fashion ]
                Expect.equal exit 0 $"exit code (stderr: {err})"
                Expect.stringStarts out "images=60000 shape=1x28x28 classes=10\n" "summary"

                inTemp (fun dir ->
                    let bad = write dir "bad-images-idx3-ubyte" [| 0uy; 0uy; 8uy |]
                    let exit, out, err = waalProcess [ "data"; "inspect"; bad ]
                    Expect.equal exit 2 "exit code"
                    Expect.equal out "" "nothing on stdout"

                    Expect.equal
                        (err.TrimEnd())
                        $"error DATA006: {bad}: truncated at byte 3: expected a 4-byte IDX magic, found 3 bytes"
                        "the one line")
            }
        ]

let private experiment =
    testList
        "run, resume, report"
        [
            test
                "waal run writes the results folder and prints one line per round; waal report writes report.md and the PNG" {
                inTemp (fun dir ->
                    let out = Path.Combine(dir, "run")

                    let exit, lines, err =
                        waal
                            [
                                "run"
                                "--dataset"
                                $"fashion-mnist={fashion}"
                                "--strategy"
                                "waal"
                                "--pool"
                                "1200"
                                "--initial"
                                "100"
                                "--query"
                                "50"
                                "--rounds"
                                "1"
                                "--epochs"
                                "1"
                                "--seed"
                                "3"
                                "--threads"
                                "2"
                                "--gp-sign"
                                "wgan-gp"
                                "--imbalance"
                                "paper"
                                "--critic"
                                "linear"
                                "--out"
                                out
                            ]

                    Expect.equal exit 0 $"exit code (stderr: %A{err})"

                    Expect.equal
                        (lines
                         |> Array.filter (fun l -> l.StartsWith "round " && l.Contains "test accuracy"))
                            .Length
                        2
                        "rounds 0 and 1"

                    let spec = File.ReadAllText(Path.Combine(out, "spec.json"))
                    Expect.stringContains spec "\"gpSign\": \"wgan-gp\"" "method options reach spec.json"
                    Expect.stringContains spec "\"imbalance\": \"paper\"" "imbalance"
                    Expect.stringContains spec "\"critic\": \"linear\"" "critic"
                    Expect.stringContains spec "\"TorchSharp\"" "package versions"
                    let exit, lines, _ = waal [ "resume"; out ]
                    Expect.equal exit 0 "resuming a finished run succeeds"
                    Expect.isEmpty (lines |> Array.filter (fun l -> l.StartsWith "round ")) "and runs nothing again"
                    let exit, lines, err = waal [ "report"; out; "--out"; Path.Combine(dir, "report") ]
                    Expect.equal exit 0 $"report exit code (stderr: %A{err})"
                    Expect.stringContains lines[0] "report.md" "prints where the report is"
                    Expect.isTrue (File.Exists(Path.Combine(dir, "report", "learning_curve.png"))) "the PNG")
            }

            test "waal query-times times every registered strategy on one model and pool" {
                let exit, lines, err =
                    waal
                        [
                            "query-times"
                            "--dataset"
                            $"fashion-mnist={fashion}"
                            "--pool"
                            "500"
                            "--initial"
                            "100"
                            "--query"
                            "40"
                            "--epochs"
                            "1"
                            "--threads"
                            "2"
                        ]

                Expect.equal exit 0 $"exit code (stderr: %A{err})"
                let header = lines |> Array.findIndex (fun l -> l.StartsWith "strategy ")

                let rows =
                    lines[header + 1 ..]
                    |> Array.map (fun l -> l.Split(' ', StringSplitOptions.RemoveEmptyEntries))

                Expect.equal
                    (rows |> Array.map (fun r -> r[0]))
                    (Array.ofList Waal.Strategies.Registry.names)
                    "one row per strategy"

                Expect.all rows (fun r -> r[4] = "40") "each picked 40 items"
                let waalRow = rows |> Array.find (fun r -> r[0] = "waal")
                Expect.equal waalRow[2] "1.0" "waal's ratio to itself"
            }

            test "a diverging training is reported with its round and step, exit code 1, and no query is made" {
                inTemp (fun dir ->
                    for strategy in [ "waal"; "entropy" ] do
                        let out = Path.Combine(dir, strategy)

                        let exit, _, err =
                            waal
                                [
                                    "run"
                                    "--dataset"
                                    $"fashion-mnist={fashion}"
                                    "--strategy"
                                    strategy
                                    "--pool"
                                    "500"
                                    "--initial"
                                    "50"
                                    "--query"
                                    "20"
                                    "--rounds"
                                    "1"
                                    "--epochs"
                                    "3"
                                    "--learning-rate"
                                    "1e9"
                                    "--threads"
                                    "2"
                                    "--out"
                                    out
                                ]

                        Expect.equal exit 1 $"{strategy}: exit code 1 for a failure during the run"
                        Expect.equal err.Length 1 $"{strategy}: one line: %A{err}"

                        Expect.stringStarts
                            err[0]
                            "error EXP007: round 0: train: round 0, epoch "
                            "the round and where"

                        Expect.stringContains err[0] "training diverged" "what happened"
                        Expect.equal (File.ReadAllLines(Path.Combine(out, "rounds.csv"))).Length 1 "no round completed"
                        let log = File.ReadAllText(Path.Combine(out, "labels.json"))
                        Expect.equal (log.Split("\"round\"").Length - 1) 1 "only the initial labels: no query was made")
            }

            test "bad run parameters: one line with a stable code and exit code 2, nothing written" {
                inTemp (fun dir ->
                    let out = Path.Combine(dir, "x")

                    for code, args in
                        [
                            "EXP001", [ "--dataset"; "mnist-digits" ]
                            "EXP001", [ "--dataset"; "cifar10" ]
                            "EXP001", [ "--dataset"; "fashion-mnist"; "--query"; "0" ]
                            "EXP001", [ "--dataset"; "fashion-mnist"; "--rounds"; "-1" ]
                            "EXP001", [ "--dataset"; "fashion-mnist"; "--epochs"; "0" ]
                            "EXP002", [ "--dataset"; "fashion-mnist"; "--strategy"; "psychic" ]
                            "EXP003", [ "--dataset"; "fashion-mnist"; "--pool"; "100000" ]
                            "EXP003", [ "--dataset"; "fashion-mnist"; "--pool"; "500"; "--initial"; "600" ]
                            "DATA001", [ "--dataset"; "fashion-mnist=/nonexistent/folder" ]
                        ] do
                        let exit, stdout, err = waal ([ "run" ] @ args @ [ "--out"; out ])
                        Expect.equal exit 2 $"exit code for %A{args}"
                        Expect.equal err.Length 1 $"one line for %A{args}: %A{err}"
                        Expect.stringStarts err[0] $"error {code}: " $"code for %A{args}"
                        Expect.isFalse (File.Exists(Path.Combine(out, "spec.json"))) "nothing written"

                    let exit, _, err = waal [ "resume"; dir ]
                    Expect.equal exit 2 "resume of a folder without an experiment"
                    Expect.stringStarts err[0] "error EXP005: " "its code")
            }
        ]

/// Starts the built `waal` as a child process (to be killed).
let private startWaal (args: string list) =
    let info =
        ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true)

    info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "waal.dll"))

    for a in args do
        info.ArgumentList.Add a

    let p = Process.Start info
    // Drain the pipes so the child never blocks on a full pipe.
    p.OutputDataReceived.Add ignore
    p.ErrorDataReceived.Add ignore
    p.BeginOutputReadLine()
    p.BeginErrorReadLine()
    p

let private crash =
    testList
        "crash safety"
        [
            test "SIGKILL at three moments of a run, then resume, gives the uninterrupted accuracies and label log" {
                inTemp (fun dir ->
                    let args out =
                        [
                            "run"
                            "--dataset"
                            $"fashion-mnist={fashion}"
                            "--pool"
                            "1000"
                            "--initial"
                            "60"
                            "--query"
                            "40"
                            "--rounds"
                            "3"
                            // The reference protocol's short rounds: this test is about kills, not training.
                            "--preset"
                            "reference"
                            "--epochs"
                            "2"
                            "--seed"
                            "5"
                            "--threads"
                            "2"
                            "--out"
                            out
                        ]

                    let columns (folder: string) =
                        File.ReadAllLines(Path.Combine(folder, "rounds.csv"))
                        |> Array.map (fun l -> let f = l.Split ',' in String.Join(",", [ f[0]; f[1]; f[2]; f[6] ]))

                    let whole = Path.Combine(dir, "whole")
                    let clock = Stopwatch.StartNew()
                    let exit, _, err = waalProcess (args whole)
                    let duration = clock.Elapsed.TotalMilliseconds
                    Expect.equal exit 0 $"the uninterrupted run (stderr: {err})"
                    let mutable killedMidway = 0

                    // Set-up or the first training, a query between rounds, the last round: three moments (five took
                    // 34 s of the suite, eight 45 s).
                    for fraction in [ 0.15; 0.5; 0.85 ] do
                        let out = Path.Combine(dir, $"killed-{int (fraction * 100.0)}")
                        use p = startWaal (args out)

                        if not (p.WaitForExit(int (fraction * duration))) then
                            p.Kill true // SIGKILL on Linux
                            p.WaitForExit()
                            killedMidway <- killedMidway + 1

                        // Recover as a user would: resume, or start again when set-up never finished.
                        let recovery =
                            if File.Exists(Path.Combine(out, "progress.json")) then
                                [ "resume"; out ]
                            else
                                args out @ [ "--force" ]

                        let exit, _, err = waalProcess recovery
                        Expect.equal exit 0 $"recovery after {fraction:P0} (stderr: {err})"
                        Expect.equal (columns out) (columns whole) $"rounds.csv after a kill at {fraction:P0}"

                        Expect.equal
                            (File.ReadAllText(Path.Combine(out, "labels.json")))
                            (File.ReadAllText(Path.Combine(whole, "labels.json")))
                            $"label log after a kill at {fraction:P0}"

                        Expect.isEmpty
                            (Directory.GetFiles(out, "*.tmp", SearchOption.AllDirectories))
                            "no temporary files left"

                    Expect.isGreaterThanOrEqual killedMidway 2 "most kills landed before the run finished")
            }
        ]

let private options =
    testList
        "options"
        [
            test "waal run --help lists every option of the table; an unknown option names the nearest" {
                let exit, lines, _ = waal [ "run"; "--help" ]
                Expect.equal exit 0 "help exits 0"

                for o in Waal.Core.Options.all do
                    Expect.isTrue
                        (lines |> Array.exists (fun l -> l.TrimStart().StartsWith $"--{o.Name} "))
                        $"--{o.Name} listed"

                let exit, _, err =
                    waal [ "run"; "--dataset"; "fashion-mnist"; "--gp-wieght"; "1"; "--out"; "x" ]

                Expect.equal exit 2 "exit code 2"
                Expect.stringContains err[0] "did you mean '--gp-weight'" "the nearest name"
            }

            test "waal query-times --help lists the table's options with run's defaults (epochs among them)" {
                let _, run, _ = waal [ "run"; "--help" ]
                let exit, times, _ = waal [ "query-times"; "--help" ]
                Expect.equal exit 0 "help exits 0"

                for o in Waal.Core.Options.all do
                    let line (lines: string[]) =
                        lines |> Array.tryFind (fun l -> l.TrimStart().StartsWith $"--{o.Name} ")

                    Expect.equal (line times) (line run) $"--{o.Name} as 'waal run --help' states it"

                Expect.exists
                    times
                    (fun l -> l.Contains "The pool is the first 50000 training images unless --pool is given")
                    "its own pool default"
            }

            test "without a terminal, a long phase prints its steps and the time left every few seconds, not once" {
                use out = new StringWriter()
                let hooks = Waal.Cli.Experiment.plainHooksEvery 0.2 out
                hooks.Sink.Start "training" 10

                for _ in 1..9 do
                    Threading.Thread.Sleep 120
                    hooks.Sink.Advance 1

                hooks.Sink.Finish()
                let lines = out.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
                let estimates = lines |> Array.filter (fun l -> l.Contains " s to go")
                Expect.isGreaterThanOrEqual estimates.Length 3 $"an estimate every 0.2 s over about 1 s: {out}"
                Expect.stringContains estimates[0] "training: " "names the phase"
                Expect.stringContains lines[0] "training: 10 steps" "the start"
                Expect.stringContains (Array.last lines) "training: done in" "the end"
            }

            test "docs/cli.md is what the grammar and the option table generate (WAAL_UPDATE_DOCS=1 rewrites it)" {
                let path = Path.Combine(Waal.Testing.Environment.repoRoot, "docs", "cli.md")

                // The C# names are the facade's to declare (OptionTable.ExposedProperty). Its assembly, Waal.dll,
                // is loaded beside waal.dll in a context of its own: the two names differ only in case.
                let facade =
                    let dll =
                        Path.Combine(
                            Waal.Testing.Environment.repoRoot,
                            "src",
                            "Waal",
                            "bin",
                            "Release",
                            "net10.0",
                            "Waal.dll"
                        )

                    let context = Runtime.Loader.AssemblyLoadContext "waal-facade"

                    let exposed =
                        context.LoadFromAssemblyPath(dll).GetType("Waal.OptionTable", true).GetMethod "ExposedProperty"

                    fun (o: Waal.Core.OptionDef) -> exposed.Invoke(null, [| box o |]) :?> string |> Option.ofObj

                let generated = Waal.Cli.Reference.markdown facade

                if Environment.GetEnvironmentVariable "WAAL_UPDATE_DOCS" = "1" then
                    File.WriteAllText(path, generated)

                let committed = if File.Exists path then File.ReadAllText path else ""

                if committed <> generated then
                    let a = committed.Split '\n'
                    let b = generated.Split '\n'

                    let first =
                        Seq.zip (Seq.append a (Seq.replicate b.Length "")) b
                        |> Seq.tryFindIndex (fun (x, y) -> x <> y)
                        |> Option.defaultValue (min a.Length b.Length)

                    let at (xs: string[]) =
                        if first < xs.Length then xs[first] else "(end of file)"

                    failtest
                        $"{path}: line {first + 1} is '{at a}', the option table and grammar give '{at b}'; rerun this suite with WAAL_UPDATE_DOCS=1 and commit docs/cli.md"

                for o in Waal.Core.Options.all do
                    Expect.stringContains committed $"| `--{o.Name}` |" $"--{o.Name} in docs/cli.md"
            }
        ]

let private writers =
    testList
        "one writer per folder"
        [
            test "a second run or a resume into a folder being written is refused with EXP009 and disturbs nothing" {
                inTemp (fun dir ->
                    let out = Path.Combine(dir, "run")

                    let args =
                        [
                            "run"
                            "--dataset"
                            $"fashion-mnist={fashion}"
                            "--pool"
                            "2000"
                            "--initial"
                            "100"
                            "--query"
                            "100"
                            "--rounds"
                            "2"
                            "--epochs"
                            "2"
                            // 2 x 24 steps a round: the first run outlives the two refused ones (94 took 13 s).
                            "--floor"
                            "1500"
                            "--threads"
                            "2"
                            "--out"
                            out
                            "--force"
                        ]

                    use first = startWaal args
                    let clock = Stopwatch.StartNew()

                    while not (File.Exists(Path.Combine(out, "progress.json")))
                          && clock.Elapsed.TotalSeconds < 60.0 do
                        Threading.Thread.Sleep 50

                    Expect.isFalse first.HasExited "the first run is still writing"
                    let exit, _, err = waalProcess args
                    Expect.equal exit 2 $"the second writer's exit code (stderr: {err})"

                    Expect.stringStarts
                        err
                        $"error EXP009: {out}: is in use by process {first.Id}"
                        "code, folder, holder"

                    Expect.isFalse (err.Contains "   at ") "no stack trace"
                    let exit, _, err = waalProcess [ "resume"; out ]
                    Expect.equal exit 2 "resume beside a live run"
                    Expect.stringStarts err "error EXP009: " "the same code"
                    first.WaitForExit()
                    Expect.equal first.ExitCode 0 "the first run completed"
                    let whole = Path.Combine(dir, "whole")

                    let exit, _, _ =
                        waalProcess (args |> List.map (fun a -> if a = out then whole else a))

                    Expect.equal exit 0 "an undisturbed run"

                    Expect.equal
                        (File.ReadAllText(Path.Combine(out, "labels.json")))
                        (File.ReadAllText(Path.Combine(whole, "labels.json")))
                        "the first run's results are those of an undisturbed run")
            }
        ]

/// Runs the built `waal` as a user who cannot read what mode 000 protects: as `nobody` through setpriv when the
/// tests run as root (root reads anything), else as the current user.
let private waalUnprivileged (args: string list) =
    let dll = Path.Combine(AppContext.BaseDirectory, "waal.dll")
    let root = Environment.IsPrivilegedProcess

    let info =
        ProcessStartInfo(
            (if root then "setpriv" else "dotnet"),
            RedirectStandardOutput = true,
            RedirectStandardError = true
        )

    if root then
        for a in [ "--reuid=65534"; "--regid=65534"; "--clear-groups"; "dotnet" ] do
            info.ArgumentList.Add a

    info.ArgumentList.Add dll

    for a in args do
        info.ArgumentList.Add a

    // Nothing of root's is needed: no decode cache, a home the user can write.
    info.Environment["WAAL_IMAGE_CACHE"] <- "off"
    info.Environment["HOME"] <- Path.GetTempPath()
    info.Environment["DOTNET_CLI_HOME"] <- Path.GetTempPath()
    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out.Result, err

let private permissions =
    testList
        "Unreadable files"
        [
            test
                "an image the user may not read is a DATA error naming it; --skip-bad-images lists it; an empty held-out part is refused" {
                if Environment.IsPrivilegedProcess then
                    // As root the run is repeated as `nobody`, who must be able to read the built runner.
                    use probe =
                        Process.Start(
                            "setpriv",
                            [
                                "--reuid=65534"
                                "--regid=65534"
                                "--clear-groups"
                                "test"
                                "-r"
                                Path.Combine(AppContext.BaseDirectory, "waal.dll")
                            ]
                        )

                    probe.WaitForExit()

                    if probe.ExitCode <> 0 then
                        skiptest "the built runner is under a folder user nobody cannot read"

                let root =
                    Path.Combine(Path.GetTempPath(), "waal-cli-perm-" + Guid.NewGuid().ToString "N")

                let data = Path.Combine(root, "data")
                Directory.CreateDirectory root |> ignore
                // The unprivileged user writes the run folders here.
                File.SetUnixFileMode(root, enum<UnixFileMode> 0o777)

                try
                    Waal.Testing.ImageFolders.writeFashion
                        fashion
                        Waal.Testing.ImageFolders.GreyPng
                        [| "top"; "trouser" |]
                        6
                        data
                    |> ignore

                    let locked = Directory.GetFiles(Path.Combine(data, "trouser"))[2]
                    File.SetUnixFileMode(locked, UnixFileMode.None)

                    let args out extra =
                        [ "run"; "--dataset"; $"folder={data}"; "--rounds"; "1" ]
                        @ Waal.Testing.TinyRun.training 2 2 8
                        @ [ "--out"; Path.Combine(root, out) ]
                        @ extra

                    let code, out, err = waalUnprivileged (args "a" [])
                    Expect.equal code 2 $"refused: {out} {err}"
                    Expect.stringStarts err $"error DATA003: {locked}: cannot be read" "names the file"
                    Expect.isFalse (Directory.Exists(Path.Combine(root, "a", "checkpoint"))) "nothing trained"

                    let code, out, err = waalUnprivileged (args "b" [ "--skip-bad-images" ])
                    Expect.equal code 0 $"skipped: {out} {err}"
                    let dataset = File.ReadAllText(Path.Combine(root, "b", "dataset.json"))
                    Expect.stringContains dataset (Path.GetFileName locked) "dataset.json lists the skipped file"

                    // One readable image per class: nothing can be held out of a class of one.
                    for f in Directory.GetFiles(Path.Combine(data, "top"))[1..] do
                        File.Delete f

                    let trousers = Directory.GetFiles(Path.Combine(data, "trouser")) |> Array.sort
                    let keep = trousers |> Array.find (fun f -> f <> locked)

                    for f in trousers do
                        if f <> locked && f <> keep then
                            File.Delete f

                    let code, _, err = waalUnprivileged (args "c" [ "--skip-bad-images" ])
                    Expect.equal code 2 $"refused: {err}"
                    Expect.stringStarts err "error EXP003: --holdout: the held-out part (--holdout) is empty" "says why"
                finally
                    Directory.Delete(root, true)
            }
        ]

/// A folder of colour JPEGs, a folder run, then `waal export` and `waal predict` as a user types them.
let private model =
    testList
        "The model afterwards"
        [
            test "waal run on a folder, waal export, waal predict: a CSV of path, class, probabilities, margin, entropy" {
                let root = temp ()
                let data = Path.Combine(root, "photos")
                let run = Path.Combine(root, "run")
                let exported = Path.Combine(root, "model")
                let csv = Path.Combine(root, "predictions.csv")

                try
                    Waal.Testing.ImageFolders.writeFashion
                        fashion
                        Waal.Testing.ImageFolders.ColourJpeg
                        [| "top"; "trouser" |]
                        20
                        data
                    |> ignore

                    let code, _, err =
                        waal
                            [
                                "run"
                                "--dataset"
                                $"folder={data}"
                                "--initial"
                                "6"
                                "--query"
                                "6"
                                "--rounds"
                                "4"
                                "--epochs"
                                "1"
                                "--floor"
                                "32"
                                "--threads"
                                "2"
                                "--stop-when"
                                "labels>=9"
                                "--out"
                                run
                            ]

                    Expect.equal code 0 $"run: %A{err}"
                    // 6 labels, then a query cut to 3 by the budget, then the stop.
                    let runOut = File.ReadAllLines(Path.Combine(run, "rounds.csv"))
                    Expect.equal runOut.Length 3 "rounds 0 and 1"
                    Expect.stringEnds runOut[2] ",labels>=9: 9 labels" "rounds.csv says which rule fired"
                    let code, out, err = waal [ "export"; run; "--out"; exported ]
                    Expect.equal code 0 $"export: %A{err}"
                    Expect.stringContains out[0] "resnet, 3x28x28, 2 classes, round 1" "what was exported"

                    // A file, a folder, and a bad file: refused naming it, then skipped with the flag.
                    let bad = Path.Combine(root, "broken.jpg")
                    File.WriteAllText(bad, "not a JPEG")
                    let one = Directory.GetFiles(Path.Combine(data, "top"))[0]

                    let args =
                        [
                            "predict"
                            exported
                            "--images"
                            one
                            Path.Combine(data, "trouser")
                            bad
                            "--out"
                            csv
                        ]

                    let code, _, err = waal args
                    Expect.equal code 2 "a bad image stops predict"
                    Expect.stringStarts err[0] $"error DATA005: {bad}: " "naming the file"
                    Expect.isFalse (File.Exists csv) "and nothing is written"

                    let code, out, err = waal (args @ [ "--skip-bad-images" ])
                    Expect.equal code 0 $"predict: %A{err}"
                    Expect.stringStarts err[0] "skipped: error DATA005: " "the skipped file is reported"
                    Expect.stringContains out[0] "(21 images, 1 skipped)" "one file and a folder of 20"

                    let lines = File.ReadAllLines csv
                    Expect.equal lines[0] "path,class,probability,top,trouser,margin,entropy" "the header"
                    Expect.equal lines.Length 22 "a row per image"
                    Expect.stringStarts lines[2] "img-" "a folder's files by their path below it"

                    for line in lines[1..] do
                        let f = line.Split ','
                        let p = f[3..4] |> Array.map float
                        Expect.floatClose Accuracy.medium (Array.sum p) 1.0 "probabilities sum to 1"
                        Expect.equal (float f[2]) (Array.max p) "probability is the class's"
                        Expect.equal f[1] (if p[0] >= p[1] then "top" else "trouser") "class is the most probable"
                finally
                    Directory.Delete(root, true)
            }
        ]

let all =
    testList
        "Cli"
        [
            testSequenced model
            testSequenced permissions
            testSequenced inspect
            options
            testSequenced experiment
            testSequenced crash
            testSequenced writers
        ]
