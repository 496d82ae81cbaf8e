/// The runs a report is over: each run folder read back (spec.json, rounds.csv, progress.json's iterations and
/// stop, diagnostics.csv), runs grouped by everything but the seed, the accuracy a report is over, the
/// comparisons `waal report --compare` names, and the small readings of a run the report's parts share.
module Waal.Experiments.ReportRuns

open System
open System.Globalization
open System.IO
open Waal.Core
open Waal.Data

/// One run read back from its folder.
type Run =
    {
        Folder: string
        Spec: ExperimentSpec
        Rows: RunCsv.RoundRow list
        /// Training iterations per round, from progress.json (empty if it is gone).
        Iterations: int64 list
        /// The stopping rule that ended the run early, with the round and why (from progress.json).
        Stopped: (int * string) option
        /// diagnostics.csv's numeric columns per queried round (round -> name -> value; empty without the file).
        Diagnostics: Map<int, Map<string, float>>
        /// The machine spec.json names (empty for runs written before it was recorded).
        Machine: string
        /// libtorch's threads the run had (0: libtorch's default).
        Threads: int
    }

/// Runs whose specs differ only in the seed (and in fields that do not change what is computed).
type Group =
    {
        Label: string
        Spec: ExperimentSpec
        Runs: Run list
    }

/// The accuracy a report is over: the test split, or the validation split (`--validation`: the training images
/// after the pool), on which settings are chosen so that the test set is touched only for final tables.
type Metric =
    | TestMetric
    | ValidationMetric

    member m.Words =
        match m with
        | TestMetric -> "test accuracy"
        | ValidationMetric -> "validation accuracy"

/// One comparison of a family (`waal report --compare`): the runs named `A-seedN` against the runs named
/// `B-seedN`, paired by N, tested two-sided or one-sided against a margin.
type Comparison =
    {
        A: string
        B: string
        Sides: Inference.Sides
    }

    /// As written: "A:B" (two-sided), "A>B" (A ahead), "A>B@-0.3" (A at most 0.3 points behind, or ahead).
    member c.Text =
        match c.Sides with
        | Inference.TwoSided -> $"{c.A}:{c.B}"
        | Inference.Above 0.0 -> $"{c.A}>{c.B}"
        | Inference.Above m -> $"""{c.A}>{c.B}@{m.ToString("R", CultureInfo.InvariantCulture)}"""

/// Reads one comparison: "A:B", "A>B" or "A>B@MARGIN" (points), or says what was expected.
let parseComparison (text: string) : Result<Comparison, string> =
    let bad () =
        Error
            $"expected A:B (two-sided), A>B (A ahead) or A>B@MARGIN (A ahead of B + MARGIN points), each a run-name prefix before -seedN, found '{text}'"

    let name (x: string) =
        let x = x.Trim()

        if x = "" || x.Contains ' ' || x.Contains '@' then
            None
        else
            Some x

    match text.Split(':'), text.Split('>') with
    | [| a; b |], [| _ |] ->
        match name a, name b with
        | Some a, Some b ->
            Ok
                {
                    A = a
                    B = b
                    Sides = Inference.TwoSided
                }
        | _ -> bad ()
    | [| _ |], [| a; rest |] ->
        let b, margin =
            match rest.Split('@') with
            | [| b |] -> b, Some 0.0
            | [| b; m |] ->
                match Double.TryParse(m.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture) with
                | true, v when Double.IsFinite v -> b, Some v
                | _ -> b, None
            | _ -> rest, None

        match name a, name b, margin with
        | Some a, Some b, Some m ->
            Ok
                {
                    A = a
                    B = b
                    Sides = Inference.Above m
                }
        | _ -> bad ()
    | _ -> bad ()

/// diagnostics.csv's numeric cells by round and column name (a missing or unreadable file gives none: the
/// diagnostics are an addition to a report, never a reason to refuse one).
let private diagnosticsOf (path: string) : Map<int, Map<string, float>> =
    match Files.readLines "diagnostics.csv" Files.Limits.documentBytes path with
    | Error _ -> Map.empty
    | Ok lines when lines.Length < 2 -> Map.empty
    | Ok lines ->
        let header = lines[0].Split ','

        [
            for line in lines[1..] do
                let cells = line.Split ','

                match Int32.TryParse cells[0] with
                | true, round when cells.Length = header.Length ->
                    let values =
                        [
                            for name, cell in Array.zip header cells do
                                match Double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture) with
                                | true, v -> name, v
                                | _ -> ()
                        ]
                        |> Map.ofList

                    round, values
                | _ -> ()
        ]
        |> Map.ofList

/// Reads a run folder (spec.json and rounds.csv); errors name the file.
let readRun (folder: string) : Result<Run, string> =
    let layout = { RunFolder.Layout.Folder = folder }

    if not (File.Exists layout.Spec) then
        Error $"{layout.Spec}: missing (not an experiment folder)"
    elif not (File.Exists layout.Rounds) then
        Error $"{layout.Rounds}: missing"
    else
        match RunFolder.readSpec layout with
        | Error detail -> Error $"{layout.Spec}: {detail}"
        | Ok config ->
            let spec = config.Spec

            RunCsv.readRoundsCsv layout.Rounds
            |> Result.map (fun rows ->
                let progress = RunFolder.readState layout config |> Result.toOption

                // From progress.json, or rounds.csv's column when only the per-round rows were kept (the
                // findings' committed data).
                let iterations =
                    match progress with
                    | Some p -> p.Records |> List.map (fun r -> r.TrainIterations)
                    | None when rows |> List.forall (fun r -> r.TrainIterations.IsSome) ->
                        rows |> List.choose (fun r -> r.TrainIterations)
                    | None -> []

                let stopped =
                    progress
                    |> Option.bind (fun p ->
                        p.Records
                        |> List.tryPick (fun r -> r.Stopped |> Option.map (fun why -> r.Round, why)))

                {
                    Folder = folder
                    Spec = spec
                    Rows = rows
                    Iterations = iterations
                    Stopped = stopped
                    Diagnostics = diagnosticsOf layout.Diagnostics
                    Machine =
                        RunFolder.readVersions layout
                        |> List.tryFind (fun (k, _) -> k = "machine")
                        |> Option.map snd
                        |> Option.defaultValue ""
                    Threads = config.Settings.Threads
                })

/// Groups runs by their spec less the seed; labels are strategy names, numbered when a name repeats.
let group (runs: Run list) : Group list =
    let groups =
        runs
        |> List.groupBy (fun (r: Run) -> Options.withoutSeed r.Spec)
        |> List.map (fun (_, rs: Run list) -> (List.head rs).Spec, List.sortBy (fun (r: Run) -> r.Spec.Seed) rs)

    // Whether an option changes what a spec computes given its other settings: the critic's rate only under
    // Adam, its training settings only when it trains, the query's weight and scale only when the critic term
    // is in the query. An option that does not apply reads as empty and is left out of the label.
    let applies (name: string) (s: ExperimentSpec) =
        let m = s.Method

        match name with
        | "critic-learning-rate" -> m.CriticTrained && m.CriticOptimiser = CriticAdam
        | "critic-optimiser"
        | "critic-steps" -> m.CriticTrained
        | "selection"
        | "score-scale" -> m.Score = Combined
        | "waal-uncertainty" -> m.Score <> DiversityOnly
        | _ -> true

    // The options that tell groups of one strategy apart, as they read on the command line (from the option
    // table; epochs and the budget read as one).
    let settings (s: ExperimentSpec) =
        ("budget",
         (match s.Train.Budget with
          | EpochsOverLabelled -> $"{s.Train.Epochs} epochs"
          | MatchWaal -> $"match-waal x{s.Train.Epochs}"
          | EpochsOverFloor -> $"{s.Train.Epochs} epochs over max(L, {s.Train.Floor})"))
        :: [
            for o in Options.all do
                if
                    o.Scope = Identity
                    && not (
                        List.contains
                            o.Name
                            [
                                "dataset"
                                "strategy"
                                "seed"
                                "rounds"
                                "epochs"
                                "train-budget"
                                "floor"
                                "preset"
                            ]
                    )
                then
                    o.Name, (if applies o.Name s then Options.specValue o.Name s else "")
        ]

    groups
    |> List.map (fun (spec, rs) ->
        let siblings =
            groups |> List.filter (fun (s, _) -> s.Strategy = spec.Strategy) |> List.map fst

        let differing =
            settings spec
            |> List.filter (fun (name, value) ->
                value <> ""
                && siblings
                   |> List.exists (fun s -> settings s |> List.find (fun (n, _) -> n = name) |> snd <> value))

        let label =
            match differing with
            | [] -> spec.Strategy
            | [ "budget", value ] -> $"{spec.Strategy} ({value})"
            | diffs ->
                let text = diffs |> List.map (fun (n, v) -> $"{n} {v}") |> String.concat ", "
                $"{spec.Strategy} ({text})"

        {
            Label = label
            Spec = spec
            Runs = rs
        })

let internal pct (x: float) =
    (100.0 * x).ToString("F2", CultureInfo.InvariantCulture)

let internal signedPoints (x: float) =
    (100.0 * x).ToString("+0.00;-0.00", CultureInfo.InvariantCulture)

let internal num (x: float) =
    x.ToString("F1", CultureInfo.InvariantCulture)

/// The labelled counts of a group, in order, where every run of it has a row.
let internal budget (g: Group) =
    g.Runs
    |> List.map (fun r -> r.Rows |> List.map (fun row -> row.Labelled) |> Set.ofList)
    |> List.reduce Set.intersect
    |> Set.toList

let internal accuracyAt (r: Run) (labels: int) =
    r.Rows
    |> List.find (fun row -> row.Labelled = labels)
    |> fun row -> row.TestAccuracy

let internal aubc (r: Run) =
    Metrics.areaUnderBudgetCurve (r.Rows |> List.map (fun row -> row.Labelled, row.TestAccuracy))
