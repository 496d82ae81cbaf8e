/// Runs an Expecto suite and ends with the plain line CI totals: `N passed, N failed, N skipped`.
module Waal.Testing.Summary

open Expecto
open Expecto.Impl

/// The closing line for one suite; errored tests count as failed.
let line (summary: TestRunSummary) =
    sprintf
        "%d passed, %d failed, %d skipped"
        summary.passed.Length
        (summary.failed.Length + summary.errored.Length)
        summary.ignored.Length

/// Runs the tests with the command-line arguments and prints the closing line last, on a line of its own
/// (Expecto leaves a colour reset without a newline before it).
let run (argv: string[]) (tests: Test) =
    let handler = SummaryHandler(fun summary -> printfn "\n%s" (line summary))
    runTestsWithCLIArgs [ CLIArguments.Append_Summary_Handler handler ] argv tests
