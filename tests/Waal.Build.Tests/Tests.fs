module Waal.Build.Tests.Tests

open System
open System.Diagnostics
open System.IO
open Expecto

let private fashion = Waal.Testing.Environment.fashion

let private repoRoot = Waal.Testing.Environment.repoRoot

/// An experiments project anywhere on disk: it imports the targets and declares items.
let private project (items: string list) =
    let targets = Path.Combine(repoRoot, "build", "Waal.Experiments.targets")
    let body = items |> List.map (fun i -> "    " + i) |> String.concat "\n"
    $"<Project>\n  <Import Project=\"{targets}\" />\n  <ItemGroup>\n{body}\n  </ItemGroup>\n</Project>\n"

let private experiment name strategy seed query =
    $"<Experiment Include=\"{name}\" Dataset=\"fashion-mnist={fashion}\" Strategy=\"{strategy}\" Seed=\"{seed}\" Initial=\"40\" Query=\"{query}\" Rounds=\"1\" Epochs=\"1\" Pool=\"300\" Threads=\"2\" />"

/// Runs `dotnet msbuild` on the project with a target; returns the exit code and everything it printed.
let private msbuild (proj: string) (target: string) =
    let info =
        ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true)

    for a in [ "msbuild"; proj; $"-t:{target}"; "-nologo"; "-v:minimal"; "-nodeReuse:false" ] do
        info.ArgumentList.Add a

    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out.Result + err

let private stamp (path: string) = File.GetLastWriteTimeUtc path

let private targets =
    testList
        "Waal.Experiments.targets"
        [
            test "experiments run as build targets, incrementally, and a failing one fails the build with its code" {
                let dir =
                    Path.Combine(Path.GetTempPath(), "waal-build-" + Guid.NewGuid().ToString "N")

                Directory.CreateDirectory dir |> ignore

                try
                    let proj = Path.Combine(dir, "tiny.proj")
                    let results = Path.Combine(dir, "results")
                    File.WriteAllText(proj, project [ experiment "w" "waal" 1 20; experiment "r" "random" 1 20 ])

                    // First build: both experiments and the report.
                    let code, log = msbuild proj "Report"
                    Expect.equal code 0 $"first build: {log}"
                    Expect.stringContains log "Waal: ran 2 experiment(s)" "both ran"

                    for name in [ "w"; "r" ] do
                        let rows = File.ReadAllLines(Path.Combine(results, name, "rounds.csv"))
                        Expect.equal rows.Length 3 $"{name}: header + rounds 0 and 1"

                    Expect.isTrue (File.Exists(Path.Combine(results, "report", "report.md"))) "report.md"

                    Expect.isTrue
                        (File.Exists(Path.Combine(results, "report", "learning_curve.png")))
                        "learning_curve.png"

                    let w0 = stamp (Path.Combine(results, "w", "rounds.csv"))
                    let r0 = stamp (Path.Combine(results, "r", "rounds.csv"))

                    // Nothing changed: nothing runs, and the build says so.
                    let code, log = msbuild proj "RunExperiments"
                    Expect.equal code 0 $"second build: {log}"
                    Expect.stringContains log "all 2 experiment(s) are up to date; nothing to run" "says so"
                    Expect.equal (stamp (Path.Combine(results, "w", "rounds.csv"))) w0 "w untouched"

                    // One item's metadata changes: exactly that experiment reruns.
                    File.WriteAllText(proj, project [ experiment "w" "waal" 1 20; experiment "r" "random" 2 20 ])
                    let code, log = msbuild proj "RunExperiments"
                    Expect.equal code 0 $"third build: {log}"
                    Expect.stringContains log "Waal: ran 1 experiment(s): r." "only r"
                    Expect.equal (stamp (Path.Combine(results, "w", "rounds.csv"))) w0 "w untouched"
                    Expect.isGreaterThan (stamp (Path.Combine(results, "r", "rounds.csv"))) r0 "r rewritten"

                    Expect.stringContains
                        (File.ReadAllText(Path.Combine(results, "r", "spec.json")))
                        "\"seed\": 2"
                        "with the new seed"

                    // A failing experiment fails the build with the runner's code and message.
                    File.WriteAllText(proj, project [ experiment "w" "waal" 1 20; experiment "r" "random" 2 0 ])
                    let code, log = msbuild proj "RunExperiments"
                    Expect.notEqual code 0 "the build fails"

                    Expect.stringContains
                        log
                        "error EXP001: --query: expected a query batch of at least 1, found 0"
                        "code and message"

                    Expect.equal (stamp (Path.Combine(results, "w", "rounds.csv"))) w0 "the other experiment untouched"

                    // Fixed again: it runs (the failure left no completion marker).
                    File.WriteAllText(proj, project [ experiment "w" "waal" 1 20; experiment "r" "random" 2 20 ])
                    let code, log = msbuild proj "RunExperiments"
                    Expect.equal code 0 $"after the fix: {log}"
                    Expect.stringContains log "Waal: ran 1 experiment(s): r." "r reran"
                finally
                    Directory.Delete(dir, true)
            }
        ]

let all = testSequenced targets
