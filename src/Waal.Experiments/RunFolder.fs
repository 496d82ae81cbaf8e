/// An experiment's folder. Every file is written atomically (a temporary file in the same folder, flushed to
/// disk, then renamed over the old one), so a kill at any instant leaves either the old or the new version.
/// progress.json is the source of truth for resuming (the label log and every completed round, in one file);
/// rounds.csv and labels.json are views of it, rewritten after it.
module Waal.Experiments.RunFolder

open System
open System.Globalization
open System.IO
open System.Text
open System.Text.Json
open System.Collections.Generic
open Waal.Core
open Waal.Data

/// The files of an experiment folder.
type Layout =
    {
        Folder: string
    }

    member l.Spec = Path.Combine(l.Folder, "spec.json")
    member l.Rounds = Path.Combine(l.Folder, "rounds.csv")
    member l.Labels = Path.Combine(l.Folder, "labels.json")
    member l.Progress = Path.Combine(l.Folder, "progress.json")
    member l.Diagnostics = Path.Combine(l.Folder, "diagnostics.csv")
    member l.Checkpoint = Path.Combine(l.Folder, "checkpoint")
    member l.Dataset = Path.Combine(l.Folder, "dataset.json")
    /// With --backbone: the backbone's file, hash and width and the head's input normalisation (for export).
    member l.Backbone = Path.Combine(l.Folder, "backbone.json")
    /// Held (an exclusive lock) by the one process writing the folder.
    member l.Lock = Path.Combine(l.Folder, ".lock")
    /// Where `run --force` keeps the experiment it replaces until the new one has written its first files.
    member l.Replaced = Path.Combine(l.Folder, ".replaced")

    /// The files (and the checkpoint folder) that make an experiment: what `run --force` replaces. progress.json
    /// comes first: it is moved aside first and written last of the new experiment's first files, so whether it
    /// is in the folder tells which experiment a folder killed in the middle of a replacement holds.
    member l.ExperimentFiles =
        [
            l.Progress
            l.Spec
            l.Dataset
            l.Backbone
            l.Rounds
            l.Labels
            l.Diagnostics
            l.Checkpoint
        ]

/// Removes temporary files that a killed writer left behind (`*.tmp` in the folder and below it); the files
/// they were meant to replace are intact, because a rename never happened.
let internal removeStaleTemporaries (folder: string) =
    if Directory.Exists folder then
        for f in Directory.GetFiles(folder, "*.tmp", SearchOption.AllDirectories) do
            File.Delete f

let private remove (path: string) =
    if File.Exists path then
        File.Delete path
    elif Directory.Exists path then
        Directory.Delete(path, true)

let private moveTo (source: string) (target: string) =
    if File.Exists source then
        File.Move(source, target)
    elif Directory.Exists source then
        Directory.Move(source, target)

/// Moves an experiment's files into .replaced/ (`run --force`): nothing is deleted until the new experiment has
/// written its first files (discardReplaced), and a failure before then puts them back (restoreReplaced). The
/// marker `.replaced/whole` says every file was moved, so that the new experiment may have begun writing.
let internal setAside (layout: Layout) =
    if
        layout.ExperimentFiles
        |> List.exists (fun f -> File.Exists f || Directory.Exists f)
    then
        Directory.CreateDirectory layout.Replaced |> ignore

        for f in layout.ExperimentFiles do
            moveTo f (Path.Combine(layout.Replaced, Path.GetFileName f))

        AtomicFile.writeText (Path.Combine(layout.Replaced, "whole")) ""

/// Puts back the experiment set aside. Once it was set aside whole, whatever the new experiment had written of
/// its files is removed first; before that, the folder still holds only the old experiment's files.
let internal restoreReplaced (layout: Layout) =
    if Directory.Exists layout.Replaced then
        let whole = File.Exists(Path.Combine(layout.Replaced, "whole"))

        for f in layout.ExperimentFiles do
            if whole then
                remove f

            moveTo (Path.Combine(layout.Replaced, Path.GetFileName f)) f

        Directory.Delete(layout.Replaced, true)

/// Deletes the experiment set aside: the new one has written its first files.
let internal discardReplaced (layout: Layout) = remove layout.Replaced

/// After a process was killed while replacing an experiment: the new experiment stays if it had written its
/// first files (progress.json, written last of them, is in the folder); otherwise the old one comes back.
let internal recoverReplaced (layout: Layout) =
    if Directory.Exists layout.Replaced then
        if File.Exists layout.Progress then
            discardReplaced layout
        else
            restoreReplaced layout

/// spec.json read back: the configuration, or "field: what is wrong" (the file unreadable, a field out of range,
/// an unknown field). Every reader of a run folder (resume, a session's load, export, the report, the desk) reads
/// it here; each says in its own error what the folder was expected to be.
let readSpec (layout: Layout) : Result<Configuration, string> =
    if not (File.Exists layout.Spec) then
        Error "missing"
    else
        Datasets.readSpecFile layout.Spec
        |> Result.mapError (fun errors ->
            let e = List.head errors
            $"{e.Field}: {e.Message}")

/// spec.json read back for continuing its run (resume, export, predict, query shards): a spec that says "auto"
/// takes the network it recorded as resolved (`networkResolved`), so a change of what "auto" picks never changes
/// the network of a run already made. Specs written before the field was recorded resolve "auto" as before.
let readSpecResolved (layout: Layout) : Result<Configuration, string> =
    readSpec layout
    |> Result.map (fun config ->
        if config.Spec.Network = "auto" || config.Spec.Network = "" then
            match Files.readText "spec.json" Files.Limits.documentBytes layout.Spec with
            | Ok text ->
                match SpecJson.resolvedNetwork text with
                | Some n ->
                    { config with
                        Spec = { config.Spec with Network = n }
                    }
                | None -> config
            | Error _ -> config
        else
            config)

/// Writes backbone.json: what a run with --backbone records about it (the model file, its hash with its
/// preparation, the embedding's width, the head's normalisation), indented, atomically.
let internal writeBackbone (layout: Layout) (r: Waal.Learning.Backbone.Recorded) =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
        Waal.Learning.Backbone.writeRecorded w r

    AtomicFile.write layout.Backbone (stream.ToArray())

/// backbone.json read back; a file that is missing, unreadable, not JSON or incomplete is refused as (file, what
/// is wrong).
let readBackbone (layout: Layout) : Result<Waal.Learning.Backbone.Recorded, string * string> =
    match Files.readText "backbone.json" Files.Limits.documentBytes layout.Backbone with
    | Error e -> Error(DataError.file e, DataError.message e)
    | Ok text ->
        try
            use doc = JsonDocument.Parse text

            Waal.Learning.Backbone.readRecorded doc.RootElement
            |> Result.mapError (fun detail -> layout.Backbone, detail)
        with :? JsonException as e ->
            Error(layout.Backbone, $"not valid JSON ({e.Message})")

/// The software versions spec.json records (empty when the file or field cannot be read).
let readVersions (layout: Layout) =
    match Files.readText "spec.json" Files.Limits.documentBytes layout.Spec with
    | Error _ -> []
    | Ok text ->
        try
            use spec = JsonDocument.Parse text

            match spec.RootElement.TryGetProperty "versions" with
            | true, v when v.ValueKind = JsonValueKind.Object ->
                v.EnumerateObject()
                |> Seq.map (fun p -> p.Name, p.Value.ToString())
                |> List.ofSeq
            | _ -> []
        with :? JsonException ->
            []

/// progress.json read back and checked against the label log and the spec's stop set.
let readState (layout: Layout) (config: Configuration) : Result<Progress, string> =
    if not (File.Exists layout.Progress) then
        Error "missing"
    else
        ProgressFile.readProgress layout.Progress
        |> Result.bind (ProgressFile.checkStopSet config.Spec.Stopping.StopSet layout.Progress)

/// dataset.json: the dataset's name and folder, class names, image shape, normalisation, the pool's and the
/// test split's sizes and files (relative to the folder), and the files skipped (with the error line).
let internal datasetJson
    (name: string)
    (folder: string)
    (pool: Dataset)
    (test: Dataset)
    (norm: Normalisation)
    (skipped: (string * string) list)
    =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))

        let strings (name: string) (values: string seq) =
            w.WriteStartArray name

            for v in values do
                w.WriteStringValue v

            w.WriteEndArray()

        let numbers (name: string) (values: float seq) =
            w.WriteStartArray name

            for v in values do
                w.WriteNumberValue v

            w.WriteEndArray()

        w.WriteStartObject()
        w.WriteString("dataset", name)
        w.WriteString("folder", folder)
        strings "classNames" pool.ClassNames
        w.WriteNumber("channels", pool.Channels)
        w.WriteNumber("height", pool.Height)
        w.WriteNumber("width", pool.Width)
        w.WriteStartObject "normalisation"
        numbers "mean" norm.Mean
        numbers "std" norm.Std
        w.WriteEndObject()
        w.WriteNumber("poolSize", pool.Count)
        w.WriteNumber("testSize", test.Count)
        w.WriteStartArray "skipped"

        for file, line in skipped do
            w.WriteStartObject()
            w.WriteString("file", file)
            w.WriteString("error", line)
            w.WriteEndObject()

        w.WriteEndArray()
        strings "poolFiles" pool.Files
        strings "testFiles" test.Files
        w.WriteEndObject()

    stream.ToArray()

/// Persists a progress: progress.json first (the truth), then its views labels.json and rounds.csv.
let internal saveProgress (layout: Layout) (naming: Naming option) (originals: int) (progress: Progress) =
    AtomicFile.write layout.Progress (ProgressFile.progressJson naming progress)
    AtomicFile.writeText layout.Diagnostics (RunCsv.diagnosticsCsv naming originals progress)
    AtomicFile.write layout.Labels (LabelLogJson.toBytesNamed naming (Pool.log progress.Pool))
    AtomicFile.writeText layout.Rounds (RunCsv.roundsCsv progress.Records)

/// The exclusive hold of one process on a results folder: released when disposed, or by the kernel when the
/// process dies (an advisory lock on RESULTS/.lock), so a killed run never leaves the folder locked.
type FolderLock(stream: FileStream) =
    interface IDisposable with
        member _.Dispose() = stream.Dispose()

/// Why a folder's lock was not taken.
type LockRefused =
    /// Another process holds it: which one, and what to do.
    | HeldBy of detail: string
    /// The folder or its lock file cannot be created or opened (a file in the way, no permission, no such place).
    | CannotLock of detail: string

/// Takes the folder's lock (creating the folder), or says which process holds it.
let lockFolder (layout: Layout) : Result<FolderLock, LockRefused> =
    let opened =
        try
            Directory.CreateDirectory layout.Folder |> ignore

            try
                // FileShare.None takes an exclusive flock on Unix: a second process cannot open the file this way.
                Ok(new FileStream(layout.Lock, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
            with
            | :? UnauthorizedAccessException as e -> Error(CannotLock e.Message)
            | :? IOException ->
                let holder =
                    match Files.readText "a process id" Files.Limits.shortTextBytes (layout.Lock + ".pid") with
                    | Ok pid -> $"process {pid.Trim()}"
                    | Error _ -> "another process"

                Error(
                    HeldBy
                        $"is in use by {holder} (a run or resume writing this folder); wait for it to finish or stop it"
                )
        with
        | :? IOException as e -> Error(CannotLock e.Message)
        | :? UnauthorizedAccessException as e -> Error(CannotLock e.Message)

    opened
    |> Result.bind (fun stream ->
        try
            // The holder's process id, for the message a second writer gets (the locked file itself is unreadable).
            AtomicFile.writeText (layout.Lock + ".pid") (string Environment.ProcessId)
            Ok(new FolderLock(stream))
        with
        | :? IOException as e ->
            stream.Dispose()
            Error(CannotLock e.Message)
        | :? UnauthorizedAccessException as e ->
            stream.Dispose()
            Error(CannotLock e.Message))
