/// Metrics of an active-learning run.
module Waal.Core.Metrics

/// The fraction of predictions equal to the truth (0 for no items).
let accuracy (predicted: int[]) (truth: int[]) =
    if predicted.Length <> truth.Length then
        invalidArg (nameof predicted) $"expected {truth.Length} predictions, found {predicted.Length}"

    if truth.Length = 0 then
        0.0
    else
        let mutable hits = 0

        for i in 0 .. truth.Length - 1 do
            if predicted[i] = truth[i] then
                hits <- hits + 1

        float hits / float truth.Length

/// The area under the budget curve: the trapezoid area under accuracy against the number of labels, divided
/// by the label range, so it is the mean accuracy over the budget and lies between the lowest and highest
/// accuracy. Points are sorted by labels; a single point gives its own accuracy; none gives None.
let areaUnderBudgetCurve (points: (int * float) list) =
    match List.sortBy fst points with
    | [] -> None
    | [ (_, a) ] -> Some a
    | sorted ->
        let first = fst (List.head sorted)
        let last = fst (List.last sorted)

        if last = first then
            Some(List.averageBy snd sorted)
        else
            let area =
                sorted
                |> List.pairwise
                |> List.sumBy (fun ((x0, y0), (x1, y1)) -> float (x1 - x0) * (y0 + y1) / 2.0)

            Some(area / float (last - first))

/// Average ranks (1-based; ties share the mean of their ranks).
let ranks (xs: float[]) =
    let order = Array.init xs.Length id |> Array.sortBy (fun i -> xs[i])
    let r = Array.zeroCreate xs.Length
    let mutable i = 0

    while i < order.Length do
        let mutable j = i

        while j + 1 < order.Length && xs[order[j + 1]] = xs[order[i]] do
            j <- j + 1

        let mean = float (i + j) / 2.0 + 1.0

        for t in i..j do
            r[order[t]] <- mean

        i <- j + 1

    r

/// The area under the ROC curve of a score separating `positives` from `negatives`: the probability that a
/// random positive scores above a random negative, ties counting one half (the Mann-Whitney statistic).
/// None when either side is empty.
let auc (positives: float[]) (negatives: float[]) =
    if positives.Length = 0 || negatives.Length = 0 then
        None
    else
        let r = ranks (Array.append positives negatives)
        let sumPositive = Array.sum r[.. positives.Length - 1]
        let np = float positives.Length
        let nn = float negatives.Length
        Some((sumPositive - np * (np + 1.0) / 2.0) / (np * nn))

/// A 95% interval for an AUC of `positives` against `negatives` counts (Hanley and McNeil, 1982: the standard error
/// from the AUC and the two counts), clipped to [0, 1].
let aucInterval (a: float) (positives: int) (negatives: int) =
    let n1, n2 = float positives, float negatives
    let q1 = a / (2.0 - a)
    let q2 = 2.0 * a * a / (1.0 + a)

    let variance =
        (a * (1.0 - a) + (n1 - 1.0) * (q1 - a * a) + (n2 - 1.0) * (q2 - a * a))
        / (n1 * n2)

    let se = sqrt (max 0.0 variance)
    max 0.0 (a - 1.96 * se), min 1.0 (a + 1.96 * se)

/// Pearson's correlation (None when a side is constant or the lengths differ or are below 2).
let pearson (xs: float[]) (ys: float[]) =
    if xs.Length <> ys.Length || xs.Length < 2 then
        None
    else
        let mx = Array.average xs
        let my = Array.average ys
        let mutable sxy = 0.0
        let mutable sxx = 0.0
        let mutable syy = 0.0

        for i in 0 .. xs.Length - 1 do
            let dx = xs[i] - mx
            let dy = ys[i] - my
            sxy <- sxy + dx * dy
            sxx <- sxx + dx * dx
            syy <- syy + dy * dy

        if sxx = 0.0 || syy = 0.0 then
            None
        else
            Some(sxy / sqrt (sxx * syy))

/// Spearman's rank correlation: Pearson's on average ranks.
let spearman (xs: float[]) (ys: float[]) =
    if xs.Length <> ys.Length then
        None
    else
        pearson (ranks xs) (ranks ys)

/// How many of `labels` fall in each class 0 .. classes-1.
let histogram (classes: int) (labels: int seq) =
    let h = Array.zeroCreate classes

    for l in labels do
        h[l] <- h[l] + 1

    h

/// In a pool of copies (item i is a copy of original i % originals, as `--repeat` builds it), what a queried
/// batch wasted: how many of its items repeat an original picked earlier in the same batch, and how many are
/// copies of an original that was already labelled before the batch.
let copies (originals: int) (labelledBefore: int seq) (batch: int[]) =
    if originals < 1 then
        invalidArg (nameof originals) $"expected originals >= 1, found {originals}"

    let labelled = labelledBefore |> Seq.map (fun i -> i % originals) |> Set.ofSeq
    let seen = System.Collections.Generic.HashSet<int>()
    let mutable inBatch = 0
    let mutable ofLabelled = 0

    for i in batch do
        let o = i % originals

        if not (seen.Add o) then
            inBatch <- inBatch + 1

        if labelled.Contains o then
            ofLabelled <- ofLabelled + 1

    inBatch, ofLabelled

/// The entropy of a histogram's class distribution in bits: log2 C for a perfectly even batch, 0 for one class.
let histogramEntropy (counts: int[]) =
    let total = float (Array.sum counts)

    if total = 0.0 then
        0.0
    else
        counts
        |> Array.sumBy (fun n ->
            if n = 0 then
                0.0
            else
                let p = float n / total
                -p * log p / log 2.0)

/// The standard deviation (population) of a vector; 0 for fewer than two values.
let standardDeviation (xs: float[]) =
    if xs.Length < 2 then
        0.0
    else
        let m = Array.average xs
        sqrt (xs |> Array.averageBy (fun x -> (x - m) * (x - m)))

/// Mean and sample standard deviation (n - 1 in the denominator; 0 for one value) of a list.
let meanStd (xs: float list) =
    let n = float xs.Length
    let mean = List.average xs

    let std =
        if xs.Length < 2 then
            0.0
        else
            sqrt ((xs |> List.sumBy (fun x -> (x - mean) ** 2.0)) / (n - 1.0))

    mean, std
