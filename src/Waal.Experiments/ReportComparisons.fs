/// The paired comparisons of a report (`waal report --compare`): runs named A-seedN against B-seedN, Student's
/// and the sign-flip test, Holm's correction over a family (Waal.Core.Inference), as Markdown.
module Waal.Experiments.ReportComparisons

open System
open System.Globalization
open System.IO
open System.Text
open Waal.Core
open Waal.Experiments.ReportRuns

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
                let m, _ = Metrics.meanStd (rs |> List.map afterQuery)

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
                        let wm, wsd = Metrics.meanStd waste
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
