namespace Waal.Core

open System
open System.IO
open System.Text
open System.Text.Json

/// One entry of the label log: the (index, label) pairs given together in one round, in the order given. (A
/// batch a person is labelling on the page, one label at a time, is a `BatchLabels`.)
type LoggedBatch = { Round: int; Items: (int * int)[] }

/// The append-only record of every label given to a pool; the pool state is rebuilt from it exactly.
type LabelLog =
    {
        PoolSize: int
        Classes: int
        /// Oldest first.
        Batches: LoggedBatch list
    }

/// The immutable state of an active-learning pool: which items carry which label. Built only through
/// `Pool.create` and `Pool.label`, so labelled and unlabelled always partition 0 .. size-1.
[<Sealed>]
type Pool internal (size: int, classes: int, labels: int[], labelledCount: int, batches: LoggedBatch list) =
    // labels[i] = -1 while i is unlabelled. Never mutated after construction: transitions copy it.
    member internal _.Labels = labels
    /// Newest first (a transition conses onto it).
    member internal _.BatchesNewestFirst = batches
    /// The number of items in the pool.
    member _.Size = size
    /// The number of classes labels are drawn from.
    member _.Classes = classes
    /// How many items carry a label.
    member _.LabelledCount = labelledCount
    /// How many items do not.
    member _.UnlabelledCount = size - labelledCount

    override this.Equals(other) =
        match other with
        | :? Pool as p ->
            p.Size = size
            && p.Classes = classes
            && p.Labels.AsSpan().SequenceEqual(ReadOnlySpan labels)
            && p.BatchesNewestFirst = batches
        | _ -> false

    override _.GetHashCode() =
        HashCode.Combine(size, classes, labelledCount)

    override _.ToString() =
        $"Pool(size={size}, classes={classes}, labelled={labelledCount})"

/// Transitions and queries over `Pool`.
[<RequireQualifiedAccess>]
module Pool =
    /// An empty pool of `size` items whose labels lie in 0 .. classes-1.
    let create (size: int) (classes: int) : Result<Pool, PoolError> =
        if size < 0 || classes < 1 then
            Error(InvalidPool(size, classes))
        else
            Ok(Pool(size, classes, Array.create size -1, 0, []))

    /// True when item `index` carries a label.
    let isLabelled (pool: Pool) (index: int) = pool.Labels[index] >= 0

    /// The label of item `index`, if it has one.
    let labelOf (pool: Pool) (index: int) =
        let l = pool.Labels[index]
        if l >= 0 then Some l else None

    /// The labelled indices, ascending.
    let labelled (pool: Pool) =
        let l = pool.Labels
        Array.init pool.Size id |> Array.filter (fun i -> l[i] >= 0)

    /// The unlabelled indices, ascending.
    let unlabelled (pool: Pool) =
        let l = pool.Labels
        Array.init pool.Size id |> Array.filter (fun i -> l[i] < 0)

    /// The labels of the labelled indices, in the order of `labelled`.
    let labelsOfLabelled (pool: Pool) =
        labelled pool |> Array.map (fun i -> pool.Labels[i])

    /// `count` unlabelled indices drawn uniformly without replacement from the keyed stream (the initial set,
    /// or the random strategy's batch): all of them when fewer remain.
    let draw (key: Rng.Key) (count: int) (pool: Pool) = Rng.sample key count (unlabelled pool)

    /// Labels a batch of (index, label) pairs given in `round`. Refused, with the pool unchanged, when the
    /// batch is empty, an index is out of range or already labelled or repeated, or a label is out of range.
    let label (round: int) (items: (int * int)[]) (pool: Pool) : Result<Pool, PoolError> =
        if items.Length = 0 then
            Error(EmptyBatch round)
        else
            let next = Array.copy pool.Labels
            let mutable error = None
            let mutable i = 0

            while error.IsNone && i < items.Length do
                let index, lab = items[i]

                error <-
                    if index < 0 || index >= pool.Size then
                        Some(IndexOutOfRange(index, pool.Size))
                    elif lab < 0 || lab >= pool.Classes then
                        Some(LabelOutOfRange(index, lab, pool.Classes))
                    elif pool.Labels[index] >= 0 then
                        Some(AlreadyLabelled index)
                    elif next[index] >= 0 then
                        Some(DuplicateInBatch index)
                    else
                        next[index] <- lab
                        None

                i <- i + 1

            match error with
            | Some e -> Error e
            | None ->
                let batch =
                    {
                        Round = round
                        Items = Array.copy items
                    }

                Ok(
                    Pool(
                        pool.Size,
                        pool.Classes,
                        next,
                        pool.LabelledCount + items.Length,
                        batch :: pool.BatchesNewestFirst
                    )
                )

    /// The label log of everything this pool was given, oldest batch first.
    let log (pool: Pool) =
        {
            PoolSize = pool.Size
            Classes = pool.Classes
            Batches = List.rev pool.BatchesNewestFirst
        }

    /// Rebuilds the pool from its log by replaying every batch; fails on the first batch that does not apply.
    let ofLog (log: LabelLog) : Result<Pool, PoolError> =
        let folder state batch =
            state |> Result.bind (label batch.Round batch.Items)

        List.fold folder (create log.PoolSize log.Classes) log.Batches

/// What a pool's indices and labels stand for: one name per class and, when the items are files, one path per
/// item (relative to the dataset's folder; empty otherwise).
type Naming =
    {
        ClassNames: string[]
        Files: string[]
    }

/// The label log as JSON: `{"poolSize":N,"classes":K,"batches":[{"round":r,"items":[[index,label],...]},...]}`.
[<RequireQualifiedAccess>]
module LabelLogJson =
    /// Writes the log as compact JSON (one line, UTF-8). With a naming, the log also lists the class names and
    /// each item reads [index, label, path, class name] (path null when the items are not files); readers take
    /// the first two elements.
    let toBytesNamed (naming: Naming option) (log: LabelLog) : byte[] =
        use stream = new MemoryStream()
        use w = new Utf8JsonWriter(stream)
        w.WriteStartObject()
        w.WriteNumber("poolSize", log.PoolSize)
        w.WriteNumber("classes", log.Classes)

        match naming with
        | Some n ->
            w.WriteStartArray("classNames")

            for c in n.ClassNames do
                w.WriteStringValue c

            w.WriteEndArray()
        | None -> ()

        w.WriteStartArray("batches")

        for b in log.Batches do
            w.WriteStartObject()
            w.WriteNumber("round", b.Round)
            w.WriteStartArray("items")

            for index, lab in b.Items do
                w.WriteStartArray()
                w.WriteNumberValue index
                w.WriteNumberValue lab

                match naming with
                | Some n ->
                    if index < n.Files.Length then
                        w.WriteStringValue n.Files[index]
                    else
                        w.WriteNullValue()

                    if lab < n.ClassNames.Length then
                        w.WriteStringValue n.ClassNames[lab]
                    else
                        w.WriteNullValue()
                | None -> ()

                w.WriteEndArray()

            w.WriteEndArray()
            w.WriteEndObject()

        w.WriteEndArray()
        w.WriteEndObject()
        w.Flush()
        stream.ToArray()

    /// Writes the log as compact JSON, items as [index, label].
    let toBytes (log: LabelLog) : byte[] = toBytesNamed None log

    /// The log as a JSON string.
    let toString (log: LabelLog) = Encoding.UTF8.GetString(toBytes log)

    let private field (name: string) (detail: string) = Error(MalformedLog(name, detail))

    let private int32Of (path: string) (e: JsonElement) =
        match e.ValueKind with
        | JsonValueKind.Number ->
            match e.TryGetInt32() with
            | true, v -> Ok v
            | _ -> field path $"expected a 32-bit integer, found {e.GetRawText()}"
        | kind -> field path $"expected a number, found {kind}"

    let private property (path: string) (name: string) (e: JsonElement) =
        match e.TryGetProperty name with
        | true, v -> Ok v
        | _ -> field $"{path}{name}" "missing"

    let private traverse (f: int -> 'a -> Result<'b, PoolError>) (items: 'a seq) =
        let out = ResizeArray()
        let mutable error = None
        use e = items.GetEnumerator()
        let mutable i = 0

        while error.IsNone && e.MoveNext() do
            match f i e.Current with
            | Ok v -> out.Add v
            | Error err -> error <- Some err

            i <- i + 1

        match error with
        | Some err -> Error err
        | None -> Ok(out.ToArray())

    let private arrayOf (path: string) (e: JsonElement) =
        if e.ValueKind = JsonValueKind.Array then
            Ok(e.EnumerateArray() |> Seq.toArray)
        else
            field path $"expected an array, found {e.ValueKind}"

    let private item (path: string) (e: JsonElement) =
        arrayOf path e
        |> Result.bind (fun pair ->
            if pair.Length <> 2 && pair.Length <> 4 then
                field path $"expected [index, label] or [index, label, path, class], found {pair.Length} elements"
            else
                int32Of $"{path}[0]" pair[0]
                |> Result.bind (fun index -> int32Of $"{path}[1]" pair[1] |> Result.map (fun lab -> index, lab)))

    let private batch (i: int) (e: JsonElement) =
        let path = $"batches[{i}]."

        property path "round" e
        |> Result.bind (int32Of $"{path}round")
        |> Result.bind (fun round ->
            property path "items" e
            |> Result.bind (arrayOf $"{path}items")
            |> Result.bind (traverse (fun j x -> item $"{path}items[{j}]" x))
            |> Result.map (fun items -> { Round = round; Items = items }))

    /// Reads a log written by `toBytes`; a malformed document is a `MalformedLog` naming the field.
    /// The log is only parsed here: `Pool.ofLog` checks that its batches apply.
    let ofBytes (bytes: byte[]) : Result<LabelLog, PoolError> =
        let parsed =
            try
                Ok(JsonDocument.Parse(ReadOnlyMemory bytes))
            with :? JsonException as e ->
                field "document" $"not valid JSON ({e.Message})"

        parsed
        |> Result.bind (fun doc ->
            use doc = doc
            let root = doc.RootElement

            if root.ValueKind <> JsonValueKind.Object then
                field "document" $"expected an object, found {root.ValueKind}"
            else
                property "" "poolSize" root
                |> Result.bind (int32Of "poolSize")
                |> Result.bind (fun size ->
                    property "" "classes" root
                    |> Result.bind (int32Of "classes")
                    |> Result.bind (fun classes ->
                        property "" "batches" root
                        |> Result.bind (arrayOf "batches")
                        |> Result.bind (traverse batch)
                        |> Result.map (fun batches ->
                            {
                                PoolSize = size
                                Classes = classes
                                Batches = List.ofArray batches
                            }))))

    /// Reads a log from a JSON string.
    let ofString (text: string) = ofBytes (Encoding.UTF8.GetBytes text)
