/// The CLI run in this process, as the suites' tests of it call it.
module Waal.Cli.Tests.InProcess

open System
open System.IO

/// Runs `waal ARGS` in this process; returns (exit code, stdout lines, stderr lines).
let waal (args: string list) =
    use out = new StringWriter()
    use err = new StringWriter()
    let code = Waal.Cli.Cli.run out err (Array.ofList args: string[])

    let lines (w: StringWriter) =
        w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
        |> Array.map (fun l -> l.TrimEnd '\r')

    code, lines out, lines err
