namespace Waal.Core

open System
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
        try
            use doc = JsonDocument.Parse text
            let root = doc.RootElement

            let prop (name: string) =
                match root.TryGetProperty name with
                | true, v -> v
                | _ -> failwith $"'{name}' is missing"

            if root.ValueKind <> JsonValueKind.Object then
                failwith "expected a JSON object"

            if (prop "format").GetString() <> "waal-batch/1" then
                failwith "'format' is not waal-batch/1"

            let ints (name: string) =
                [|
                    for e in (prop name).EnumerateArray() do
                        e.GetInt32()
                |]

            let kind =
                match (prop "kind").GetString() with
                | "initial" -> InitialBatch
                | "query" -> QueryBatch
                | "prefetch" -> PrefetchBatch
                | k -> failwith $"'kind' is '{k}', expected initial, query or prefetch"

            let indices = ints "indices"
            let order = ints "order"

            let pair (e: JsonElement) =
                if e.ValueKind <> JsonValueKind.Array || e.GetArrayLength() <> 2 then
                    failwith "a label or history entry is not a pair"

                e[0].GetInt32(), e[1]

            let labels =
                [
                    for e in (prop "labels").EnumerateArray() do
                        let i, l = pair e
                        i, l.GetInt32()
                ]

            let history =
                [
                    for e in (prop "history").EnumerateArray() do
                        let i, l = pair e

                        i,
                        (if l.ValueKind = JsonValueKind.Null then
                             None
                         else
                             Some(l.GetInt32()))
                ]

            let inBatch = Set.ofArray indices

            if indices.Length = 0 then
                failwith "the batch is empty"

            if inBatch.Count <> indices.Length then
                failwith "'indices' repeats an index"

            match indices |> Array.tryFind (fun i -> i < 0 || i >= poolSize) with
            | Some i -> failwith $"index {i} is outside the pool of {poolSize}"
            | None -> ()

            if Set.ofArray order <> inBatch || order.Length <> indices.Length then
                failwith "'order' is not the batch's indices"

            for i, l in labels do
                if not (inBatch.Contains i) then
                    failwith $"label for index {i}, which is not in the batch"

                if l < 0 || l >= classes then
                    failwith $"label {l} of index {i} is outside 0..{classes - 1}"

            for i, l in history do
                if not (inBatch.Contains i) then
                    failwith $"history names index {i}, which is not in the batch"

                match l with
                | Some l when l < 0 || l >= classes -> failwith $"history label {l} is outside 0..{classes - 1}"
                | _ -> ()

            Ok
                {
                    Round = (prop "round").GetInt32()
                    Kind = kind
                    Indices = indices
                    Labels = Map.ofList labels
                    Order = List.ofArray order
                    History = history
                }
        with
        | :? JsonException as e -> Error $"not valid JSON ({e.Message})"
        | :? InvalidOperationException as e -> Error $"a field has the wrong type ({e.Message})"
        | :? FormatException as e -> Error $"a number is not a 32-bit integer ({e.Message})"
        | Failure m -> Error m
