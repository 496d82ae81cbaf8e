/// The packages used as a stranger would: packed from this build (build/pack.sh), then added to a new project in a
/// folder outside the repository, restored through a nuget.config that adds the packed folder to the machine's
/// feed, built and run.
module Waal.Build.Tests.Packages

open System
open System.Diagnostics
open System.IO
open Expecto

let private repoRoot = Waal.Testing.Environment.repoRoot
let private fashion = Waal.Testing.Environment.fashion

/// Runs a program in a folder; returns the exit code and everything it printed.
let internal run (dir: string) (file: string) (args: string list) (env: (string * string) list) =
    let info =
        ProcessStartInfo(file, WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true)

    for a in args do
        info.ArgumentList.Add a

    for k, v in env do
        info.Environment[k] <- v

    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out.Result + err

let private ok what (code: int, output: string) =
    if code <> 0 then
        failtest $"{what} exited {code}:\n{output}"

    output

/// The packed ids.
let private packed =
    [
        "Waal.Core"
        "Waal.Data"
        "Waal.Learning"
        "Waal.Strategies"
        "Waal.Experiments"
        "Waal"
        "Waal.Cpu"
    ]

/// Removes a test version of the packages from the machine's package cache (each run packs a new one).
let private forgetVersion (version: string) =
    let cache =
        match Environment.GetEnvironmentVariable "NUGET_PACKAGES" with
        | null
        | "" -> Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
        | dir -> dir

    for id in packed do
        let dir = Path.Combine(cache, id.ToLowerInvariant(), version)

        if Directory.Exists dir then
            Directory.Delete(dir, true)

/// The C# example of a markdown file: the first ```csharp block after its "## Install" heading (or its first).
let private csharpExample (file: string) =
    let text = File.ReadAllText file
    let from = max 0 (text.IndexOf "## Install")
    let start = text.IndexOf("```csharp\n", from)

    if start < 0 then
        failtest $"{file}: no ```csharp block"

    let body = start + "```csharp\n".Length
    text.Substring(body, text.IndexOf("\n```", body) - body + 1)

/// The C# a stranger writes: README.md's example, exactly as the README shows it.
let private program = lazy (csharpExample (Path.Combine(repoRoot, "README.md")))

/// `waal run` of the tiny folder run both the model and the tool's test make: 9 initial labels, 3 a round.
let private tinyRun (images: string) (rounds: int) (out: string) =
    [ "run"; "--dataset"; $"folder={images}" ]
    @ Waal.Testing.TinyRun.smallCnn 9 3 32
    @ [ "--rounds"; string rounds; "--out"; out ]

/// What both strangers use: the packages packed once into a feed, a tiny exported model and one of its images,
/// and a nuget.config above their projects that adds the feed to the machine's.
type private Fixture =
    {
        Work: string
        Version: string
        Model: string
        Picture: string
        Images: string
    }

let private fixture =
    lazy
        (let work = Path.Combine(Path.GetTempPath(), $"waal-stranger-{Guid.NewGuid():N}")
         let feed = Path.Combine(work, "feed")
         Directory.CreateDirectory work |> ignore
         // A version no real release has, so the package cache never confuses it with another build.
         let version = $"0.0.0-test.{DateTime.UtcNow:yyyyMMddHHmmss}"

         ok
             "build/pack.sh"
             (run repoRoot "bash" [ "build/pack.sh"; version ] [ "WAAL_SKIP_SETUP", "1"; "WAAL_PACKAGES", feed ])
         |> ignore

         for p in packed do
             Expect.isTrue (File.Exists(Path.Combine(feed, $"{p}.{version}.nupkg"))) $"{p} packed"

         // A model to predict with: a tiny folder run by the repository's own waal, exported.
         let images = Path.Combine(work, "images")

         Waal.Testing.ImageFolders.writeFashion
             fashion
             Waal.Testing.ImageFolders.GreyPng
             [| "top"; "trouser"; "pullover" |]
             8
             images
         |> ignore

         let waal =
             Path.Combine(repoRoot, "src", "Waal.Cli", "bin", "Release", "net10.0", "waal.dll")

         let runDir = Path.Combine(work, "run")
         let modelDir = Path.Combine(work, "model")

         ok "waal run" (run work "dotnet" (waal :: tinyRun images 0 runDir) []) |> ignore

         ok "waal export" (run work "dotnet" [ waal; "export"; runDir; "--out"; modelDir ] [])
         |> ignore

         let machineFeed = Environment.GetEnvironmentVariable "NUGET_FEED"

         File.WriteAllText(
             Path.Combine(work, "nuget.config"),
             $"""<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="packed" value="{feed}" />
    <add key="machine" value="{machineFeed}" />
  </packageSources>
</configuration>
"""
         )

         {
             Work = work
             Version = version
             Model = modelDir
             Picture = Directory.GetFiles(Path.Combine(images, "trouser"))[0]
             Images = images
         })

/// A new console project of `language` in the fixture's folder with `packages` added; runs it with the
/// Fashion-MNIST folder, the model and the picture as arguments; returns what it printed.
let private stranger (language: string) (name: string) (packages: (string * string) list) (source: string * string) =
    let f = fixture.Value
    let app = Path.Combine(f.Work, name)

    ok "dotnet new console" (run f.Work "dotnet" [ "new"; "console"; "-lang"; language; "-o"; app; "--no-restore" ] [])
    |> ignore

    for id, version in packages do
        ok $"dotnet add package {id}" (run app "dotnet" [ "add"; "package"; id; "--version"; version ] [])
        |> ignore

    File.WriteAllText(Path.Combine(app, fst source), snd source)
    ok "dotnet run" (run app "dotnet" [ "run"; "-c"; "Release"; "--"; fashion; f.Model; f.Picture ] [])

/// The F# a stranger writes against the F# API: a session over a Fashion-MNIST subset, then waal predict's function.
let private fsharpProgram =
    """open System.Threading
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Experiments

[<EntryPoint>]
let main argv =
    let fail what = failwithf "%s: %A" what
    let train, _ = Load.fashionMnist argv[0] |> Result.defaultWith (fun e -> failwith (DataError.line e))
    let pool = Dataset.take 300 train

    let given =
        [ "dataset", "fashion-mnist"; "seed", "1"; "threads", "2"; "epochs", "1"; "floor", "64" ]
        |> List.map (fun (name, value) -> (Options.tryFind name).Value, value)

    let fallbacks = Options.fallbacks [ "strategy", "waal"; "preset", "recommended" ]
    let config = Options.build Datasets.defaultsFor fallbacks given |> Result.defaultWith (fail "options")
    use session = Session.create config pool None ProgressSink.none |> Result.defaultWith (fail "session")
    let initial = session.DrawInitial 20
    session.Label(initial |> Array.map (fun i -> i, pool.Labels[i])) |> Result.defaultWith (fail "label")
    let proposed = session.Propose(CancellationToken.None, 10) |> Result.defaultWith (fail "propose")
    let batch = proposed.Pending.Value.Indices

    let record =
        session.Accept(batch |> Array.map (fun i -> i, pool.Labels[i])) |> Result.defaultWith (fail "accept")

    printfn "round %d: %d labels" record.Round session.Pool.LabelledCount

    match Model.predictFiles argv[1] [ argv[2] ] false 250 with
    | Ok(info, [ _, p ], _) -> printfn "predicted %s" info.ClassNames[p.Class]
    | other -> failwithf "predict: %A" other

    0
"""

let all =
    testSequenced
    <| testList
        "Packages, used from outside the repository"
        [
            test
                "a new C# console project adds Waal.Cpu alone from the packed folder and runs README's example as written" {
                let output =
                    stranger "C#" "csharp" [ "Waal.Cpu", fixture.Value.Version ] ("Program.cs", program.Value)

                Expect.equal
                    (csharpExample (Path.Combine(repoRoot, "build", "package-readme.md")))
                    program.Value
                    "the packages' README shows the same example"

                Expect.stringContains output "round 0: 30 labels" "a round from the packages"
                Expect.stringContains output "predicted " "a prediction from the exported model"
            }

            test "Waal without a backend: the example stops with one line naming EXP019, both packages and the version" {
                let f = fixture.Value
                let app = Path.Combine(f.Work, "no-backend")

                ok
                    "dotnet new console"
                    (run f.Work "dotnet" [ "new"; "console"; "-lang"; "C#"; "-o"; app; "--no-restore" ] [])
                |> ignore

                ok "dotnet add package Waal" (run app "dotnet" [ "add"; "package"; "Waal"; "--version"; f.Version ] [])
                |> ignore

                File.WriteAllText(Path.Combine(app, "Program.cs"), program.Value)

                ok "dotnet build" (run app "dotnet" [ "build"; "-c"; "Release"; "-v"; "quiet"; "-nologo" ] [])
                |> ignore

                let dll = Path.Combine(app, "bin", "Release", "net10.0", "no-backend.dll")
                let code, output = run app "dotnet" [ dll; fashion; f.Model; f.Picture ] []
                Expect.notEqual code 0 "the program fails"

                let lines =
                    output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                    |> Array.filter (fun l -> l.Contains "EXP019")

                Expect.hasLength lines 1 $"one line names EXP019: {output}"
                Expect.stringContains lines[0] "Waal.Cpu" "the CPU package"
                Expect.stringContains lines[0] "libtorch-cuda-12.8-linux-x64" "the CUDA package"
                Expect.stringContains lines[0] "2.10.0" "the version"
                Expect.isFalse (output.Contains "github.com") $"not TorchSharp's loader trace: {output}"
            }

            test "dotnet tool install gives a waal that runs an experiment and serves the labelling page for its token" {
                let f = fixture.Value
                let tools = Path.Combine(f.Work, "tools")

                ok
                    "dotnet tool install"
                    (run
                        f.Work
                        "dotnet"
                        [ "tool"; "install"; "--tool-path"; tools; "Waal.Cli"; "--version"; f.Version ]
                        [])
                |> ignore

                let waal = Path.Combine(tools, "waal")
                let out = Path.Combine(f.Work, "tool-run")

                let printed = ok "waal run" (run f.Work waal (tinyRun f.Images 1 out) [])

                Expect.stringContains printed "round 1: 12 labels" "two rounds from the tool"
                Expect.isTrue (File.Exists(Path.Combine(out, "rounds.csv"))) "rounds.csv"

                // waal label: its page answers 200 for the token it printed, and refuses a request without it.
                let info =
                    ProcessStartInfo(
                        waal,
                        WorkingDirectory = f.Work,
                        RedirectStandardOutput = true,
                        RedirectStandardError = true
                    )

                for a in
                    [
                        "label"
                        "--dataset"
                        $"folder={f.Images}"
                        "--network"
                        "small-cnn"
                        "--threads"
                        "2"
                        "--out"
                        Path.Combine(f.Work, "session")
                    ] do
                    info.ArgumentList.Add a

                use label = Process.Start info
                let opened = Threading.Tasks.TaskCompletionSource<string>()

                label.OutputDataReceived.Add(fun e ->
                    if not (isNull e.Data) && e.Data.StartsWith "open: " then
                        opened.TrySetResult(e.Data.Substring 6) |> ignore)

                label.BeginOutputReadLine()

                try
                    Expect.isTrue (opened.Task.Wait(TimeSpan.FromSeconds 120.0)) "waal label printed its address"
                    let url = Uri opened.Task.Result
                    let token = url.Query.Substring("?token=".Length)

                    use http =
                        new Net.Http.HttpClient(new Net.Http.HttpClientHandler(UseCookies = false))

                    let state (query: string) =
                        int (http.GetAsync($"{url.Scheme}://{url.Authority}/api/state{query}").Result.StatusCode)

                    Expect.equal (state $"?token={token}") 200 "the session's state, with the token"
                    Expect.isGreaterThanOrEqual (state "") 400 "refused without the token"
                finally
                    if not label.HasExited then
                        label.Kill true
                        label.WaitForExit()
            }

            test
                "an experiments project with only a PackageReference to the targets runs its experiments, then is up to date, and refuses a typo" {
                let f = fixture.Value
                let dir = Path.Combine(f.Work, "experiments")
                Directory.CreateDirectory dir |> ignore

                let write (extra: string) =
                    let experiment name strategy =
                        $"<Experiment Include=\"{name}\" Dataset=\"fashion-mnist={fashion}\" Strategy=\"{strategy}\" Seed=\"1\" Initial=\"40\" Query=\"20\" Rounds=\"1\" Epochs=\"1\" Pool=\"300\" Threads=\"2\" {extra}/>"

                    File.WriteAllText(
                        Path.Combine(dir, "experiments.proj"),
                        $"""<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net10.0</TargetFramework>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Waal.Experiments.Targets" Version="{f.Version}" />
    {experiment "waal-1" "waal"}
    {experiment "random-1" "random"}
  </ItemGroup>
</Project>
"""
                    )

                let build () =
                    run dir "dotnet" [ "build"; "experiments.proj"; "-t:RunExperiments"; "-nologo"; "-v:minimal" ] []

                write ""
                let first = ok "the first build" (build ())
                Expect.stringContains first "Waal: ran 2 experiment(s): waal-1;random-1." "both ran"

                for name in [ "waal-1"; "random-1" ] do
                    let rounds = File.ReadAllLines(Path.Combine(dir, "results", name, "rounds.csv"))
                    Expect.equal rounds.Length 3 $"{name}: rounds 0 and 1"

                let second = ok "the second build" (build ())
                Expect.stringContains second "Waal: all 2 experiment(s) are up to date; nothing to run." "a no-op"

                write "Seeed=\"2\" "
                let code, third = build ()
                Expect.notEqual code 0 "the typo fails the build"
                Expect.stringContains third "error WAALB003" "WAALB003"
                Expect.stringContains third "Seeed" "naming the metadata"
            }

            test "a new F# console project adds Waal.Experiments and does the same through the F# API" {
                try
                    let output =
                        stranger
                            "F#"
                            "fsharp"
                            [
                                "Waal.Experiments", fixture.Value.Version
                                "libtorch-cpu-linux-x64", "2.10.0"
                            ]
                            ("Program.fs", fsharpProgram)

                    Expect.stringContains output "round 0: 30 labels" "a round from the packages"
                    Expect.stringContains output "predicted " "a prediction from the exported model"
                finally
                    // The last of the package tests: the fixture's folder and its versions in the package cache go.
                    if fixture.IsValueCreated then
                        if Directory.Exists fixture.Value.Work then
                            Directory.Delete(fixture.Value.Work, true)

                        forgetVersion fixture.Value.Version
            }
        ]
