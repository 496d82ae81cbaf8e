/// The CSV views of a run folder: rounds.csv (one row a round: labels, accuracy, seconds, the budget spent and
/// the stopping signals) written and read back, and diagnostics.csv (each queried batch's class histogram and the
/// strategy's signals). RunFolder writes them, after progress.json, through AtomicFile.
module Waal.Experiments.RunCsv

open System
open System.Globalization
open System.IO
open System.Text
open System.Collections.Generic
open Waal.Core
open Waal.Data

/// The six fixed columns of rounds.csv, in order.
let internal fixedColumns =
    "round,labeled,test_accuracy,train_seconds,query_seconds,eval_seconds"

/// The header of rounds.csv: the six fixed columns, the training budget actually spent, then the round's
/// stopping signals and the rule that stopped the run after it (empty unless one did).
let internal roundsHeader =
    fixedColumns
    + ",train_iterations,stop_kappa,stop_agreement,stop_uncertainty,stopped"

let private seconds (x: float) =
    x.ToString("F3", CultureInfo.InvariantCulture)

/// rounds.csv: the header, then one row per completed round (accuracy written exactly, seconds to 1 ms).
let internal roundsCsv (records: RoundRecord list) =
    let sb = StringBuilder()
    // A run with a validation split has one more column, last (other runs' files stay as they were).
    let validated =
        records |> List.exists (fun r -> Double.IsFinite r.ValidationAccuracy)

    sb.Append(roundsHeader).Append(if validated then ",validation_accuracy\n" else "\n")
    |> ignore

    let signal (r: RoundRecord) (name: string) =
        match r.StopSignals |> List.tryFind (fun (n, _) -> n = name) with
        | Some(_, v) when Double.IsFinite v -> Options.formatNumber v
        | _ -> ""

    for r in records do
        sb.Append(
            $"{r.Round},{r.Labelled},{Options.formatNumber r.TestAccuracy},{seconds r.TrainSeconds},{seconds r.QuerySeconds},{seconds r.EvalSeconds},{r.TrainIterations}"
        )
        |> ignore

        for name in [ "stop_kappa"; "stop_agreement"; "stop_uncertainty" ] do
            sb.Append(',').Append(signal r name) |> ignore

        sb.Append(',').Append(r.Stopped |> Option.map Csv.text |> Option.defaultValue "")
        |> ignore

        if validated then
            sb
                .Append(',')
                .Append(
                    if Double.IsFinite r.ValidationAccuracy then
                        Options.formatNumber r.ValidationAccuracy
                    else
                        ""
                )
            |> ignore

        sb.Append('\n') |> ignore

    sb.ToString()

/// One row of rounds.csv read back.
type RoundRow =
    {
        Round: int
        Labelled: int
        TestAccuracy: float
        TrainSeconds: float
        QuerySeconds: float
        EvalSeconds: float
        /// The validation split's accuracy (NaN for a run without one).
        ValidationAccuracy: float
        /// The round's training iterations (None in files written before the column).
        TrainIterations: int64 option
    }

/// Reads rounds.csv; a malformed line is an error naming its line number and field.
let readRoundsCsv (path: string) : Result<RoundRow list, string> =
    match Files.readLines "rounds.csv" Files.Limits.documentBytes path with
    | Error e -> Error $"{path}: {DataError.message e}"
    | Ok lines ->

        let lines = lines |> Array.filter (fun l -> l.Trim() <> "")

        // Files written before the train_iterations and stopping columns have fewer columns after the fixed six.
        if lines.Length = 0 || not (lines[0].Trim().StartsWith fixedColumns) then
            Error $"{path}: line 1: expected the header '{roundsHeader}'"
        else
            // The validation column, when there is one, is the last: after the `stopped` text (a CSV text cell: quoted when it holds a comma).
            let validated = lines[0].TrimEnd().EndsWith ",validation_accuracy"

            let parse (n: int) (line: string) =
                let f = line.Split ','

                let validation =
                    if validated then
                        match
                            Double.TryParse(
                                line.Substring(line.LastIndexOf ',' + 1),
                                NumberStyles.Float,
                                CultureInfo.InvariantCulture
                            )
                        with
                        | true, v -> v
                        | _ -> Double.NaN
                    else
                        Double.NaN

                let num (i: int) =
                    Double.TryParse(f[i], NumberStyles.Float, CultureInfo.InvariantCulture)

                let whole (i: int) =
                    Int32.TryParse(f[i], NumberStyles.Integer, CultureInfo.InvariantCulture)

                if f.Length < 6 then
                    Error $"{path}: line {n}: expected 6 fields, found {f.Length}"
                else
                    match whole 0, whole 1, num 2, num 3, num 4, num 5 with
                    | (true, r), (true, l), (true, a), (true, t), (true, q), (true, e) ->
                        Ok
                            {
                                Round = r
                                Labelled = l
                                TestAccuracy = a
                                TrainSeconds = t
                                QuerySeconds = q
                                EvalSeconds = e
                                ValidationAccuracy = validation
                                TrainIterations =
                                    if f.Length > 6 then
                                        match
                                            Int64.TryParse(f[6], NumberStyles.Integer, CultureInfo.InvariantCulture)
                                        with
                                        | true, i -> Some i
                                        | _ -> None
                                    else
                                        None
                            }
                    | _ -> Error $"{path}: line {n}: expected numbers, found '{line}'"

            lines[1..]
            |> Array.mapi (fun i l -> parse (i + 2) l)
            |> Array.fold
                (fun acc r ->
                    match acc, r with
                    | Ok rows, Ok row -> Ok(row :: rows)
                    | Error e, _
                    | _, Error e -> Error e)
                (Ok [])
            |> Result.map List.rev

/// diagnostics.csv: per completed round that queried, the class histogram of its batch (from the labels the
/// oracle gave), the histogram's entropy in bits (log2 C: perfectly even) and the strategy's signals (WAAL: the
/// critic's AUC, the spread of its terms, the rank correlation of score and uncertainty; empty otherwise).
/// A pool of copies (`originals` below the pool's size: item i copies original i % originals) adds what the batch
/// wasted: batch_repeats (items whose original the batch already holds) and batch_labelled_copies (copies of an
/// original labelled before the batch).
let internal diagnosticsCsv (naming: Naming option) (originals: int) (progress: Progress) =
    let classes = progress.Pool.Classes
    let queried = progress.Records |> List.filter (fun r -> r.Queried.Length > 0)
    let repeated = originals < progress.Pool.Size
    let batches = (Pool.log progress.Pool).Batches

    let names =
        queried |> List.collect (fun r -> r.Signals |> List.map fst) |> List.distinct

    let sb = StringBuilder()

    // class_<name> (a name's commas and quotes become '_', to keep the header one CSV row), or class_<index>.
    let classColumns =
        let column c =
            match naming with
            | Some n when c < n.ClassNames.Length ->
                "class_"
                + n.ClassNames[c].Replace(',', '_').Replace('"', '_').Replace('\n', '_')
            | _ -> "class_" + string c

        String.Join(",", Array.init classes column)

    sb.Append("round,labeled,queried,").Append(classColumns).Append(",batch_entropy_bits")
    |> ignore

    for n in names do
        sb.Append(',').Append(n) |> ignore

    if repeated then
        sb.Append(",batch_repeats,batch_labelled_copies") |> ignore

    sb.Append('\n') |> ignore

    for r in queried do
        let labels = r.Queried |> Array.choose (Pool.labelOf progress.Pool)
        let h = Metrics.histogram classes labels

        let row = $"{r.Round},{r.Labelled},{r.Queried.Length},"
        sb.Append(row).Append(String.Join(",", h)).Append(',') |> ignore
        sb.Append(Options.formatNumber (Metrics.histogramEntropy h)) |> ignore

        for n in names do
            sb.Append(',') |> ignore

            match r.Signals |> List.tryFind (fun (m, _) -> m = n) with
            | Some(_, v) when Double.IsFinite v -> sb.Append(Options.formatNumber v) |> ignore
            | _ -> ()

        if repeated then
            // The batch queried at round r is labelled as round r + 1: what was labelled before it is every
            // batch up to round r.
            let before =
                batches
                |> Seq.filter (fun b -> b.Round <= r.Round)
                |> Seq.collect (fun b -> b.Items |> Seq.map fst)

            let inBatch, ofLabelled = Metrics.copies originals before r.Queried
            sb.Append($",{inBatch},{ofLabelled}") |> ignore

        sb.Append('\n') |> ignore

    sb.ToString()

/// `originals`: the number of distinct images in the pool (its size, unless it was repeated).
