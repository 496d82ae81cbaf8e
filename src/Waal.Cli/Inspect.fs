/// `waal data inspect`: load, validate, summarise.
module Waal.Cli.Inspect

open System.IO
open Waal.Data

/// The summary: `images=N shape=CxHxW classes=K`, then one `class K: N` line per class.
let summary (data: Dataset) =
    [
        yield $"images={data.Count} shape={data.Channels}x{data.Height}x{data.Width} classes={data.Classes}"
        for c, n in Array.indexed (Dataset.classCounts data) -> $"class {c}: {n}"
    ]

/// Loads `path` (format given or guessed) and writes the summary; returns the exit code (0, or 2 on bad data).
let run (out: TextWriter) (err: TextWriter) (format: Load.Format option) (path: string) (labels: string option) =
    match Load.inspect format path labels with
    | Ok data ->
        summary data |> List.iter out.WriteLine
        0
    | Error e ->
        err.WriteLine(DataError.line e)
        2
