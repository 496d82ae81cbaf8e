/// progress.json, an experiment's source of truth for resuming: its format written and read back, every field
/// checked against the label log (a record that contradicts the pool, a value out of range), and the stop set's
/// size checked against the spec. RunFolder writes and reads it at its place in the folder.
module internal Waal.Experiments.ProgressFile

open System
open System.IO
open System.Text
open System.Text.Json
open System.Collections.Generic
open Waal.Core
open Waal.Data

/// progress.json: the label log and every completed round (with its queried indices and iteration count).
/// With a naming, each record also lists its queried items' files ("queriedFiles", when the items are files)
/// and the label log its class names and paths.
let progressJson (naming: Naming option) (progress: Progress) =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream)

        let record (r: RoundRecord) =
            w.WriteStartObject()
            w.WriteNumber("round", r.Round)
            w.WriteNumber("labelled", r.Labelled)
            // JSON has no NaN: a session without test data has no accuracy (null).
            if Double.IsFinite r.TestAccuracy then
                w.WriteNumber("testAccuracy", r.TestAccuracy)
            else
                w.WriteNull "testAccuracy"

            // Only runs with a validation split have it (files of other runs stay as they were).
            if Double.IsFinite r.ValidationAccuracy then
                w.WriteNumber("validationAccuracy", r.ValidationAccuracy)

            w.WriteNumber("trainSeconds", r.TrainSeconds)
            w.WriteNumber("querySeconds", r.QuerySeconds)
            w.WriteNumber("evalSeconds", r.EvalSeconds)
            w.WriteNumber("trainIterations", r.TrainIterations)

            // JSON has no NaN: an undefined value (e.g. an AUC with one side empty, no kappa in round 0) is null.
            let named (field: string) (values: (string * float) list) =
                if not values.IsEmpty then
                    w.WriteStartObject field

                    for name, value in values do
                        if Double.IsFinite value then
                            w.WriteNumber(name, value)
                        else
                            w.WriteNull name

                    w.WriteEndObject()

            named "signals" r.Signals
            named "stopSignals" r.StopSignals

            match r.Stopped with
            | Some why -> w.WriteString("stopped", why)
            | None -> ()

            w.WriteStartArray "stopPredictions"

            for c in r.StopPredictions do
                w.WriteNumberValue c

            w.WriteEndArray()

            w.WriteStartArray "queried"

            for i in r.Queried do
                w.WriteNumberValue i

            w.WriteEndArray()

            match naming with
            | Some n when n.Files.Length > 0 ->
                w.WriteStartArray "queriedFiles"

                for i in r.Queried do
                    w.WriteStringValue(if i < n.Files.Length then n.Files[i] else null)

                w.WriteEndArray()
            | _ -> ()

            w.WriteEndObject()

        w.WriteStartObject()
        w.WriteStartArray "records"

        for r in progress.Records do
            record r

        w.WriteEndArray()
        w.WritePropertyName "pending"

        match progress.Pending with
        | Some p -> record p.Record
        | None -> w.WriteNullValue()

        w.WritePropertyName "labelLog"
        w.WriteRawValue(LabelLogJson.toBytesNamed naming (Pool.log progress.Pool))
        w.WriteEndObject()

    stream.ToArray()

/// Checks what progress.json says against its own label log: round r's record counts the labels given before
/// it and its queried indices are exactly the batch labelled after it; a pending batch holds distinct
/// unlabelled indices of the pool. The first disagreement, or None.
let private contradiction (progress: Progress) =
    let log = Pool.log progress.Pool
    let batches = log.Batches |> List.toArray

    let labelledBefore (round: int) =
        batches
        |> Array.filter (fun b -> b.Round <= round)
        |> Array.sumBy (fun b -> b.Items.Length)

    let recordProblem =
        progress.Records
        |> List.tryPick (fun r ->
            let after =
                batches
                |> Array.tryFind (fun b -> b.Round = r.Round + 1)
                |> Option.map (fun b -> b.Items |> Array.map fst)
                |> Option.defaultValue [||]

            if r.Labelled <> labelledBefore r.Round then
                Some
                    $"records[{r.Round}].labelled: {r.Labelled}, but the label log gives {labelledBefore r.Round} labels before round {r.Round}"
            elif r.Queried <> after then
                Some $"records[{r.Round}].queried: not the batch the label log labelled after round {r.Round}"
            else
                None)

    match recordProblem, progress.Pending with
    | Some p, _ -> Some p
    | None, Some pending ->
        let r = pending.Record

        if r.Round <> progress.Records.Length then
            Some $"pending.round: expected {progress.Records.Length}, found {r.Round}"
        elif r.Labelled <> progress.Pool.LabelledCount then
            Some $"pending.labelled: expected {progress.Pool.LabelledCount}, found {r.Labelled}"
        else
            match Round.checkQuery progress.Pool r.Queried.Length r.Queried with
            | Error detail when r.Queried.Length > 0 -> Some $"pending.queried: {detail}"
            | Error _ -> Some "pending.queried: empty"
            | Ok _ -> None
    | None, None ->
        let later = batches |> Array.filter (fun b -> b.Round > progress.Records.Length)

        if later.Length > 0 then
            Some
                $"labelLog: a batch of round {later[0].Round} lies beyond the {progress.Records.Length} completed round(s)"
        else
            None

/// A value no run writes: an accuracy outside [0, 1] (or infinite), a negative or infinite time, a negative
/// iteration count, a predicted class outside the pool's classes, stop-set predictions of different lengths or
/// longer than the pool. The first, or None.
let private outOfRange (progress: Progress) =
    let records =
        progress.Records
        @ (progress.Pending |> Option.map (fun p -> p.Record) |> Option.toList)

    let lengths =
        records
        |> List.map (fun r -> r.StopPredictions.Length)
        |> List.filter (fun n -> n > 0)
        |> List.distinct

    let field (r: RoundRecord) =
        let where = $"records[{r.Round}]"

        let time (name: string) (v: float) =
            if Double.IsFinite v && v >= 0.0 then
                None
            else
                Some $"{where}.{name}: expected a number of seconds >= 0, found {Options.formatNumber v}"

        [
            if
                not (Double.IsNaN r.TestAccuracy)
                && not (r.TestAccuracy >= 0.0 && r.TestAccuracy <= 1.0)
            then
                Some
                    $"{where}.testAccuracy: expected a fraction in [0, 1] or null, found {Options.formatNumber r.TestAccuracy}"
            if
                not (Double.IsNaN r.ValidationAccuracy)
                && not (r.ValidationAccuracy >= 0.0 && r.ValidationAccuracy <= 1.0)
            then
                Some
                    $"{where}.validationAccuracy: expected a fraction in [0, 1], found {Options.formatNumber r.ValidationAccuracy}"
            time "trainSeconds" r.TrainSeconds
            time "querySeconds" r.QuerySeconds
            time "evalSeconds" r.EvalSeconds
            if r.TrainIterations < 0L then
                Some $"{where}.trainIterations: expected an integer >= 0, found {r.TrainIterations}"
            match
                r.StopPredictions
                |> Array.tryFind (fun c -> c < 0 || c >= progress.Pool.Classes)
            with
            | Some c -> Some $"{where}.stopPredictions: class {c} is outside 0..{progress.Pool.Classes - 1}"
            | None -> ()
        ]
        |> List.tryPick id

    match records |> List.tryPick field with
    | Some problem -> Some problem
    | None ->
        match lengths with
        | [] -> None
        | [ n ] when n <= progress.Pool.Size -> None
        | [ n ] -> Some $"stopPredictions: {n} predictions for a pool of {progress.Pool.Size}"
        | _ ->
            let shown = String.Join(", ", lengths)
            Some $"stopPredictions: every round predicts the same stop set, found lengths {shown}"

/// The stop set's predictions in progress.json have the length of the spec's stop set (min(stop-set, pool)).
let checkStopSet (stopSet: int) (path: string) (progress: Progress) : Result<Progress, string> =
    let expected = min stopSet progress.Pool.Size

    match
        (progress.Records
         @ (progress.Pending |> Option.map (fun p -> p.Record) |> Option.toList))
        |> List.tryFind (fun r -> r.StopPredictions.Length > 0 && r.StopPredictions.Length <> expected)
    with
    | Some r ->
        Error
            $"{path}: records[{r.Round}].stopPredictions: expected {expected} (the spec's stop set), found {r.StopPredictions.Length}"
    | None -> Ok progress

/// Reads progress.json back into the pool (replayed from its label log), the records and the pending batch;
/// every field read back is checked against the label log.
let readProgress (path: string) : Result<Progress, string> =
    match Files.readBytes "progress.json" Files.Limits.documentBytes path with
    | Error e -> Error $"{path}: {DataError.message e}"
    | Ok bytes ->

        try
            use doc = JsonDocument.Parse bytes
            let root = doc.RootElement

            let named (r: JsonElement) (field: string) =
                match r.TryGetProperty field with
                | true, o when o.ValueKind = JsonValueKind.Object ->
                    [
                        for p in o.EnumerateObject() ->
                            p.Name,
                            (if p.Value.ValueKind = JsonValueKind.Null then
                                 Double.NaN
                             else
                                 p.Value.GetDouble())
                    ]
                | _ -> []

            let record (r: JsonElement) =
                {
                    Round = r.GetProperty("round").GetInt32()
                    Labelled = r.GetProperty("labelled").GetInt32()
                    TestAccuracy =
                        match r.GetProperty "testAccuracy" with
                        | a when a.ValueKind = JsonValueKind.Null -> Double.NaN
                        | a -> a.GetDouble()
                    ValidationAccuracy =
                        match r.TryGetProperty "validationAccuracy" with
                        | true, a when a.ValueKind = JsonValueKind.Number -> a.GetDouble()
                        | _ -> Double.NaN
                    TrainSeconds = r.GetProperty("trainSeconds").GetDouble()
                    QuerySeconds = r.GetProperty("querySeconds").GetDouble()
                    EvalSeconds = r.GetProperty("evalSeconds").GetDouble()
                    TrainIterations = r.GetProperty("trainIterations").GetInt64()
                    Queried = [| for i in r.GetProperty("queried").EnumerateArray() -> i.GetInt32() |]
                    // Files written before signals (or stopping) existed have none.
                    Signals = named r "signals"
                    StopSignals = named r "stopSignals"
                    StopPredictions =
                        match r.TryGetProperty "stopPredictions" with
                        | true, a when a.ValueKind = JsonValueKind.Array ->
                            [| for c in a.EnumerateArray() -> c.GetInt32() |]
                        | _ -> [||]
                    Stopped =
                        match r.TryGetProperty "stopped" with
                        | true, v when v.ValueKind = JsonValueKind.String -> Some(v.GetString())
                        | _ -> None
                }

            let records = [ for r in root.GetProperty("records").EnumerateArray() -> record r ]

            // Files written before the pending batch was persisted have no "pending" field.
            let pending =
                match root.TryGetProperty "pending" with
                | true, p when p.ValueKind <> JsonValueKind.Null -> Some { Record = record p }
                | _ -> None

            let logBytes = Encoding.UTF8.GetBytes(root.GetProperty("labelLog").GetRawText())

            LabelLogJson.ofBytes logBytes
            |> Result.bind Pool.ofLog
            |> Result.mapError (fun e -> $"{path}: {Errors.poolMessage e}")
            |> Result.bind (fun pool ->
                if records |> List.mapi (fun i r -> r.Round = i) |> List.forall id then
                    let progress =
                        {
                            Pool = pool
                            Records = records
                            Pending = pending
                        }

                    match contradiction progress |> Option.orElse (outOfRange progress) with
                    | Some detail -> Error $"{path}: {detail}"
                    | None -> Ok progress
                else
                    Error $"{path}: records: expected rounds 0, 1, 2, ... in order")
        with
        | :? JsonException as e -> Error $"{path}: not valid JSON ({e.Message})"
        | :? KeyNotFoundException as e -> Error $"{path}: a field is missing ({e.Message})"
        | :? InvalidOperationException as e -> Error $"{path}: a field has the wrong type ({e.Message})"
        | :? FormatException as e -> Error $"{path}: a number is out of range ({e.Message})"
