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
