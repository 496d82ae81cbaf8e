/// `waal`'s command-line syntax over the option table: `--name value` pairs (a flag may stand alone) and
/// `--dataset NAME=DIR`, turned into a configuration by `Options.build`, as every front end's values are.
module Waal.Cli.CommandLine

open System
open Waal.Core
open Waal.Data

/// The options of a command line, in order: `--name value` pairs (a flag may stand alone, meaning true).
let private pairs (tokens: string list) : Result<(OptionDef * string) list, string> =
    let rec go acc tokens =
        match tokens with
        | [] -> Ok(List.rev acc)
        | (token: string) :: rest when token.StartsWith "--" ->
            let name = token.Substring 2

            let name = if name = "test" then "test-dir" else name

            match Options.tryFind name with
            | None ->
                let near = Options.nearest (Options.all |> List.map (fun o -> o.Name)) name

                Error(
                    CliError.usage
                        "command line"
                        $"unknown option '--{name}'; did you mean '--{near}'? (see 'waal run --help')"
                )
            | Some o when o.Kind = Flag ->
                match rest with
                | v :: more when v = "true" || v = "false" -> go ((o, v) :: acc) more
                | _ -> go ((o, "true") :: acc) rest
            | Some o ->
                match rest with
                | v :: more -> go ((o, v) :: acc) more
                | [] -> Error(CliError.usage "command line" $"--{o.Name} needs a value: {o.Expected}")
        | token :: _ -> Error(CliError.usage "command line" $"unexpected '{token}'; expected --OPTION VALUE")

    go [] tokens

/// The command line's fallbacks: a run without --strategy is WAAL's, without --preset the recommended preset's;
/// --dataset must be given.
let fallbacks = [ "strategy", "waal"; "preset", "recommended" ]

/// The configuration that command-line options describe (`waal run`, MSBuild metadata through it, and with the
/// labelling page's fallbacks the page's): `Options.build` over the options in order, `fallbacks` (name, value)
/// for the options not given. `--dataset NAME=DIR` is short
/// for `--dataset NAME --data-dir DIR`; without a folder, the dataset's standard one (fashion-mnist:
/// $WAAL_FASHION_MNIST or Debian's). The first error is the line: `error EXP001: --OPTION: message`.
let ofCommandLineFor (fallbacks: (string * string) list) (tokens: string list) : Result<Configuration, string> =
    pairs tokens
    |> Result.bind (fun given ->
        let expanded =
            given
            |> List.collect (fun (o, v) ->
                match o.Name, v.IndexOf '=' with
                | "dataset", i when i >= 0 ->
                    [ o, v[.. i - 1]; Options.tryFind "data-dir" |> Option.get, v[i + 1 ..] ]
                | "test-dir", _ when v.StartsWith "folder=" -> [ o, v.Substring "folder=".Length ]
                | _ -> [ o, v ])

        Options.build Datasets.defaultsFor (Options.fallbacks fallbacks) expanded
        |> Result.mapError (fun errors ->
            let e = List.head errors

            match e.Field, e.Message with
            | "dataset", m when m.StartsWith "missing" ->
                $"""error EXP001: --dataset: missing; expected one of {String.Join(", ", Datasets.names)}"""
            | field, m -> $"error EXP001: --{field}: {m}")
        |> Result.bind (fun c ->
            match Datasets.find c.Spec.Dataset with
            | Ok e when c.Settings.DataDir = "" ->
                Error
                    $"error EXP001: --dataset: {c.Spec.Dataset} needs its folder: --dataset {c.Spec.Dataset}=DIR, DIR holding {e.Files}"
            | _ -> Ok c))

/// The configuration that `waal run`'s options describe (see `ofCommandLineFor`).
let ofCommandLine (tokens: string list) = ofCommandLineFor fallbacks tokens

/// Run settings given to a command that runs no experiment (`waal predict --threads 2 --score-batch 100`): each
/// value is read through the option table, as every option of every command is, so the same ranges hold.
let settingsOf (given: (string * string) list) : Result<RunSettings, string> =
    Datasets.defaultsFor "fashion-mnist" "waal" RecommendedPreset
    |> Result.mapError (fun m -> $"error EXP001: {m}")
    |> Result.bind (fun defaults ->
        given
        |> List.fold
            (fun acc (name, value) ->
                acc
                |> Result.bind (fun c ->
                    match Options.tryFind name with
                    | Some o when o.Scope = Setting ->
                        o.Set value c |> Result.mapError (fun m -> $"error EXP001: --{name}: {m}")
                    | _ -> Error(CliError.usage "command line" $"--{name} is not a run setting of the option table")))
            (Ok defaults))
    |> Result.map (fun c -> c.Settings)
