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
                        "error EXP001: --query: expected an integer >= 1, found 0"
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

            test "unknown metadata and unsafe names fail the build with WAALB codes before anything runs" {
                let dir =
                    Path.Combine(Path.GetTempPath(), "waal-build-" + Guid.NewGuid().ToString "N")

                Directory.CreateDirectory dir |> ignore

                try
                    let proj = Path.Combine(dir, "typo.proj")
                    let results = Path.Combine(dir, "results")

                    let typo =
                        $"<Experiment Include=\"t\" Dataset=\"fashion-mnist={fashion}\" Seeds=\"2\" Initial=\"40\" Query=\"20\" Rounds=\"0\" Epochs=\"1\" Pool=\"300\" GpWieght=\"1\" />"

                    File.WriteAllText(proj, project [ typo ])
                    let code, log = msbuild proj "RunExperiments"
                    Expect.notEqual code 0 "the build fails"

                    Expect.stringContains
                        log
                        "error WAALB003: Experiment 't': unknown metadata 'Seeds'; did you mean 'Seed'?"
                        "Seeds"

                    Expect.stringContains log "unknown metadata 'GpWieght'; did you mean 'GpWeight'?" "GpWieght"
                    Expect.isFalse (Directory.Exists(Path.Combine(results, "t"))) "nothing ran, nothing written"

                    let escape =
                        $"<Experiment Include=\"../escape\" Dataset=\"fashion-mnist={fashion}\" Initial=\"40\" Query=\"20\" Rounds=\"0\" Epochs=\"1\" Pool=\"300\" />"

                    File.WriteAllText(proj, project [ escape ])
                    let code, log = msbuild proj "RunExperiments"
                    Expect.notEqual code 0 "the build fails"
                    Expect.stringContains log "error WAALB004: Experiment '../escape'" "the unsafe name"
                    Expect.isFalse (Directory.Exists(Path.Combine(dir, "escape"))) "nothing written beside the project"
                finally
                    Directory.Delete(dir, true)
            }
        ]

/// Every project under experiments/ evaluated as a build would (its item targets, with WriteExperimentArgs'
/// checks of names and metadata), then each experiment.args read by the runner's own parser: a typo in a
/// project that nobody ran for hours fails here in seconds.
let private projects =
    test "every project under experiments/ gives experiments the runner accepts" {
        let dir =
            Path.Combine(Path.GetTempPath(), "waal-projects-" + Guid.NewGuid().ToString "N")

        Directory.CreateDirectory dir |> ignore

        try
            let all = Path.Combine(dir, "all.proj")
            let experiments = Path.Combine(repoRoot, "experiments")
            // Folders are never opened while arguments are written; the CIFAR-10 study is a second evaluation.
            let folders = "SvhnDir=/nonexistent/svhn;Cifar10Dir=/nonexistent/cifar10"

            File.WriteAllText(
                all,
                $"<Project>\n  <ItemGroup><P Include=\"{experiments}/*.proj\" /></ItemGroup>\n  <Target Name=\"Check\">\n    <MSBuild Projects=\"@(P)\" Targets=\"_WaalWriteArgs\" Properties=\"WaalResults={dir}/%%(P.Filename);{folders}\" />\n    <MSBuild Projects=\"{experiments}/cifar10.proj\" Targets=\"_WaalWriteArgs\" Properties=\"WaalResults={dir}/cifar10-study;WaalCifarStudy=true;{folders}\" />\n  </Target>\n</Project>\n"
            )

            let code, log = msbuild all "Check"
            Expect.equal code 0 $"every project evaluates: {log}"

            let args =
                Directory.GetFiles(dir, "experiment.args", SearchOption.AllDirectories)
                |> Array.sort

            let projectsSeen =
                args
                |> Array.map (fun a -> Path.GetRelativePath(dir, a).Split(Path.DirectorySeparatorChar)[0])
                |> Array.distinct

            Expect.equal
                projectsSeen.Length
                (Directory.GetFiles(experiments, "*.proj").Length + 1)
                $"every project (and the CIFAR-10 study) declared experiments: %A{projectsSeen}"

            for a in args do
                match Waal.Cli.CommandLine.ofCommandLine (File.ReadAllLines a |> List.ofArray) with
                | Ok _ -> ()
                | Error line -> failtest $"{Path.GetRelativePath(dir, a)}: {line}"
        finally
            Directory.Delete(dir, true)
    }

/// The option table seen from every front end (the CLI's text through the same parser the runner uses).
/// A value of an option other than the given one, valid for it.
let private otherValue (o: Waal.Core.OptionDef) (current: string) =
    match o.Kind with
    | Waal.Core.Choice names -> names |> List.find (fun n -> n <> current)
    | Waal.Core.Flag -> if current = "true" then "false" else "true"
    | Waal.Core.Text when o.Name = "dataset" -> "cifar10"
    | Waal.Core.Text when o.Name = "strategy" -> "entropy"
    | Waal.Core.Text when o.Name = "stop-when" -> "labels>=5000,kappa>=0.99/2"
    | Waal.Core.Text when o.Name = "rare-classes" -> if current = "" then "0,4,8" else ""
    | Waal.Core.Text -> current + "-elsewhere"
    | Waal.Core.IntegerOrAll -> if current = "all" then "1234" else "all"
    | Waal.Core.Integer -> string (int64 current + 3L)
    | Waal.Core.Number -> Waal.Core.Options.formatNumber (float current * 0.5 + 0.125)

/// The C# property value for an option's text (enums by their kebab-case name).
let private facadeValue (prop: Reflection.PropertyInfo) (text: string) : obj =
    let t =
        Nullable.GetUnderlyingType prop.PropertyType
        |> Option.ofObj
        |> Option.defaultValue prop.PropertyType

    if t.IsEnum then
        Enum.GetValues t
        |> Seq.cast<obj>
        |> Seq.find (fun v -> Waal.OptionTable.Kebab(string v) = text)
    else
        Convert.ChangeType(text, t, Globalization.CultureInfo.InvariantCulture)

let private cliConfig (args: string list) =
    match Waal.Cli.CommandLine.ofCommandLine args with
    | Ok c -> c
    | Error line -> failtestf "%A: %s" args line

let private options =
    testList
        "options"
        [
            test
                "every option round-trips through CLI text, spec.json, MSBuild metadata and C# options, with one default" {
                let profileDefaults =
                    Waal.Data.Datasets.defaults "fashion-mnist" "waal"
                    |> Result.defaultWith failwith

                let d = cliConfig [ "--dataset"; "fashion-mnist" ]
                Expect.equal d profileDefaults "CLI defaults = the table's"

                let fromCSharp (o: Waal.LearnerOptions) =
                    let c = Waal.OptionTable.ToConfiguration o

                    { c with
                        Settings =
                            { c.Settings with
                                DataDir = d.Settings.DataDir
                            }
                    }

                Expect.equal (fromCSharp (Waal.LearnerOptions())) d "C# defaults = the table's"

                for o in Waal.Core.Options.all do
                    let v = otherValue o (o.Get d)

                    let args =
                        match o.Name with
                        | "dataset" -> [ "--dataset"; v; "--data-dir"; d.Settings.DataDir ]
                        | _ -> [ "--dataset"; "fashion-mnist"; $"--{o.Name}"; v ]

                    // CLI text.
                    let c = cliConfig args
                    Expect.equal (o.Get c) v $"{o.Name}: CLI sets it"

                    let others =
                        Waal.Data.Datasets.defaultsFor c.Spec.Dataset c.Spec.Strategy c.Spec.Preset
                        |> Result.defaultWith failwith

                    for other in Waal.Core.Options.all do
                        if other.Name <> o.Name && other.Name <> "data-dir" then
                            Expect.equal (other.Get c) (other.Get others) $"{o.Name}: {other.Name} keeps its default"

                    // spec.json.
                    Expect.equal
                        (Waal.Data.Datasets.readSpec (Waal.Core.SpecJson.toJson [] c))
                        (Ok c)
                        $"{o.Name}: spec.json round trip"

                    // MSBuild metadata (PascalCase names) through the task's map to the runner's command line.
                    let metadata = Collections.Generic.Dictionary<string, string>()

                    for i in 0..2 .. args.Length - 1 do
                        let name = args[i].Substring 2

                        metadata[Waal.Build.Tasks.ExperimentOptions.MetadataName(
                                     Waal.Core.Options.tryFind name |> Option.get
                                 )] <- args[i + 1]

                    let item = Microsoft.Build.Utilities.TaskItem("x", metadata)
                    Expect.isEmpty (Waal.Build.Tasks.ExperimentOptions.Unknown item) $"{o.Name}: metadata known"
                    let tokens = Waal.Build.Tasks.ExperimentOptions.Of item |> List.ofSeq
                    Expect.equal (cliConfig tokens) c $"{o.Name}: MSBuild metadata give the same configuration"

                    // C# options, where the facade exposes the option.
                    match Waal.OptionTable.ExposedProperty o |> Option.ofObj with
                    | None -> ()
                    | Some name ->
                        let prop = typeof<Waal.LearnerOptions>.GetProperty name
                        let opts = Waal.LearnerOptions()
                        prop.SetValue(opts, facadeValue prop v)
                        let fromC = fromCSharp opts
                        Expect.equal fromC.Spec c.Spec $"{o.Name}: C# LearnerOptions.{name} gives the same spec"
                        Expect.equal fromC.Settings c.Settings $"{o.Name}: and the same settings"
            }

            test "every LearnerOptions doc comment states the table's default (fashion-mnist, waal, recommended)" {
                // The facade's XML documentation, built beside Waal.dll: what C# users read in their editor.
                let xml =
                    IO.Path.ChangeExtension(typeof<Waal.LearnerOptions>.Assembly.Location, ".xml")

                let doc = Xml.Linq.XDocument.Load xml

                let summaries =
                    doc.Descendants(Xml.Linq.XName.Get "member")
                    |> Seq.map (fun m ->
                        m.Attribute(Xml.Linq.XName.Get "name").Value,
                        Text.RegularExpressions.Regex.Replace(
                            m.Element(Xml.Linq.XName.Get "summary").Value,
                            @"\s+",
                            " "
                        ))
                    |> Map.ofSeq

                let d =
                    Waal.Data.Datasets.defaults "fashion-mnist" "waal"
                    |> Result.defaultWith failwith

                let number (t: string) =
                    match
                        Double.TryParse(t, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture)
                    with
                    | true, v -> Some v
                    | _ -> None

                for o in Waal.Core.Options.all do
                    match Waal.OptionTable.ExposedProperty o |> Option.ofObj with
                    | None -> ()
                    | Some name ->
                        let summary = summaries[$"P:Waal.LearnerOptions.{name}"]
                        let stated = Text.RegularExpressions.Regex.Match(summary, @"\bdefault ([^\s;:,)]+)")
                        Expect.isTrue stated.Success $"LearnerOptions.{name}: '{summary}' states its default"
                        let said = stated.Groups[1].Value
                        let actual = o.Get d

                        let same =
                            said = actual
                            || (said = "none" && actual = "")
                            || (number said).IsSome && number said = number actual

                        Expect.isTrue same $"LearnerOptions.{name}: the summary says default {said}, the table {actual}"
            }

            test "one rule names every option on every door: spec.json camelCase, MSBuild and C# PascalCase" {
                let exposed =
                    Waal.Core.Options.all
                    |> List.choose (fun o -> Waal.OptionTable.ExposedProperty o |> Option.ofObj)

                let properties =
                    typeof<Waal.LearnerOptions>.GetProperties() |> Array.map _.Name |> List.ofArray

                Expect.equal (List.sort exposed) (List.sort properties) "each property has its option, and only one"

                let words (name: string) = name.Split '-' |> List.ofArray

                let capital (w: string) =
                    string (Char.ToUpperInvariant w[0]) + w[1..]

                for o in Waal.Core.Options.all do
                    let pascal = words o.Name |> List.map capital |> String.concat ""

                    let camel =
                        words o.Name
                        |> List.mapi (fun i w -> if i = 0 then w else capital w)
                        |> String.concat ""

                    Expect.equal (Waal.Build.Tasks.ExperimentOptions.MetadataName o) pascal $"{o.Name}: MSBuild's name"
                    Expect.equal o.JsonName camel $"{o.Name}: spec.json's key"

                    match Waal.OptionTable.ExposedProperty o |> Option.ofObj with
                    | Some p -> Expect.equal p pascal $"{o.Name}: the C# property"
                    | None -> ()
            }

            test "an option's earlier name still works on every door, and an old project's arguments are unchanged" {
                let renamed = Waal.Core.Options.all |> List.filter (fun o -> not o.Formerly.IsEmpty)

                Expect.equal
                    (renamed |> List.map (fun o -> o.Name, o.Formerly))
                    [
                        "batch-size", [ "batch" ]
                        "learning-rate", [ "lr" ]
                        "critic-learning-rate", [ "critic-lr" ]
                    ]
                    "the abbreviations became words"

                let d = cliConfig [ "--dataset"; "fashion-mnist" ]

                for o in renamed do
                    let v = otherValue o (o.Get d)
                    let now = cliConfig [ "--dataset"; "fashion-mnist"; $"--{o.Name}"; v ]
                    Expect.equal (o.Get now) v $"{o.Name}: set by its name"

                    for old in o.Formerly do
                        Expect.equal
                            (cliConfig [ "--dataset"; "fashion-mnist"; $"--{old}"; v ])
                            now
                            $"--{old}: the same configuration"

                        // A spec.json written before the rename names the field the old way.
                        let json = Waal.Core.SpecJson.toJson [] now
                        let key = Waal.Core.OptionDef.CamelCase old
                        Expect.stringContains json $"\"{o.JsonName}\"" $"{o.Name}: written by its name"
                        let older = json.Replace($"\"{o.JsonName}\"", $"\"{key}\"")
                        Expect.equal (Waal.Data.Datasets.readSpec older) (Ok now) $"spec.json's {key}: read the same"

                        // MSBuild metadata by the old name are known, and pass on as spelled.
                        let metadata = Collections.Generic.Dictionary<string, string>()
                        metadata[Waal.Core.OptionDef.PascalCase old] <- v
                        let item = Microsoft.Build.Utilities.TaskItem("x", metadata)
                        Expect.isEmpty (Waal.Build.Tasks.ExperimentOptions.Unknown item) $"{old}: a known metadata"

                        Expect.equal
                            (Waal.Build.Tasks.ExperimentOptions.Of item |> List.ofSeq)
                            [ $"--{old}"; v ]
                            $"{old}: experiment.args as before the rename (nothing reruns)"
            }

            test "the C# choices are exactly the table's choices and the registries' names" {
                for o in Waal.Core.Options.all do
                    match o.Kind, Waal.OptionTable.ExposedProperty o |> Option.ofObj with
                    | Waal.Core.Choice names, Some name ->
                        let prop = typeof<Waal.LearnerOptions>.GetProperty name
                        let t = Nullable.GetUnderlyingType prop.PropertyType

                        Expect.equal
                            (Enum.GetNames t |> Array.map Waal.OptionTable.Kebab |> List.ofArray)
                            names
                            $"{name}: one member per choice, in order"
                    | _ -> ()

                let kebabs (t: Type) =
                    Enum.GetNames t |> Array.map Waal.OptionTable.Kebab |> List.ofArray

                Expect.equal (kebabs typeof<Waal.Strategy>) Waal.Strategies.Registry.names "strategies"
                Expect.equal (kebabs typeof<Waal.DatasetKind>) Waal.Data.Datasets.names "datasets"

                for s in Waal.Strategies.Registry.names do
                    let opts =
                        Waal.LearnerOptions(
                            Strategy =
                                Nullable(
                                    unbox<Waal.Strategy>(
                                        facadeValue (typeof<Waal.LearnerOptions>.GetProperty "Strategy") s
                                    )
                                )
                        )

                    let c = cliConfig [ "--dataset"; "fashion-mnist"; "--strategy"; s ]
                    Expect.equal (Waal.OptionTable.ToConfiguration opts).Spec c.Spec $"{s}: C# and CLI defaults agree"
            }

        ]

let all =
    testList "targets and options" [ testSequenced targets; projects; options ]
