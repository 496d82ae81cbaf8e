namespace Waal.Cli

open Waal.Core

/// What the `waal` command itself refuses or meets (the layers below have their own: EXP, DATA, LABEL): one
/// case per code, the code beside it.
type CliError =
    /// The command line: a command, an option or a value the command does not take (`where` names it).
    | [<Code "CLI001">] Usage of where: string * detail: string
    /// Something escaped the typed errors; still one line, never a stack trace.
    | [<Code "CLI002">] Unexpected of where: string * kind: string * message: string
    /// The command was cancelled (Ctrl-C).
    | [<Code "CLI003">] Cancelled
    /// An output is, or lies in, one of the command's inputs (`what` it is).
    | [<Code "CLI004">] OutputInInput of option: string * output: string * input: string * what: string

module CliError =
    let private codeOf = ErrorCodes.reader<CliError>()

    /// The error's code.
    let code (e: CliError) = (codeOf e).Value

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
