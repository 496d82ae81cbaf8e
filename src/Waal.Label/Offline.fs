/// A session folder read without opening a session (no training, no networks): exports and imports while no
/// server runs.
module internal Waal.Label.Offline

open System
open System.IO
open Waal.Core
open Waal.Data
open Waal.Experiments
open Waal.Label.SessionFolder

/// A session folder as its files hold it. Holds the folder's lock until disposed.
type Offline =
    {
        Files: Files
        PoolImages: Dataset
        /// The images folder the pool's paths are relative to.
        Root: string
        /// The labels stored in the session (completed batches and seeded ones).
        Stored: (int * int)[]
        /// The batch being labelled, if any.
        Batch: BatchLabels option
        /// Labels given while the model trained, not stored yet.
        Held: (int * int)[]
        Lock: IDisposable
    }

    /// Every label given: the stored ones, the batch's, the held ones.
    member o.Labels =
        LabellingDesk.givenLabels o.Stored (o.Batch |> Option.map BatchLabels.pairs |> Option.defaultValue [||]) o.Held

    interface IDisposable with
        member o.Dispose() = o.Lock.Dispose()

/// Reads a session folder for an export or an import (refused while a server holds it).
let openOffline (folder: string) : Result<Offline, LabelError> =
    let files = Files(Path.GetFullPath folder)

    if not (File.Exists files.Label) then
        Error(SessionFile(files.Label, "missing; expected the folder of a 'waal label' session"))
    else
        lockSession files
        |> Result.bind (fun folderLock ->
            let opened =
                result {
                    let! config, source = readSession files.Folder
                    let! pool, _, _ = readData config source

                    let! progress =
                        RunFolder.readState files.Layout config
                        |> Result.mapError (fun m -> SessionFile(files.Layout.Progress, m))

                    let readBatch (path: string) =
                        if File.Exists path then
                            readBatchFile pool.Count pool.Classes path
                            |> Result.map Some
                            |> Result.mapError (fun m -> SessionFile(path, m))
                        else
                            Ok None

                    let! batch = readBatch files.Batch
                    let! prefetch = readBatch files.Prefetch

                    return
                        {
                            Files = files
                            PoolImages = pool
                            Root = Path.GetFullPath config.Settings.DataDir
                            Stored = LabellingDesk.storedLabels progress.Pool
                            Batch = batch |> Option.filter (LabellingDesk.isCurrent progress)
                            Held =
                                prefetch
                                |> Option.map BatchLabels.pairs
                                |> Option.defaultValue [||]
                                |> Array.filter (fun (i, _) -> not (Pool.isLabelled progress.Pool i))
                            Lock = folderLock
                        }
                }

            if Result.isError opened then
                folderLock.Dispose()

            opened)

/// Gives labels to the batch being labelled of an offline session and writes batch.json; the next `waal label`
/// on the folder goes on from there (and stores the batch when it is complete).
let importInto (o: Offline) (pairs: (int * int)[]) : Result<Offline * int, string> =
    match o.Batch with
    | None -> Error $"{o.Files.Folder}: no batch is being labelled"
    | Some b ->
        LabellingDesk.apply o.PoolImages.Classes (Edit.GiveAll pairs) b
        |> Result.mapError BatchLabels.message
        |> Result.map (fun next ->
            writeBatchFile o.Files.Batch (Some next)
            { o with Batch = Some next }, pairs.Length)
