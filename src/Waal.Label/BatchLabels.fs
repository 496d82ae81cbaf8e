namespace Waal.Label

open System
open Waal.Core
open System.IO
open System.Text
open System.Text.Json

/// Where a batch being labelled by a person came from: the initial random draw (labels go in outside a round),
/// a round's query (labels complete the round), or the images offered while the model trains (the previous
/// model's least sure, or a random draw before any model; their labels go in as extra labels).
type BatchKind =
    | InitialBatch
    | QueryBatch
    | PrefetchBatch

/// A batch a person is labelling, one label at a time: the labels given so far, the order the remaining items
/// are asked in (a skipped item goes to the end: asked again later) and what undo takes back. Pure values; the
/// labelling page persists one after every change, so a label given is never lost.
type BatchLabels =
    {
        Round: int
        Kind: BatchKind
        /// The batch, in query order.
        Indices: int[]
        /// The labels given so far, by pool index (one per index: labelling again replaces).
        Labels: Map<int, int>
        /// The batch in asking order (query order, skipped items moved to the end).
        Order: int list
        /// What was done, latest first: each label with the label it replaced (undo restores it).
        History: (int * int option) list
    }

/// Why a labelling request was refused.
type LabellingError =
    /// The index is not an item of the batch being labelled.
    | NotInBatch of index: int
    /// The class is outside 0 .. classes-1.
    | NoSuchClass of label: int * classes: int
    | NothingToUndo

/// The labelling transitions and their persisted form.
module BatchLabels =
    /// A batch with nothing labelled yet.
    let start (round: int) (kind: BatchKind) (indices: int[]) =
        {
            Round = round
            Kind = kind
            Indices = Array.copy indices
            Labels = Map.empty
            Order = List.ofArray indices
            History = []
        }

    let private member' (b: BatchLabels) (index: int) = Array.contains index b.Indices

    /// Labels one item (again, if it had a label: the new one replaces it).
    let give (classes: int) (index: int) (label: int) (b: BatchLabels) : Result<BatchLabels, LabellingError> =
        if not (member' b index) then
            Error(NotInBatch index)
        elif label < 0 || label >= classes then
            Error(NoSuchClass(label, classes))
        else
            Ok
                { b with
                    Labels = Map.add index label b.Labels
                    History = (index, Map.tryFind index b.Labels) :: b.History
                }

    /// Takes back the last label given (restoring the one it replaced, if any).
    let undo (b: BatchLabels) : Result<BatchLabels, LabellingError> =
        match b.History with
        | [] -> Error NothingToUndo
        | (index, previous) :: rest ->
            let labels =
                match previous with
                | Some l -> Map.add index l b.Labels
                | None -> Map.remove index b.Labels

            Ok
                { b with
                    Labels = labels
                    History = rest
                }

    /// "Not sure": the item is asked again after every other item of the batch.
    let skip (index: int) (b: BatchLabels) : Result<BatchLabels, LabellingError> =
        if not (member' b index) then
            Error(NotInBatch index)
        else
            Ok
                { b with
                    Order = (b.Order |> List.filter ((<>) index)) @ [ index ]
                }

    /// The item to ask next: the first unlabelled item in asking order.
    let next (b: BatchLabels) =
        b.Order |> List.tryFind (fun i -> not (b.Labels.ContainsKey i))

    /// True when every item of the batch has a label.
    let isComplete (b: BatchLabels) = b.Labels.Count = b.Indices.Length

    /// The (index, label) pairs given, in query order.
    let pairs (b: BatchLabels) =
        b.Indices
        |> Array.choose (fun i -> Map.tryFind i b.Labels |> Option.map (fun l -> i, l))

    /// One line for a refusal.
    let message (e: LabellingError) =
        match e with
        | NotInBatch i -> $"index {i} is not in the batch being labelled"
        | NoSuchClass(l, classes) -> $"class {l} is outside 0..{classes - 1}"
        | NothingToUndo -> "nothing to undo in this batch"

    /// The kind's name in batch.json and the page's state.
    let kindName (kind: BatchKind) =
        match kind with
        | InitialBatch -> "initial"
        | QueryBatch -> "query"
        | PrefetchBatch -> "prefetch"

    /// The items of a batch that satisfy `keep`, with their labels and history, as a batch of its own; None
    /// when no item is kept.
    let keep (keep: int -> bool) (b: BatchLabels) =
        let indices = b.Indices |> Array.filter keep

        if indices.Length = 0 then
            None
        else
            Some
                { b with
                    Indices = indices
                    Labels = b.Labels |> Map.filter (fun i _ -> keep i)
                    Order = b.Order |> List.filter keep
                    History = b.History |> List.filter (fun (i, _) -> keep i)
                }

    /// The batch as compact JSON (UTF-8).
    let toJson (b: BatchLabels) : string =
        use stream = new MemoryStream()

        do
            use w = new Utf8JsonWriter(stream)
            w.WriteStartObject()
            w.WriteString("format", "waal-batch/1")
            w.WriteNumber("round", b.Round)

            w.WriteString("kind", kindName b.Kind)

            let ints (name: string) (xs: int seq) =
                w.WriteStartArray name

                for x in xs do
                    w.WriteNumberValue x

                w.WriteEndArray()

            ints "indices" b.Indices
            ints "order" b.Order
            w.WriteStartArray "labels"

            for i, l in pairs b do
                w.WriteStartArray()
                w.WriteNumberValue i
                w.WriteNumberValue l
                w.WriteEndArray()

            w.WriteEndArray()
            w.WriteStartArray "history"

            for i, previous in b.History do
                w.WriteStartArray()
                w.WriteNumberValue i

                match previous with
                | Some l -> w.WriteNumberValue l
                | None -> w.WriteNullValue()

                w.WriteEndArray()

            w.WriteEndArray()
            w.WriteEndObject()

        Encoding.UTF8.GetString(stream.ToArray())

    /// Reads `toJson`'s form back, checking that it describes one consistent batch of a pool of `poolSize` with
    /// `classes` classes; the error says what is wrong.
    let ofJson (poolSize: int) (classes: int) (text: string) : Result<BatchLabels, string> =
        let check condition (why: string) = if condition then Ok() else Error why

        let int (what: string) (e: JsonElement) =
            match e.ValueKind with
            | JsonValueKind.Number ->
                match e.TryGetInt32() with
                | true, v -> Ok v
                | _ -> Error $"{what}: {e.GetRawText()} is not a 32-bit integer"
            | kind -> Error $"{what}: expected an integer, found {kind}"

        let rec all (f: JsonElement -> Result<'a, string>) (items: JsonElement list) acc =
            match items with
            | [] -> Ok(List.rev acc)
            | e :: rest -> f e |> Result.bind (fun v -> all f rest (v :: acc))

        let array (what: string) (e: JsonElement) =
            if e.ValueKind = JsonValueKind.Array then
                Ok(List.ofSeq (e.EnumerateArray()))
            else
                Error $"'{what}' is not an array"

        /// A [index, label] pair; the label may be null where `nullable`.
        let pair (what: string) (nullable: bool) (e: JsonElement) =
            if e.ValueKind <> JsonValueKind.Array || e.GetArrayLength() <> 2 then
                Error $"a {what} entry is not a pair"
            else
                result {
                    let! i = int $"{what} index" e[0]

                    let! l =
                        if nullable && e[1].ValueKind = JsonValueKind.Null then
                            Ok None
                        else
                            int $"{what} label" e[1] |> Result.map Some

                    return i, l
                }

        let read (root: JsonElement) =
            let prop (name: string) =
                match root.TryGetProperty name with
                | true, v -> Ok v
                | _ -> Error $"'{name}' is missing"

            let ints (name: string) =
                prop name
                |> Result.bind (array name)
                |> Result.bind (fun items -> all (int $"'{name}'") items [])
                |> Result.map Array.ofList

            let pairs (name: string) (what: string) (nullable: bool) =
                prop name
                |> Result.bind (array name)
                |> Result.bind (fun items -> all (pair what nullable) items [])

            result {
                let! format = prop "format"

                do!
                    check
                        (format.ValueKind = JsonValueKind.String && format.GetString() = "waal-batch/1")
                        "'format' is not waal-batch/1"

                let! round = prop "round" |> Result.bind (int "'round'")
                let! kindText = prop "kind"

                let! kind =
                    match
                        (if kindText.ValueKind = JsonValueKind.String then
                             kindText.GetString()
                         else
                             kindText.GetRawText())
                    with
                    | "initial" -> Ok InitialBatch
                    | "query" -> Ok QueryBatch
                    | "prefetch" -> Ok PrefetchBatch
                    | k -> Error $"'kind' is '{k}', expected initial, query or prefetch"

                let! indices = ints "indices"
                let! order = ints "order"
                let! labels = pairs "labels" "label" false
                let labels = labels |> List.map (fun (i, l) -> i, Option.get l)
                let! history = pairs "history" "history" true
                let inBatch = Set.ofArray indices
                do! check (indices.Length > 0) "the batch is empty"
                do! check (inBatch.Count = indices.Length) "'indices' repeats an index"

                do!
                    match indices |> Array.tryFind (fun i -> i < 0 || i >= poolSize) with
                    | Some i -> Error $"index {i} is outside the pool of {poolSize}"
                    | None -> Ok()

                do!
                    check
                        (Set.ofArray order = inBatch && order.Length = indices.Length)
                        "'order' is not the batch's indices"

                do!
                    match
                        labels
                        |> List.tryFind (fun (i, l) -> not (inBatch.Contains i) || l < 0 || l >= classes)
                    with
                    | Some(i, _) when not (inBatch.Contains i) ->
                        Error $"label for index {i}, which is not in the batch"
                    | Some(i, l) -> Error $"label {l} of index {i} is outside 0..{classes - 1}"
                    | None -> Ok()

                do!
                    match
                        history
                        |> List.tryFind (fun (i, l) ->
                            not (inBatch.Contains i)
                            || (l |> Option.exists (fun l -> l < 0 || l >= classes)))
                    with
                    | Some(i, _) when not (inBatch.Contains i) ->
                        Error $"history names index {i}, which is not in the batch"
                    | Some(_, l) -> Error $"history label {l.Value} is outside 0..{classes - 1}"
                    | None -> Ok()

                return
                    {
                        Round = round
                        Kind = kind
                        Indices = indices
                        Labels = Map.ofList labels
                        Order = List.ofArray order
                        History = history
                    }
            }

        try
            use doc = JsonDocument.Parse text

            if doc.RootElement.ValueKind <> JsonValueKind.Object then
                Error "expected a JSON object"
            else
                read doc.RootElement
        with :? JsonException as e ->
            Error $"not valid JSON ({e.Message})"
