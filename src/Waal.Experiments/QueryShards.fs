/// The next query of a run folder, over its last trained networks (checkpoint/latest) and its pool as labelled so
/// far, in one process or split into shards (Waal.Strategies.Sharding; docs/cluster.md): `waal query`. A shard
/// file holds its items' per-item terms; the merge checks that every shard of the same state is there, puts them
/// together in pool order and picks the batch as one process would.
module Waal.Experiments.QueryShards

open System
open System.IO
open System.Security.Cryptography
open System.Text
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Strategies

/// A run folder opened for querying: the workbench, the last trained networks, the pool and the round.
[<Sealed>]
type Opened
    internal
    (
        folder: string,
        bench: Workbench.Workbench,
        nets: Nets.Networks,
        pool: Pool,
        round: int,
        sharded: Sharding.Sharded,
        state: string,
        sink: ProgressSink
    ) =
    let unlabelled = Pool.unlabelled pool

    /// The run folder.
    member _.Folder = folder
    /// The round of the networks (checkpoint/latest): the round the query belongs to.
    member _.Round = round
    /// The unlabelled pool items, in the order every shard and the merge use.
    member _.Unlabelled = unlabelled
    /// The batch size: the spec's query, or what is left.
    member _.K = min bench.Config.Spec.Query unlabelled.Length
    /// The strategy's name.
    member _.Strategy = bench.Config.Spec.Strategy
    /// What a shard's terms must have been computed from: the spec, the networks' sums and the label log.
    member _.State = state
    /// Images per forward pass: shards are cut at multiples of it.
    member _.ScoreBatch = bench.Config.Settings.ScoreBatch
    member internal _.Sharded = sharded
    member internal _.Context = bench.Context sink
    member internal _.Nets = nets
    member internal _.Pool = pool

    interface IDisposable with
        member _.Dispose() =
            (nets :> IDisposable).Dispose()
            (bench :> IDisposable).Dispose()

let private sha256Hex (parts: byte[] list) =
    use h = IncrementalHash.CreateHash HashAlgorithmName.SHA256

    for p in parts do
        h.AppendData p

    Convert.ToHexString(h.GetHashAndReset()).ToLowerInvariant()

/// The spec of the run in `folder`, its strategy's sharded form and its last trained networks' folder and round,
/// checked without reading any data. Refused by name: a folder that is no run, a run with no trained round, a
/// strategy that does not shard exactly (kcenter, kmeans, badge, dfal: they need one process, docs/cluster.md).
let checkRun (folder: string) : Result<Configuration * Sharding.Sharded * string * int, ExperimentError> =
    let layout = { RunFolder.Layout.Folder = folder }
    let latest = Path.Combine(layout.Checkpoint, "latest")

    if not (Directory.Exists folder) then
        Error(NotAnExperiment(folder, "no such folder"))
    elif not (File.Exists layout.Spec) then
        Error(NotAnExperiment(layout.Spec, "missing: this folder holds no experiment"))
    elif not (File.Exists latest) then
        Error(NotAnExperiment(latest, "missing: the run has no trained round yet"))
    else
        result {
            let! config =
                RunFolder.readSpecResolved layout
                |> Result.mapError (fun detail -> NotAnExperiment(layout.Spec, detail))

            let! sharded =
                match Sharding.tryFind config.Spec.Strategy with
                | Some s -> Ok s
                | None ->
                    let exact = Sharding.exact |> List.map fst |> String.concat ", "

                    Error(
                        NotAnExperiment(
                            layout.Spec,
                            $"strategy '{config.Spec.Strategy}' does not query in shards (it needs the whole pool in one process); those that do: {exact}"
                        )
                    )

            let! weights, round =
                Model.latestRound layout
                |> Result.mapError (function
                    | Model.NotAModel(path, detail) -> NotAnExperiment(path, detail)
                    | e -> NotAnExperiment(latest, Model.ModelError.line e))

            return config, sharded, weights, round
        }

/// Opens `folder` (a run with at least one trained round) for its next query: `checkRun`, then the data, the
/// label state and the networks' weights (an unreadable checkpoint is refused by name).
let openRun (folder: string) (sink: ProgressSink) : Result<Opened, ExperimentError> =
    let layout = { RunFolder.Layout.Folder = folder }

    result {
        let! config, sharded, weights, round = checkRun folder
        let! inputs = Workbench.load config

        let! progress =
            RunFolder.readState layout inputs.Config
            |> Result.mapError (fun detail -> NotAnExperiment(layout.Progress, detail))

        let! bench = Workbench.openOn sink inputs
        let nets = bench.NewNetworks()

        match Checkpoint.load weights nets with
        | Error(file, detail) ->
            (nets :> IDisposable).Dispose()
            (bench :> IDisposable).Dispose()
            return! Error(NotAnExperiment(file, detail))
        | Ok() ->
            let state =
                sha256Hex
                    [
                        File.ReadAllBytes layout.Spec
                        File.ReadAllBytes(Path.Combine(weights, Checkpoint.manifest))
                        LabelLogJson.toBytes (Pool.log progress.Pool)
                        BitConverter.GetBytes round
                    ]

            return new Opened(folder, bench, nets, progress.Pool, round, sharded, state, sink)
    }

/// The items of shard `shard` of `shards` (positions in `Unlabelled`, cut at whole score batches) and their terms.
let scoreShard (o: Opened) (shard: int) (shards: int) =
    let start, count = (Sharding.ranges o.Unlabelled.Length o.ScoreBatch shards)[shard]

    let items = Array.sub o.Unlabelled start count

    if count = 0 then
        // More shards than score batches: this one has nothing to score.
        items,
        {
            Sharding.Values = Array.init o.Sharded.TermNames.Length (fun _ -> [||])
            Sharding.Predicted = [||]
        }
    else
        items, o.Sharded.Terms o.Context o.Nets o.Round start items

/// The batch from every unlabelled item's terms (in `Unlabelled` order).
let pickFrom (o: Opened) (terms: Sharding.Terms) =
    o.Sharded.Pick o.Context o.Nets o.Pool o.Round o.K o.Unlabelled terms
    |> Result.mapError (fun e -> RoundFailed(o.Round, "query", e))

/// The batch in one process (the reference a merge equals).
let queryAll (o: Opened) =
    let _, terms = scoreShard o 0 1
    pickFrom o terms

// A shard file, little-endian: "WAALQS01", the state (64 hex characters), round, shard, shards, the unlabelled
// count, the shard's item count n, the term count t, then n item indices (int32), t x n terms (float64), and
// the predicted classes (int32; 0 or n of them).
let private magic = "WAALQS01"

/// Writes a shard's terms to `path` (AtomicFile: a temporary file renamed over it).
let writeShard (path: string) (o: Opened) (shard: int) (shards: int) (items: int[]) (terms: Sharding.Terms) =
    try
        AtomicFile.writeWith path (fun stream ->
            use w = new BinaryWriter(stream, Encoding.ASCII, true)
            w.Write(Encoding.ASCII.GetBytes magic)
            w.Write(Encoding.ASCII.GetBytes o.State)

            for v in
                [
                    o.Round
                    shard
                    shards
                    o.Unlabelled.Length
                    items.Length
                    terms.Values.Length
                    terms.Predicted.Length
                ] do
                w.Write v

            for i in items do
                w.Write i

            for values in terms.Values do
                for v in values do
                    w.Write v

            for p in terms.Predicted do
                w.Write p

            w.Flush()
            Ok())
    with
    | :? IOException
    | :? UnauthorizedAccessException as e -> Error(WriteFailed(path, e.Message))

/// One shard file as read.
type ShardFile =
    {
        File: string
        State: string
        Round: int
        Shard: int
        Shards: int
        Unlabelled: int
        Items: int[]
        Terms: Sharding.Terms
    }

/// Reads a shard file; a file that is not one, or is cut short, is refused by name.
let readShard (path: string) : Result<ShardFile, ExperimentError> =
    let refused detail = Error(ShardRefused(path, detail))

    match Files.openCapped "a query shard" Files.Limits.datasetBytes path with
    | Error e -> Error(DataFailed e)
    | Ok(stream, _) ->
        use stream = stream
        use r = new BinaryReader(stream)

        try
            let head = Encoding.ASCII.GetString(r.ReadBytes magic.Length)

            if head <> magic then
                refused $"not a query shard (it begins '{ClassNames.shown head}'; expected '{magic}')"
            else
                let state = Encoding.ASCII.GetString(r.ReadBytes 64)

                let round, shard, shards, total =
                    r.ReadInt32(), r.ReadInt32(), r.ReadInt32(), r.ReadInt32()

                let n, t, predicted = r.ReadInt32(), r.ReadInt32(), r.ReadInt32()

                if
                    shards < 1
                    || shard < 0
                    || shard >= shards
                    || n < 0
                    || t < 0
                    || t > 16
                    || n > total
                    || (predicted <> 0 && predicted <> n)
                then
                    refused
                        $"a malformed header (shard {shard} of {shards}, {n} items of {total}, {t} terms, {predicted} classes)"
                elif
                    stream.Length - stream.Position
                    <> int64 n * 4L * int64 (1 + (if predicted = n then 1 else 0))
                       + int64 n * 8L * int64 t
                then
                    refused $"its length does not match its header ({n} items, {t} terms): cut short or extended"
                else
                    let items = Array.init n (fun _ -> r.ReadInt32())
                    let values = Array.init t (fun _ -> Array.init n (fun _ -> r.ReadDouble()))
                    let classes = Array.init predicted (fun _ -> r.ReadInt32())

                    Ok
                        {
                            File = path
                            State = state
                            Round = round
                            Shard = shard
                            Shards = shards
                            Unlabelled = total
                            Items = items
                            Terms = { Values = values; Predicted = classes }
                        }
        with :? EndOfStreamException ->
            refused "cut short"

/// Merges shard files of this run's current state into its batch: exactly one file per shard 0..N-1, each
/// computed from the same spec, networks and labels (the state), covering the unlabelled pool in order.
let merge (o: Opened) (files: string list) : Result<int[], ExperimentError> =
    result {
        let! shards =
            files
            |> List.fold
                (fun acc f -> acc |> Result.bind (fun xs -> readShard f |> Result.map (fun s -> s :: xs)))
                (Ok [])
            |> Result.map (List.sortBy (fun s -> s.Shard))

        match shards with
        | [] -> return! Error(ShardRefused(o.Folder, "no shard files were given"))
        | first :: _ ->
            match shards |> List.tryFind (fun s -> s.State <> o.State || s.Round <> o.Round) with
            | Some s ->
                return!
                    Error(
                        ShardRefused(
                            s.File,
                            $"computed from another state of the run (round {s.Round}, state {s.State.Substring(0, 12)}...; the run is at round {o.Round}, state {o.State.Substring(0, 12)}...): score it again"
                        )
                    )
            | None ->
                let n = first.Shards
                let numbers = shards |> List.map (fun s -> s.Shard)

                if shards |> List.exists (fun s -> s.Shards <> n) then
                    return!
                        Error(ShardRefused(first.File, "the files come from splits into different numbers of shards"))
                elif numbers <> [ 0 .. n - 1 ] then
                    let missing =
                        Set.difference (set [ 0 .. n - 1 ]) (set numbers)
                        |> Seq.map string
                        |> String.concat ", "

                    let repeated =
                        numbers
                        |> List.countBy id
                        |> List.filter (fun (_, c) -> c > 1)
                        |> List.map (fst >> string)

                    let repeated = String.Join(", ", repeated)

                    return!
                        Error(
                            ShardRefused(
                                o.Folder,
                                $"expected shards 0 to {n - 1} once each; missing: [{missing}], repeated: [{repeated}]"
                            )
                        )
                else
                    let items = shards |> Seq.collect (fun s -> s.Items) |> Array.ofSeq

                    if items <> o.Unlabelled then
                        return! Error(ShardRefused(o.Folder, "the shards' items are not the unlabelled pool in order"))
                    else
                        return! pickFrom o (Sharding.concat (shards |> List.map (fun s -> s.Terms)))
    }

/// Writes the batch as JSON: the run, its round, the strategy and the indices in the order picked.
let writeBatch (path: string) (o: Opened) (indices: int[]) =
    let json =
        let items = String.Join(", ", indices)
        $"{{\n  \"round\": {o.Round},\n  \"strategy\": \"{o.Strategy}\",\n  \"state\": \"{o.State}\",\n  \"indices\": [{items}]\n}}\n"

    try
        AtomicFile.writeText path json
        Ok()
    with
    | :? IOException
    | :? UnauthorizedAccessException as e -> Error(WriteFailed(path, e.Message))
