/// docs/cli.md, generated: every command's usage from the grammar (Args) and every experiment option from the
/// option table (Waal.Core.Options), so the manual says what the command line does. The Cli suite fails when the
/// committed file differs from this text.
module Waal.Cli.Reference

open System
open System.Text
open Argu
open Waal.Cli.Args
open Waal.Core
open Waal.Data

let private cell (s: string) =
    s.Replace("|", "\\|").Replace("\n", " ").Trim()

let private usageOf (parser: ArgumentParser) =
    // Argu's usage of a subcommand at a fixed width (not the terminal's), without the trailing blank lines.
    parser.PrintUsage(usageStringCharacterWidth = 100).TrimEnd()

/// The manual page as markdown (LF line ends); `csharp` gives the C# facade's property of an option it exposes
/// (the facade declares its names: Core knows none).
let markdown (csharp: OptionDef -> string option) =
    let sb = StringBuilder()
    let line (s: string) = sb.Append(s).Append('\n') |> ignore
    let top = ArgumentParser.Create<WaalArgs>(programName = "waal")

    line "# The `waal` command: every command and option"
    line ""
    line "What each `waal` command takes, and every experiment option with its accepted values and defaults, as"
    line "spec.json, MSBuild metadata and C# name it. Generated from the command grammar (`src/Waal.Cli/Args.fs`)"
    line "and the option table (`src/Waal.Core/Options.fs`); the Cli suite fails when this file differs from what"
    line "they generate (`WAAL_UPDATE_DOCS=1` on that suite rewrites it). How to use them: `docs/usage.md`."
    line ""
    line "## Commands"
    line ""

    let commands: (string * ArgumentParser) list =
        [
            "waal run", top.GetSubCommandParser <@ Run @>
            "waal resume", top.GetSubCommandParser <@ Resume @>
            "waal report", top.GetSubCommandParser <@ Report @>
            "waal query", top.GetSubCommandParser <@ Query @>
            "waal query-times", top.GetSubCommandParser <@ Query_Times @>
            "waal data inspect",
            (top.GetSubCommandParser <@ Data @>).GetSubCommandParser <@ Inspect @> :> ArgumentParser
            "waal export", top.GetSubCommandParser <@ Export @>
            "waal predict", top.GetSubCommandParser <@ Predict @>
            "waal label", top.GetSubCommandParser <@ Label @>
            "waal labels", top.GetSubCommandParser <@ Labels @>
        ]

    for name, parser in commands do
        line $"### `{name}`"
        line ""
        line "```"
        usageOf parser |> fun u -> u.Replace("\r\n", "\n") |> line
        line "```"
        line ""

        if name = "waal run" then
            line "and `--dataset NAME[=DIR]` with every experiment option below (`--dataset` is one of them)."
            line ""

    let profile =
        (Datasets.find "fashion-mnist" |> Result.map (fun e -> e.Profile))
        |> Result.defaultWith failwith

    let defaults preset =
        {
            Profile = profile
            Strategy = "waal"
            Preset = preset
        }

    line "## Experiment options"
    line ""
    line "`waal run`, `waal query-times` and `waal label` take them as `--name value`; spec.json records them by"
    line "their camelCase name, an MSBuild `<Experiment>` item by its PascalCase metadata, the C# facade by its"
    line "`LearnerOptions` property. Defaults are for Fashion-MNIST and `waal` (another dataset or strategy can"
    line "change some), under the recommended preset and under `--preset reference`. Options marked *setting*"
    line "never change a result (they are not part of the spec's identity)."
    line ""
    line "| option | values | default | reference preset | spec.json | MSBuild | C# | what it does |"
    line "|---|---|---|---|---|---|---|---|"

    for o in Options.all do
        let shown (d: string) = if d = "" then "" else $"`{cell d}`"
        let recommended = o.Default(defaults RecommendedPreset)
        let reference = o.Default(defaults ReferencePreset)

        let what =
            match o.Scope with
            | Setting -> $"*setting*: {o.Help}"
            | Identity -> o.Help

        let facade = csharp o |> Option.map (fun f -> $"`{f}`") |> Option.defaultValue ""

        let formerly =
            match o.Formerly with
            | [] -> ""
            | names ->
                let spelled = names |> List.map (fun n -> $"`--{n}`") |> String.concat ", "
                $" (formerly {spelled}, still accepted)"

        line
            $"| `--{o.Name}` | {cell o.Expected} | {shown recommended} | {shown reference} | `{o.JsonName}` | `{OptionDef.PascalCase o.Name}` | {facade} | {cell what}{formerly} |"

    sb.ToString()
