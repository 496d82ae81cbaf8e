/// report.md's tables (accuracy per labelled count per run and per group, area under the budget curve, seconds,
/// paired differences against random, WAAL's critic diagnostics, the settings of each group) and
/// learning_curve.png.
module Waal.Experiments.ReportMarkdown

open System
open System.Globalization
open System.IO
open System.Text
open Waal.Core
open Waal.Experiments.ReportRuns

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
                    let m, s = Metrics.meanStd (g.Runs |> List.map (fun r -> accuracyAt r l))
                    $"{pct m} +- {pct s}"
                else
                    "")

        let areas = g.Runs |> List.choose aubc

        let area =
            if areas.IsEmpty then
                ""
            else
                (let m, s = Metrics.meanStd areas in $"{pct m} +- {pct s}")

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
                    let m, sd = Metrics.meanStd ds
                    let se = sd / sqrt (float ds.Length)
                    let own, _ = Metrics.meanStd (g.Runs |> List.map meanOver)

                    let half =
                        if ds.Length > 1 then
                            Inference.tQuantile (ds.Length - 1) 0.975 * se
                        else
                            0.0

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
            |> List.map (fun l -> Metrics.meanStd (g.Runs |> List.map (fun r -> 100.0 * accuracyAt r l)))
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
