/// Saving and loading a round's networks (f, h, g) as TorchSharp state files, each written atomically.
module Waal.Learning.Checkpoint

open System.IO
open Waal.Learning.Nets

let private files = [ "features.dat"; "classifier.dat"; "critic.dat" ]

let private modules (nets: Networks) =
    [ nets.Features :> TorchSharp.torch.nn.Module; nets.Classifier; nets.Critic ]

/// Writes the three networks into `folder` (created if needed): each to a temporary file, then renamed.
let save (folder: string) (nets: Networks) =
    Directory.CreateDirectory folder |> ignore

    for file, m in List.zip files (modules nets) do
        let path = Path.Combine(folder, file)
        let tmp = path + ".tmp"
        m.save tmp |> ignore
        File.Move(tmp, path, true)

/// Loads weights saved by `save` into networks of the same architecture.
let load (folder: string) (nets: Networks) =
    for file, m in List.zip files (modules nets) do
        m.load (Path.Combine(folder, file)) |> ignore
