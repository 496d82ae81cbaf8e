/// `waal export`: a run's last trained networks written into a model folder with their description (and the
/// backbone, when the run had one), whole or not at all.
module Waal.Experiments.ModelExport

open System
open System.IO
open Waal.Data
open Waal.Learning
open Waal.Experiments.Model

exception private BackboneCopyFailed of ModelError

/// Writes a run's last trained networks and their description into the folder `out`. The weights are loaded and
/// checked first (Checkpoint.load); the model is written whole into a hidden folder beside `out` and then renamed
/// to it, so a failed export leaves nothing behind. `out` must be new, empty, or an earlier export (a folder with
/// model.json), which is replaced; a folder holding anything else is refused.
let export (run: string) (out: string) : Result<ModelInfo, ModelError> =
    let target = Path.GetFullPath out

    let replaces =
        match Files.kind target with
        | Ok Files.Absent -> Ok false
        | Ok Files.Folder when Seq.isEmpty (Directory.EnumerateFileSystemEntries target) -> Ok false
        | Ok Files.Folder when File.Exists(Path.Combine(target, "model.json")) -> Ok true
        | Ok Files.Folder ->
            Error(
                ExportFailed(
                    out,
                    "holds other files; a model is written into a new or empty folder, or over an earlier export (a folder with model.json)"
                )
            )
        | Ok _ -> Error(ExportFailed(out, "is a file; expected a folder for the model"))
        | Error e -> Error(ExportFailed(out, DataError.message e))

    replaces
    |> Result.bind (fun replaces ->
        ofRun run
        |> Result.bind (fun (info, weights) ->
            networks info weights
            |> Result.bind (fun nets ->
                use _ = nets
                let parent = Path.GetDirectoryName target
                let name = Path.GetFileName target
                let staging = Path.Combine(parent, $".{name}.export-{Environment.ProcessId}.tmp")
                let aside = Path.Combine(parent, $".{name}.replaced-{Environment.ProcessId}.tmp")

                try
                    try
                        if Directory.Exists staging then
                            Directory.Delete(staging, true)

                        Checkpoint.save staging nets

                        // The backbone goes inside the model, with its preparation, and is checked there.
                        let written =
                            match info.Backbone with
                            | None -> Ok info
                            | Some r ->
                                // The run's backbone must still be the one it trained on (named if not); the copy
                                // is then checked again where it lands.
                                loadBackbone run r
                                |> Result.map (fun b -> (b :> IDisposable).Dispose())
                                |> Result.bind (fun () ->
                                    File.Copy(backboneFile run r, Path.Combine(staging, "backbone.pt"))

                                    Backbone.readPreprocessing (backboneFile run r)
                                    |> Result.mapError (fun e -> NotAModel(e.File, e.Detail)))
                                |> Result.bind (fun p ->
                                    AtomicFile.write
                                        (Path.Combine(staging, "backbone.json"))
                                        (Backbone.preprocessingJson p)

                                    let inModel = { r with File = "backbone.pt" }

                                    loadBackbone staging inModel
                                    |> Result.map (fun b ->
                                        (b :> IDisposable).Dispose()
                                        { info with Backbone = Some inModel }))

                        let info =
                            match written with
                            | Error e -> raise (BackboneCopyFailed e)
                            | Ok info -> info

                        AtomicFile.write (Path.Combine(staging, "model.json")) (toJson info)

                        if replaces then
                            Directory.Move(target, aside)
                        elif Directory.Exists target then
                            Directory.Delete target

                        Directory.Move(staging, target)

                        if Directory.Exists aside then
                            Directory.Delete(aside, true)

                        Ok info
                    with
                    | BackboneCopyFailed e -> Error e
                    | :? IOException as e -> Error(ExportFailed(out, e.Message))
                    | :? UnauthorizedAccessException as e -> Error(ExportFailed(out, e.Message))
                finally
                    // A failure puts back what was there and removes what was written.
                    if Directory.Exists aside && not (Directory.Exists target) then
                        Directory.Move(aside, target)

                    if Directory.Exists staging then
                        Directory.Delete(staging, true))))
