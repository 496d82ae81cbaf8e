/// Reports over finished (or partial) runs: report.md (accuracy per labelled count per run; mean +- std over
/// runs whose specs differ only in the seed; area under the budget curve; seconds per round) and
/// learning_curve.png (accuracy against labels, one line per group, a +- std band).
module Waal.Experiments.Report

open System
open System.IO
open Waal.Core
open Waal.Experiments.ReportRuns
open Waal.Experiments.ReportComparisons
open Waal.Experiments.ReportMarkdown

/// Why a report could not be written.
type ReportError =
    /// A run folder that cannot be read as one (its file and what is wrong): EXP005, as for any command given a
    /// folder that is not an experiment.
    | [<Code "EXP005">] RunUnreadable of string
    /// OUT cannot hold the report (a file, not writable): EXP008, as for any output that cannot be written.
    | [<Code "EXP008">] WriteFailed of path: string * detail: string

/// The codes of report errors.
module ReportError =
    let private codeOf = ErrorCodes.reader<ReportError>()

    /// The stable code.
    let code (e: ReportError) = (codeOf e).Value

/// Reads the run folders and writes OUT/report.md and OUT/learning_curve.png over the chosen accuracy; returns
/// their paths. Under the validation metric every run must have a validation split.
let writeWith
    (metric: Metric)
    (families: Comparison list list)
    (folders: string list)
    (out: string)
    : Result<string * string, ReportError> =
    let read =
        folders
        |> List.map readRun
        |> List.fold
            (fun acc r ->
                match acc, r with
                | Ok runs, Ok run -> Ok(run :: runs)
                | Error e, _
                | _, Error e -> Error e)
            (Ok [])
        |> Result.map List.rev
        |> Result.bind (fun runs ->
            match metric with
            | TestMetric -> Ok runs
            | ValidationMetric ->
                match
                    runs
                    |> List.tryFind (fun r -> r.Rows |> List.exists (fun row -> Double.IsNaN row.ValidationAccuracy))
                with
                | Some r ->
                    Error
                        $"""{Path.Combine(r.Folder, "rounds.csv")}: no validation accuracy (the run had no --validation split)"""
                | None ->
                    Ok(
                        runs
                        |> List.map (fun r ->
                            { r with
                                Rows =
                                    r.Rows
                                    |> List.map (fun row ->
                                        { row with
                                            TestAccuracy = row.ValidationAccuracy
                                        })
                            })
                    ))

    read
    |> Result.mapError RunUnreadable
    |> Result.bind (fun runs ->
        match runs |> List.tryFind (fun r -> r.Rows.IsEmpty) with
        | Some r -> Error(RunUnreadable $"""{Path.Combine(r.Folder, "rounds.csv")}: no completed round to report""")
        | None when File.Exists out ->
            Error(WriteFailed(out, "is a file; expected a folder for report.md and learning_curve.png"))
        | None ->
            let groups = group runs
            let md = Path.Combine(out, "report.md")
            let png = Path.Combine(out, "learning_curve.png")

            try
                Directory.CreateDirectory out |> ignore
                Waal.Data.AtomicFile.writeText md (markdown metric groups + comparisons metric runs families)
                plot metric groups png
                Ok(md, png)
            with
            | :? IOException as e -> Error(WriteFailed(out, e.Message))
            | :? UnauthorizedAccessException as e -> Error(WriteFailed(out, e.Message)))

/// report.md and learning_curve.png for run folders (no comparison families).
let write (metric: Metric) (folders: string list) (out: string) = writeWith metric [] folders out
