namespace Waal.Core

open System
open System.Globalization

/// A rule that ends an experiment before its last round (`--stop-when`).
type StopRule =
    /// Stop once this many labels are given: the query that would pass it is cut to fit, and the round that
    /// reaches it is the last.
    | LabelBudget of labels: int
    /// Stabilising predictions (Bloodgood and Vijay-Shanker 2009): the mean Cohen's kappa between consecutive
    /// rounds' predictions on the stop set, over the last `window` pairs, is at least `threshold`.
    | KappaAtLeast of threshold: float * window: int
    /// The same with the plain fraction of stop-set items whose prediction did not change.
    | AgreementAtLeast of threshold: float * window: int
    /// The mean uncertainty (1 - max p) over the stop set is at most `threshold`.
    | UncertaintyAtMost of threshold: float

/// The stopping rules' text form, their signals and their decision: pure functions over predictions.
module Stopping =
    /// Bloodgood and Vijay-Shanker's window: three consecutive agreements.
    let defaultWindow = 3

    let private number (v: float) =
        v.ToString("R", CultureInfo.InvariantCulture)

    /// One rule as the command line writes it.
    let ruleText =
        function
        | LabelBudget n -> $"labels>={n}"
        | KappaAtLeast(t, w) when w = defaultWindow -> $"kappa>={number t}"
        | KappaAtLeast(t, w) -> $"kappa>={number t}/{w}"
        | AgreementAtLeast(t, w) when w = defaultWindow -> $"agreement>={number t}"
        | AgreementAtLeast(t, w) -> $"agreement>={number t}/{w}"
        | UncertaintyAtMost t -> $"uncertainty<={number t}"

    /// The rules as one comma-separated text ("" when none).
    let toText (rules: StopRule list) =
        String.Join(",", rules |> List.map ruleText)

    let expected =
        "comma-separated rules: labels>=N, kappa>=T[/W], agreement>=T[/W] (T in (0, 1], W rounds >= 1), uncertainty<=T (T in [0, 1]); or none"

    let private parseRule (text: string) : Result<StopRule, string> =
        let t = text.Trim().ToLowerInvariant().Replace(" ", "")

        let num (s: string) =
            match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with
            | true, v when Double.IsFinite v -> Some v
            | _ -> None

        let thresholdAndWindow (s: string) =
            match s.Split '/' with
            | [| v |] -> num v |> Option.map (fun v -> v, defaultWindow)
            | [| v; w |] ->
                match num v, Int32.TryParse w with
                | Some v, (true, w) when w >= 1 -> Some(v, w)
                | _ -> None
            | _ -> None

        let bad () =
            Error $"'{text.Trim()}' is not a rule; expected {expected}"

        if t.StartsWith "labels>=" then
            match Int32.TryParse(t.Substring 8) with
            | true, n when n >= 1 -> Ok(LabelBudget n)
            | _ -> bad ()
        elif t.StartsWith "kappa>=" then
            match thresholdAndWindow (t.Substring 7) with
            | Some(v, w) when v > 0.0 && v <= 1.0 -> Ok(KappaAtLeast(v, w))
            | _ -> bad ()
        elif t.StartsWith "agreement>=" then
            match thresholdAndWindow (t.Substring 11) with
            | Some(v, w) when v > 0.0 && v <= 1.0 -> Ok(AgreementAtLeast(v, w))
            | _ -> bad ()
        elif t.StartsWith "uncertainty<=" then
            match num (t.Substring 13) with
            | Some v when v >= 0.0 && v <= 1.0 -> Ok(UncertaintyAtMost v)
            | _ -> bad ()
        else
            bad ()

    /// Reads rules from their text ("" or "none": no rule).
    let parse (text: string) : Result<StopRule list, string> =
        let t = text.Trim()

        if t = "" || t.Equals("none", StringComparison.OrdinalIgnoreCase) then
            Ok []
        else
            t.Split(',', StringSplitOptions.RemoveEmptyEntries)
            |> Array.fold
                (fun acc part ->
                    acc
                    |> Result.bind (fun rules -> parseRule part |> Result.map (fun r -> rules @ [ r ])))
                (Ok [])

    /// The fraction of positions where two prediction vectors agree (1 for empty vectors).
    let agreement (a: int[]) (b: int[]) =
        if a.Length <> b.Length then
            invalidArg (nameof b) $"{a.Length} and {b.Length} predictions"

        if a.Length = 0 then
            1.0
        else
            float (Array.fold2 (fun n x y -> if x = y then n + 1 else n) 0 a b)
            / float a.Length

    /// Cohen's kappa of two raters' labels: (p_o - p_e) / (1 - p_e), with p_e from their marginals. When chance
    /// agreement is certain (both always say the same single class) it is 1 if they agree everywhere, else 0.
    let kappa (a: int[]) (b: int[]) =
        let po = agreement a b

        if a.Length = 0 then
            1.0
        else
            let n = float a.Length
            let count (xs: int[]) = xs |> Array.countBy id |> Map.ofArray
            let ca, cb = count a, count b

            let pe =
                ca
                |> Map.fold
                    (fun s k v ->
                        match cb.TryFind k with
                        | Some w -> s + (float v / n) * (float w / n)
                        | None -> s)
                    0.0

            if pe >= 1.0 - 1e-12 then
                (if po >= 1.0 then 1.0 else 0.0)
            else
                (po - pe) / (1.0 - pe)

    /// The stop-set signals of a round, given its predictions and mean uncertainty and the previous round's
    /// predictions (None in round 0): stop_kappa and stop_agreement (not in round 0), stop_uncertainty.
    let signals (previous: int[] option) (current: int[]) (uncertainty: float) =
        match previous with
        | Some p ->
            [
                "stop_kappa", kappa p current
                "stop_agreement", agreement p current
                "stop_uncertainty", uncertainty
            ]
        | None -> [ "stop_uncertainty", uncertainty ]

    let private windowMean (name: string) (window: int) (history: (string * float) list list) =
        let values =
            history
            |> List.map (fun s -> s |> List.tryFind (fun (n, _) -> n = name) |> Option.map snd)
            |> List.choose id
            |> List.filter Double.IsFinite

        if values.Length < window then
            None
        else
            Some(values |> List.skip (values.Length - window) |> List.average)

    /// The first rule that fires after a round, with why, given every round's stop signals so far (oldest first,
    /// the current last) and the labels the current round trained on.
    let fired (rules: StopRule list) (labelled: int) (history: (string * float) list list) : string option =
        rules
        |> List.tryPick (fun rule ->
            match rule with
            | LabelBudget n when labelled >= n -> Some $"{ruleText rule}: {labelled} labels"
            | LabelBudget _ -> None
            | KappaAtLeast(t, w) ->
                match windowMean "stop_kappa" w history with
                | Some m when m >= t ->
                    Some $"{ruleText rule}: mean kappa {number (Math.Round(m, 4))} over the last {w}"
                | _ -> None
            | AgreementAtLeast(t, w) ->
                match windowMean "stop_agreement" w history with
                | Some m when m >= t ->
                    Some $"{ruleText rule}: mean agreement {number (Math.Round(m, 4))} over the last {w}"
                | _ -> None
            | UncertaintyAtMost t ->
                match windowMean "stop_uncertainty" 1 history with
                | Some m when m <= t -> Some $"{ruleText rule}: mean uncertainty {number (Math.Round(m, 4))}"
                | _ -> None)

    /// The query size a label budget allows (k when no budget rule applies).
    let allowedQuery (rules: StopRule list) (labelled: int) (k: int) =
        rules
        |> List.fold
            (fun k rule ->
                match rule with
                | LabelBudget n -> max 0 (min k (n - labelled))
                | _ -> k)
            k

    /// The stop set of an experiment: `size` pool items (all when the pool is smaller) drawn once from the key
    /// (seed, 0, "stop-set"), in ascending order.
    let stopSet (seed: int64) (size: int) (poolSize: int) =
        Rng.permutation (Rng.key seed 0 (Rng.Named "stop-set")) poolSize
        |> Array.truncate (max 0 (min size poolSize))
        |> Array.sort

    /// Predicted classes and the mean uncertainty (1 - max p) from row-major probabilities (`classes` per row).
    let summarise (classes: int) (probabilities: float32[]) =
        let n = probabilities.Length / classes

        let predictions =
            Array.init n (fun i ->
                let mutable best = 0

                for c in 1 .. classes - 1 do
                    if probabilities[i * classes + c] > probabilities[i * classes + best] then
                        best <- c

                best)

        let uncertainty =
            if n = 0 then
                nan
            else
                predictions
                |> Array.mapi (fun i c -> 1.0 - float probabilities[i * classes + c])
                |> Array.average

        predictions, uncertainty
