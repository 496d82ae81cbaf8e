/// Saving and loading a round's networks (f, h, g) as TorchSharp state files, each written atomically, with a
/// manifest of their SHA-256 sums (in `sha256sum`'s format), so a file cut short, replaced or altered is refused
/// by name when it is loaded rather than giving a model with wrong weights.
module Waal.Learning.Checkpoint

open System
open System.IO
open System.Security.Cryptography
open TorchSharp
open Waal.Data
open Waal.Learning.Nets

/// The weight files of a checkpoint or a model folder.
let files = [ "features.dat"; "classifier.dat"; "critic.dat" ]

/// The manifest beside them: one `<sha256>  <file>` line per weight file.
let manifest = "weights.sha256"

let private modules (nets: Networks) =
    [ nets.Features :> torch.nn.Module; nets.Classifier; nets.Critic ]

/// Writes the three networks into `folder` (created if needed), each to a temporary file then renamed, and then
/// the manifest of their sums.
let save (folder: string) (nets: Networks) =
    Directory.CreateDirectory folder |> ignore

    let sums =
        [
            for file, m in List.zip files (modules nets) do
                use stream = new MemoryStream()
                m.save stream |> ignore
                let bytes = stream.ToArray()
                AtomicFile.write (Path.Combine(folder, file)) bytes
                $"{Convert.ToHexString(SHA256.HashData bytes).ToLowerInvariant()}  {file}"
        ]

    AtomicFile.write (Path.Combine(folder, manifest)) (Text.Encoding.ASCII.GetBytes(String.Join("\n", sums) + "\n"))

/// The sums a folder's manifest lists (file -> sum), or None for a folder written before manifests existed.
let private listedSums (folder: string) : Result<Map<string, string> option, string * string> =
    let path = Path.Combine(folder, manifest)

    match Files.kind path with
    | Ok Files.Absent -> Ok None
    | _ ->
        Files.readLines "a weights manifest" Files.Limits.shortTextBytes path
        |> Result.mapError (fun e -> DataError.file e, DataError.message e)
        |> Result.bind (fun lines ->
            let parsed =
                lines
                |> Array.filter (fun l -> l.Trim() <> "")
                |> Array.map (fun l ->
                    match l.Split("  ", 2) with
                    | [| sum; file |] when sum.Length = 64 -> Some(file.Trim(), sum.ToLowerInvariant())
                    | _ -> None)

            if parsed |> Array.exists Option.isNone then
                Error(path, "expected lines '<sha256>  <file>'")
            else
                Ok(Some(parsed |> Array.choose id |> Map.ofArray)))

/// Loads weights saved by `save` into networks of the same architecture. Each file must be a regular file within
/// Files.Limits.weightsBytes whose sum matches the manifest (when there is one), of the networks' shape, and
/// every weight finite; otherwise the error is the file and what is wrong, and the networks are not to be used.
let load (folder: string) (nets: Networks) : Result<unit, string * string> =
    listedSums folder
    |> Result.bind (fun sums ->
        List.zip files (modules nets)
        |> List.fold
            (fun acc (file, m) ->
                acc
                |> Result.bind (fun () ->
                    let path = Path.Combine(folder, file)

                    Files.readBytes "a weights file" Files.Limits.weightsBytes path
                    |> Result.mapError (fun e -> DataError.file e, DataError.message e)
                    |> Result.bind (fun bytes ->
                        let sum = Convert.ToHexString(SHA256.HashData bytes).ToLowerInvariant()

                        match sums |> Option.map (Map.tryFind file) with
                        | Some None -> Error(path, $"not listed in {manifest}")
                        | Some(Some listed) when listed <> sum ->
                            Error(
                                path,
                                $"its SHA-256 sum differs from the one {manifest} lists (the file was cut short or changed)"
                            )
                        | _ ->
                            try
                                use stream = new MemoryStream(bytes, false)
                                m.load stream |> ignore

                                let finite =
                                    m.parameters ()
                                    |> Seq.forall (fun p ->
                                        use ok = torch.isfinite(p).all()
                                        ok.ToBoolean())

                                if finite then
                                    Ok()
                                else
                                    Error(path, "holds weights that are NaN or infinite")
                            with e ->
                                Error(
                                    path,
                                    $"does not hold the weights of this network ({e.Message.Split('\n')[0]})"
                                ))))
            (Ok()))
