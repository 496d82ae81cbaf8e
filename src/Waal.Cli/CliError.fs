namespace Waal.Cli

/// What the `waal` command itself refuses or meets (the layers below have their own: EXP, DATA, LABEL): one
/// case per code, the code beside it.
type CliError =
    /// CLI001: the command line: a command, an option or a value the command does not take (`where` names it).
    | Usage of where: string * detail: string
    /// CLI002: something escaped the typed errors; still one line, never a stack trace.
    | Unexpected of where: string * kind: string * message: string
    /// CLI003: the command was cancelled (Ctrl-C).
    | Cancelled
    /// CLI004: an output is, or lies in, one of the command's inputs (`what` it is).
    | OutputInInput of option: string * output: string * input: string * what: string

module CliError =
    /// The error's code.
    let code (e: CliError) =
        match e with
        | Usage _ -> "CLI001"
        | Unexpected _ -> "CLI002"
        | Cancelled -> "CLI003"
        | OutputInInput _ -> "CLI004"

    /// The error's one line: `error CODE: WHERE: WHAT`.
    let line (e: CliError) =
        match e with
        | Usage(where, detail) -> $"error {code e}: {where}: {detail}"
        | Unexpected(where, kind, message) -> $"error {code e}: {where}: {kind}: {message}"
        | Cancelled -> $"error {code e}: waal: cancelled"
        | OutputInInput(option, output, input, what) ->
            $"error {code e}: {option}: {output}: is or lies in {input} ({what}), which this command reads; write it elsewhere"

    /// A CLI001 line.
    let usage (where: string) (detail: string) = line (Usage(where, detail))
