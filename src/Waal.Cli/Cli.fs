/// The `waal` command line: parsing, dispatch, and exit codes (0 success, 2 bad input or usage).
module Waal.Cli.Cli

open System.IO
open Argu
open Waal.Cli.Args
open Waal.Data

let private parser = ArgumentParser.Create<WaalArgs>(programName = "waal")

let private format =
    function
    | FormatArg.Idx -> Load.Idx
    | FormatArg.Cifar10 -> Load.Cifar10
    | FormatArg.Svhn -> Load.Svhn

let private version () =
    let assembly = typeof<WaalArgs>.Assembly
    string (assembly.GetName().Version)

/// Runs the command line with the given writers; returns the process exit code.
let run (out: TextWriter) (err: TextWriter) (argv: string[]) : int =
    try
        let args = parser.ParseCommandLine(argv, raiseOnUsage = true)

        match args.TryGetSubCommand() with
        | _ when args.Contains Version ->
            out.WriteLine $"waal {version ()}"
            0
        | None
        | Some Version ->
            err.WriteLine(CliError.usage "command line" "no command given (see 'waal --help')")
            2
        | Some(Data data) ->
            match data.TryGetSubCommand() with
            | None ->
                err.WriteLine(
                    CliError.usage "command line" "'waal data' needs a command, e.g. inspect (see 'waal data --help')"
                )

                2
            | Some(Inspect inspect) ->
                Inspect.run
                    out
                    err
                    (inspect.TryGetResult InspectArgs.Format |> Option.map format)
                    (inspect.GetResult InspectArgs.Path)
                    (inspect.TryGetResult InspectArgs.Labels)
        | Some(Run args) -> Experiment.run out err args
        | Some(Resume args) -> Experiment.resume out err args
        | Some(Report args) -> Experiment.report out err args
        | Some(Query args) -> Query.run out err args
        | Some(Query_Times args) -> Experiment.queryTimes out err args
        | Some(Export args) -> Experiment.export out err args
        | Some(Predict args) -> Experiment.predict out err args
        | Some(Label args) -> Labelling.label out err args
        | Some(Labels args) -> Labelling.labels out err args
    with
    | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText ->
        out.WriteLine e.Message

        if argv.Length > 0 && (argv[0] = "run" || argv[0] = "query-times") then
            if argv[0] = "query-times" then
                out.WriteLine(
                    $"One WAAL model trained on the spec's initial labels; every strategy queries --query items with it. The pool is the first {Waal.Experiments.QueryTimes.tablePool} training images unless --pool is given."
                )

            out.WriteLine()
            Experiment.optionsUsage () |> List.iter out.WriteLine

        0
    | :? ArguParseException as e ->
        // One line: Argu's first line names the problem (the usage that follows is for --help).
        let problem = (e.Message.Split('\n')[0]).Trim()

        let problem =
            if problem.StartsWith "ERROR: " then
                problem.Substring 7
            else
                problem

        let command =
            if argv.Length > 0 && argv[0] = "data" then
                "waal data inspect"
            else
                "waal"

        err.WriteLine(CliError.usage "command line" $"{problem} (see '{command} --help')")
        2
    | :? System.OperationCanceledException ->
        err.WriteLine(CliError.line Cancelled)
        1
    | e ->
        // Whatever escapes the typed errors is still one line, never a stack trace.
        let where = if argv.Length > 0 then $"waal {argv[0]}" else "waal"
        let message = (e.Message.Split('\n')[0]).Trim()
        err.WriteLine(CliError.line (Unexpected(where, e.GetType().Name, message)))
        1
