/// Reports over finished (or partial) runs: report.md (accuracy per labelled count per run; mean +- std over
/// runs whose specs differ only in the seed; area under the budget curve; seconds per round) and
/// learning_curve.png (accuracy against labels, one line per group, a +- std band).
module Waal.Experiments.Report

open System
open System.Globalization
open System.IO
open System.Text
open Waal.Core
open Waal.Data

/// One run read back from its folder.
type Run =
    {
        Folder: string
        Spec: ExperimentSpec
        Rows: RunFolder.RoundRow list
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

            RunFolder.readRoundsCsv layout.Rounds
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
        | "critic-lr" -> m.CriticTrained && m.CriticOptimiser = CriticAdam
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

/// Mean and sample standard deviation (0 for one value).
let internal meanStd (xs: float list) =
    let n = float xs.Length
    let mean = List.average xs

    let std =
        if xs.Length < 2 then
            0.0
        else
            sqrt ((xs |> List.sumBy (fun x -> (x - mean) ** 2.0)) / (n - 1.0))

    mean, std

let private pct (x: float) =
    (100.0 * x).ToString("F2", CultureInfo.InvariantCulture)

let private signedPoints (x: float) =
    (100.0 * x).ToString("+0.00;-0.00", CultureInfo.InvariantCulture)

let private num (x: float) =
    x.ToString("F1", CultureInfo.InvariantCulture)

/// The labelled counts of a group, in order, where every run of it has a row.
let private budget (g: Group) =
    g.Runs
    |> List.map (fun r -> r.Rows |> List.map (fun row -> row.Labelled) |> Set.ofList)
    |> List.reduce Set.intersect
    |> Set.toList

let private accuracyAt (r: Run) (labels: int) =
    r.Rows
    |> List.find (fun row -> row.Labelled = labels)
    |> fun row -> row.TestAccuracy

let private aubc (r: Run) =
    Metrics.areaUnderBudgetCurve (r.Rows |> List.map (fun row -> row.Labelled, row.TestAccuracy))

/// The 97.5% quantile of Student's t with `df` degrees of freedom (a 95% two-sided interval); 1.96 beyond 30.
let internal tQuantile (df: int) =
    let table =
        [|
            12.706
            4.303
            3.182
            2.776
            2.571
            2.447
            2.365
            2.306
            2.262
            2.228
            2.201
            2.179
            2.160
            2.145
            2.131
            2.120
            2.110
            2.101
            2.093
            2.086
            2.080
            2.074
            2.069
            2.064
            2.060
            2.056
            2.052
            2.048
            2.045
            2.042
        |]

    if df >= 1 && df <= table.Length then
        table[df - 1]
    else
        1.96

/// The settings line of a group: what applies to its strategy (WAAL's method only for waal; the batch mode only
/// for strategies that rank by one score).
let internal settingsLine (g: Group) =
    let s = g.Spec
    let m = s.Method
    let pool = s.PoolSize |> Option.map string |> Option.defaultValue "all"
    let v (name: string) = Options.specValue name s
    let preset, budget, schedule = v "preset", v "train-budget", v "schedule"

    let common =
        $"{s.Dataset}, pool {pool}, {s.Initial} initial + {s.Query} per query, {s.Rounds} rounds, preset {preset}, budget {budget} (floor {s.Train.Floor}), {s.Train.Epochs} epochs, batch {s.Train.Batch}, SGD lr {s.Train.LearningRate} momentum {s.Train.Momentum} Nesterov {s.Train.Nesterov} weight decay {s.Train.WeightDecay} schedule {schedule}, augmentation {m.Augment}"

    let batchMode =
        if List.contains s.Strategy [ "waal"; "entropy"; "margin"; "least-confidence" ] then
            let mode = v "batch-mode"
            $"; batch mode {mode}"
        else
            ""

    let waal =
        if s.Strategy = "waal" then
            let uncertainty, scale = v "waal-uncertainty", v "score-scale"
            let output, optimiser = v "critic", v "critic-optimiser"

            let imbalance, sign, adversary, bound =
                v "imbalance", v "gp-sign", v "adversary", v "bound"

            let query =
                match m.Score with
                | UncertaintyOnly -> $"query: {uncertainty} alone (critic off)"
                | DiversityOnly -> "query: the critic alone"
                | Combined -> $"query: {uncertainty} - {m.Selection} x critic on the {scale} scale"

            let rate =
                if m.CriticOptimiser = CriticAdam then
                    $" lr {m.CriticLearningRate}"
                else
                    ""

            let critic =
                if m.CriticTrained then
                    $"critic {output} ({optimiser}{rate}, {m.CriticSteps} step(s) per network step)"
                else
                    $"critic {output}, frozen at its initialisation"

            $"; {Options.describe s}: alpha {m.Alpha}, imbalance {imbalance}, GP sign {sign} weight {m.GpWeight}, adversary {adversary}, {critic}; {query}, bound {bound}"
        else
            ""

    let seeds = String.Join(", ", g.Runs |> List.map (fun r -> r.Spec.Seed))
    $"{common}{batchMode}{waal}; seeds {seeds}."

// The run's name without its seed, and its seed: "ts-b-transport-seed201" -> ("ts-b-transport", 201).
let private prefixAndSeed (r: Run) =
    let name = Path.GetFileName(Path.GetFullPath r.Folder)
    let i = name.LastIndexOf "-seed"

    if i > 0 then
        match Int64.TryParse name[i + 5 ..] with
        | true, seed -> Some(name[.. i - 1], seed)
        | _ -> None
    else
        None

/// The mean accuracy (points) over the rounds that follow a query (1 and later).
let internal afterQuery (r: Run) =
    match r.Rows |> List.filter (fun row -> row.Round >= 1) with
    | [] -> nan
    | rows -> 100.0 * (rows |> List.averageBy (fun row -> row.TestAccuracy))

/// The families of paired comparisons as Markdown: per comparison the seeds paired, mean +- standard error, the
/// 95% t-interval, Student's and the exact sign-flip p-values, Holm's adjusted p over the family and the interval
/// at the level Holm tests it at; then each named arm's repeats (the batches' copies of an image already in the
/// batch or labelled), seconds a query and training steps a run.
let comparisons (metric: Metric) (runs: Run list) (families: Comparison list list) =
    let sb = StringBuilder()
    let line (s: string) = sb.Append(s).Append('\n') |> ignore

    let byPrefix =
        runs
        |> List.choose (fun r -> prefixAndSeed r |> Option.map (fun (p, seed) -> p, (seed, r)))
        |> List.groupBy fst
        |> List.map (fun (p, xs) -> p, xs |> List.map snd |> Map.ofList)
        |> Map.ofList

    let arm (prefix: string) =
        byPrefix |> Map.tryFind prefix |> Option.defaultValue Map.empty

    let f2 (x: float) =
        x.ToString("+0.00;-0.00", CultureInfo.InvariantCulture)

    let f3 (x: float) =
        if x < 0.001 then
            x.ToString("0.0e0", CultureInfo.InvariantCulture)
        else
            x.ToString("0.000", CultureInfo.InvariantCulture)

    for i, family in List.indexed families do
        line ""
        line $"## Comparisons, family {i + 1} (mean {metric.Words} over rounds 1 and later, points, paired by seed)"
        line ""
        line "Every +- is a standard error over the paired seeds. p: Student's t; sign-flip: exact over all 2^n"
        line "sign assignments; Holm: adjusted over this family, with the t-interval at the level Holm tests it at."
        line ""

        line
            "| comparison | seeds | difference +- SE | 95% interval | t p | sign-flip p | Holm p | Holm-level interval |"

        line "|---|---|---|---|---|---|---|---|"

        let stats =
            family
            |> List.map (fun c ->
                let a, b = arm c.A, arm c.B

                let pairs =
                    a
                    |> Map.toList
                    |> List.choose (fun (seed, ra) ->
                        b
                        |> Map.tryFind seed
                        |> Option.map (fun rb -> seed, afterQuery ra - afterQuery rb))
                    |> List.filter (fun (_, d) -> Double.IsFinite d)

                c,
                pairs,
                (if pairs.Length >= 2 then
                     Some(Inference.paired c.Sides (pairs |> List.map snd |> Array.ofList))
                 else
                     None))

        let tested = stats |> List.choose (fun (_, _, p) -> p)

        let adjusted, levels =
            Inference.holm 0.05 (tested |> List.map (fun p -> p.TP) |> Array.ofList)

        let mutable k = 0

        for c, pairs, p in stats do
            match p with
            | None -> line $"| {c.Text} | {pairs.Length} | (fewer than 2 paired seeds) | | | | | |"
            | Some p ->
                let lo, hi = Inference.interval Inference.TwoSided 0.95 p
                let level = 1.0 - levels[k]

                let hlo, hhi =
                    match c.Sides with
                    | Inference.TwoSided -> Inference.interval c.Sides (1.0 - levels[k]) p
                    | Inference.Above _ -> Inference.interval c.Sides (1.0 - levels[k]) p

                let upper = if Double.IsPositiveInfinity hhi then "inf" else f2 hhi
                let pct = (100.0 * level).ToString("0.0", CultureInfo.InvariantCulture)

                line
                    $"| {c.Text} | {pairs.Length} | {f2 p.Mean} +- {p.StandardError:F2} | [{f2 lo}, {f2 hi}] | {f3 p.TP} | {f3 p.SignFlipP} | {f3 adjusted[k]} | {pct} %%: [{f2 hlo}, {upper}] |"

                k <- k + 1

        line ""
        line "| arm | runs | mean | repeats a run (+- SE) | seconds a query | training steps a run |"
        line "|---|---|---|---|---|---|"

        for name in family |> List.collect (fun c -> [ c.A; c.B ]) |> List.distinct do
            let rs = arm name |> Map.toList |> List.map snd

            if not rs.IsEmpty then
                let m, _ = meanStd (rs |> List.map afterQuery)

                let waste =
                    rs
                    |> List.choose (fun r ->
                        let cells =
                            r.Diagnostics
                            |> Map.toList
                            |> List.choose (fun (_, d) ->
                                match d.TryFind "batch_repeats", d.TryFind "batch_labelled_copies" with
                                | Some x, Some y -> Some(x + y)
                                | _ -> None)

                        if cells.IsEmpty then None else Some(List.sum cells))

                let wasteText =
                    if waste.IsEmpty then
                        ""
                    else
                        let wm, wsd = meanStd waste
                        $"{wm:F0} +- {wsd / sqrt (float waste.Length):F0}"

                let queries =
                    rs
                    |> List.collect (fun r -> r.Rows |> List.filter (fun row -> row.QuerySeconds > 0.0))

                let querySeconds =
                    if queries.IsEmpty then
                        ""
                    else
                        (queries |> List.averageBy (fun row -> row.QuerySeconds))
                            .ToString("0.0", CultureInfo.InvariantCulture)

                let steps =
                    rs
                    |> List.map (fun r ->
                        r.Rows |> List.sumBy (fun row -> row.TrainIterations |> Option.defaultValue 0L))
                    |> List.distinct
                    |> List.map string
                    |> String.concat ", "

                line $"| {name} | {rs.Length} | {m:F2} | {wasteText} | {querySeconds} | {steps} |"

    sb.ToString()

/// The Markdown report over the chosen accuracy.
let markdown (metric: Metric) (groups: Group list) =
    let sb = StringBuilder()
    let line (s: string) = sb.Append(s).Append('\n') |> ignore
    let labels = groups |> List.collect budget |> List.distinct |> List.sort

    line "# Active-learning report"
    line ""

    match metric with
    | TestMetric ->
        line "Test accuracy (%) on the dataset's full test split against the number of labels. AUBC is the area under"
    | ValidationMetric ->
        line "Validation accuracy (%) on the training images after the pool (`--validation`; the test split is not"
        line "shown) against the number of labels. AUBC is the area under"

    line "the budget curve (trapezoids) divided by the label range: the mean accuracy over the budget."
    line ""
    line "## Accuracy per run"
    line ""
    line ("| run | strategy | seed | " + String.Join(" | ", labels) + " | AUBC |")
    line ("|---|---|---|" + String.replicate labels.Length "---|" + "---|")

    for g in groups do
        for r in g.Runs do
            let cells =
                labels
                |> List.map (fun l ->
                    match r.Rows |> List.tryFind (fun row -> row.Labelled = l) with
                    | Some row -> pct row.TestAccuracy
                    | None -> "")

            let area = aubc r |> Option.map pct |> Option.defaultValue ""

            line
                $"""| {Path.GetFileName(Path.GetFullPath r.Folder)} | {g.Label} | {r.Spec.Seed} | {String.Join(" | ", cells)} | {area} |"""

    let stoppedRuns =
        groups
        |> List.collect (fun g -> g.Runs |> List.choose (fun r -> r.Stopped |> Option.map (fun s -> r, s)))

    if not stoppedRuns.IsEmpty then
        line ""
        line "Stopped early (`--stop-when`):"
        line ""

        for r, (round, why) in stoppedRuns do
            line $"- {Path.GetFileName(Path.GetFullPath r.Folder)}: after round {round}, {why}"

    line ""
    line "## Mean +- std over seeds"
    line ""
    line ("| strategy | runs | " + String.Join(" | ", labels) + " | AUBC |")
    line ("|---|---|" + String.replicate labels.Length "---|" + "---|")

    for g in groups do
        let own = budget g

        let cells =
            labels
            |> List.map (fun l ->
                if List.contains l own then
                    let m, s = meanStd (g.Runs |> List.map (fun r -> accuracyAt r l))
                    $"{pct m} +- {pct s}"
                else
                    "")

        let areas = g.Runs |> List.choose aubc

        let area =
            if areas.IsEmpty then
                ""
            else
                (let m, s = meanStd areas in $"{pct m} +- {pct s}")

        line $"""| {g.Label} | {g.Runs.Length} | {String.Join(" | ", cells)} | {area} |"""

    // Paired differences against random: the same seed means the same initial labels and initialisation.
    match groups |> List.filter (fun g -> g.Spec.Strategy = "random") with
    | [ random ] when groups.Length > 1 ->
        // Round 0 involves no query: the mean over rounds 1 and later.
        let meanOver (r: Run) =
            r.Rows
            |> List.filter (fun row -> row.Round >= 1)
            |> function
                | [] -> nan
                | rows -> rows |> List.averageBy (fun row -> row.TestAccuracy)

        let randomBySeed =
            random.Runs |> List.map (fun r -> r.Spec.Seed, meanOver r) |> Map.ofList

        line ""
        line $"## Paired differences against random (mean {metric.Words} over rounds 1 and later, points)"
        line ""
        line "Per seed: the run's mean accuracy over its rounds after round 0 minus random's with the same seed (the"
        line "same initial labels). Mean, standard error and 95% t-interval over the seeds; ahead on: the seeds with a"
        line "positive difference."
        line ""
        line "| strategy | mean over rounds | per seed | mean difference +- SE | 95% interval | ahead on |"
        line "|---|---|---|---|---|---|"

        for g in groups do
            if not (obj.ReferenceEquals(g, random)) then
                let pairs =
                    g.Runs
                    |> List.choose (fun r ->
                        randomBySeed
                        |> Map.tryFind r.Spec.Seed
                        |> Option.map (fun b -> r.Spec.Seed, meanOver r - b))
                    |> List.filter (fun (_, d) -> Double.IsFinite d)

                if not pairs.IsEmpty then
                    let ds = pairs |> List.map snd
                    let m, sd = meanStd ds
                    let se = sd / sqrt (float ds.Length)
                    let own, _ = meanStd (g.Runs |> List.map meanOver)
                    let half = tQuantile (ds.Length - 1) * se

                    let interval =
                        if ds.Length > 1 then
                            $"[{signedPoints (m - half)}, {signedPoints (m + half)}]"
                        else
                            "(one seed)"

                    let perSeed =
                        pairs
                        |> List.map (fun (seed, d) -> $"{seed}: {signedPoints d}")
                        |> String.concat ", "

                    let ahead = ds |> List.filter (fun d -> d > 0.0) |> List.length

                    line
                        $"| {g.Label} | {pct own} | {perSeed} | {signedPoints m} +- {pct se} | {interval} | {ahead} of {ds.Length} |"
    | _ -> ()

    // WAAL's critic, from diagnostics.csv: per group and queried round, the mean over its runs (and the lowest run,
    // for the held-out AUC).
    let waalGroups =
        groups
        |> List.filter (fun g ->
            g.Spec.Strategy = "waal"
            && g.Runs |> List.exists (fun r -> not r.Diagnostics.IsEmpty))

    if not waalGroups.IsEmpty then
        line ""
        line "## WAAL's critic (diagnostics.csv; mean over runs, per queried round)"
        line ""
        line "Held-out AUC: the critic's AUC on the items withheld from its steps (`--critic-holdout`; lowest run in"
        line "brackets); gap: its gap over the last tenth of the round's steps; moved: how far its weights moved;"
        line "gradient ratio: the adversarial gradient on the features over the cross-entropy's; overlap: the share of"
        line "the batch the same scores pick with the critic term removed."
        line ""

        line
            "| strategy | round | held-out AUC | AUC on its training items | gap (last tenth) | moved | gradient ratio | overlap |"

        line "|---|---|---|---|---|---|---|---|"

        let three (x: float) =
            if Double.IsFinite x then
                x.ToString("F3", CultureInfo.InvariantCulture)
            else
                ""

        let small (x: float) =
            if Double.IsFinite x then
                x.ToString("G3", CultureInfo.InvariantCulture)
            else
                ""

        for g in waalGroups do
            let rounds =
                g.Runs
                |> List.collect (fun r -> r.Diagnostics |> Map.toList |> List.map fst)
                |> List.distinct
                |> List.sort

            for round in rounds do
                let values (name: string) =
                    g.Runs
                    |> List.choose (fun r -> r.Diagnostics |> Map.tryFind round |> Option.bind (Map.tryFind name))

                let mean name =
                    match values name with
                    | [] -> nan
                    | xs -> List.average xs

                let auc =
                    match values "critic_holdout_auc" with
                    | [] -> ""
                    | xs -> $"{three (List.average xs)} ({three (List.min xs)})"

                line
                    $"""| {g.Label} | {round} | {auc} | {three (mean "critic_auc")} | {three (mean "wgap_last")} | {small (mean "critic_moved")} | {small (mean "grad_ratio")} | {three (mean "critic_off_overlap")} |"""

    line ""
    line "## Seconds per round (mean over runs and rounds) and training budget"
    line ""
    line "| strategy | train s | query s | eval s | training iterations per round |"
    line "|---|---|---|---|---|"

    for g in groups do
        let rows = g.Runs |> List.collect (fun r -> r.Rows)
        let avg f = rows |> List.averageBy f |> num

        let iterations =
            match (List.head g.Runs).Iterations with
            | [] -> "(not recorded)"
            | its -> String.Join(", ", its)

        line
            $"| {g.Label} | {avg (fun r -> r.TrainSeconds)} | {avg (fun r -> r.QuerySeconds)} | {avg (fun r -> r.EvalSeconds)} | {iterations} |"

    // The machine and the wall time: seconds a run spent in its rounds (training, query, evaluation), summed.
    line ""
    line "## Machine and time"
    line ""

    let machines =
        groups
        |> List.collect (fun g -> g.Runs |> List.map (fun r -> r.Machine))
        |> List.filter ((<>) "")
        |> List.distinct

    match machines with
    | [] -> line "Machine: not recorded in the runs' spec.json."
    | [ m ] -> line $"Machine: {m}."
    | ms -> line $"""Machines: {String.Join("; ", ms)}."""

    line ""
    line "| strategy | runs | threads | seconds a run (rounds summed) |"
    line "|---|---|---|---|"

    for g in groups do
        let seconds =
            g.Runs
            |> List.averageBy (fun r -> r.Rows |> List.sumBy (fun x -> x.TrainSeconds + x.QuerySeconds + x.EvalSeconds))

        let threads =
            g.Runs
            |> List.map (fun r -> string r.Threads)
            |> List.distinct
            |> fun ts -> String.Join(", ", ts)

        line $"| {g.Label} | {g.Runs.Length} | {threads} | {num seconds} |"

    line ""
    line "## Settings"
    line ""

    for g in groups do
        line $"- **{g.Label}**: {settingsLine g}"

    sb.ToString()

/// The learning curve as a PNG: mean accuracy (%) against labels per group, with a +- std band.
let plot (metric: Metric) (groups: Group list) (path: string) =
    use plt = new ScottPlot.Plot()
    let palette = ScottPlot.Palettes.Category10()
    let strategies = groups |> List.map (fun g -> g.Spec.Strategy) |> List.distinct

    for g in groups do
        let labels = budget g
        let xs = labels |> List.map float |> Array.ofList

        let stats =
            labels
            |> List.map (fun l -> meanStd (g.Runs |> List.map (fun r -> 100.0 * accuracyAt r l)))
            |> Array.ofList

        let ys = stats |> Array.map fst
        // One colour per strategy; a baseline at its reference budget (epochs over L) is dashed.
        let color = palette.GetColor(List.findIndex ((=) g.Spec.Strategy) strategies)
        let line = plt.Add.Scatter(xs, ys, color)

        if g.Spec.Strategy <> "waal" && g.Spec.Train.Budget = EpochsOverLabelled then
            line.LinePattern <- ScottPlot.LinePattern.Dashed

        line.LegendText <- $"""{g.Label} ({g.Runs.Length} run{(if g.Runs.Length = 1 then "" else "s")})"""
        line.LineWidth <- 2.0f
        line.MarkerSize <- 7.0f

        if g.Runs.Length > 1 then
            let band =
                plt.Add.FillY(xs, stats |> Array.map (fun (m, s) -> m - s), stats |> Array.map (fun (m, s) -> m + s))

            band.FillColor <- color.WithAlpha(0.12)
            band.LineWidth <- 0.0f

    plt.Title $"{metric.Words} against labels (mean +- std over seeds)"
    plt.XLabel "labelled images"
    plt.YLabel $"{metric.Words} (%%)"
    plt.ShowLegend(ScottPlot.Edge.Right) |> ignore
    plt.SavePng(path, 1100, 560) |> ignore

/// Why a report could not be written.
type ReportError =
    /// A run folder that cannot be read as one (its file and what is wrong).
    | RunUnreadable of string
    /// OUT cannot hold the report (a file, not writable).
    | WriteFailed of path: string * detail: string

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
                RunFolder.writeTextAtomic md (markdown metric groups + comparisons metric runs families)
                plot metric groups png
                Ok(md, png)
            with
            | :? IOException as e -> Error(WriteFailed(out, e.Message))
            | :? UnauthorizedAccessException as e -> Error(WriteFailed(out, e.Message)))

/// report.md and learning_curve.png for run folders (no comparison families).
let write (metric: Metric) (folders: string list) (out: string) = writeWith metric [] folders out
