/// A real backbone made here as a user would make theirs (nothing is downloaded): the project's small CNN trained
/// with TorchSharp on Fashion-MNIST's classes 0-4, rebuilt from those weights by Debian's PyTorch and exported with
/// torch.jit.trace (tests/Shared/backbone.py), with the models a backbone must refuse or handle.
module Waal.Testing.BackboneModels

open System
open System.Diagnostics
open System.IO
open TorchSharp
open Waal.Data
open Waal.Learning

let private fashion = Waal.Testing.Environment.fashion

let temp () =
    let dir = Path.Combine(Path.GetTempPath(), $"waal-backbone-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore
    dir

/// The python3 that imports torch: Debian's (/usr/bin/python3) first, as bench/run.sh looks for it.
let private python =
    lazy
        ([ "/usr/bin/python3"; "python3" ]
         |> List.tryFind (fun p ->
             try
                 use proc =
                     Process.Start(ProcessStartInfo(p, "-c \"import torch, PIL\"", RedirectStandardError = true))

                 proc.WaitForExit()
                 proc.ExitCode = 0
             with _ ->
                 false)
         |> Option.defaultWith (fun () ->
             failwith "no python3 here imports torch and PIL: install Debian's python3-torch and python3-pil"))

/// Runs tests/Shared/backbone.py with `args`; a failure shows its output.
let runPython (args: string list) =
    let script =
        Path.Combine(Waal.Testing.Environment.repoRoot, "tests", "Shared", "backbone.py")

    let info =
        ProcessStartInfo(python.Value, RedirectStandardOutput = true, RedirectStandardError = true)

    info.ArgumentList.Add script

    for a in args do
        info.ArgumentList.Add a

    use proc = Process.Start info
    let output = proc.StandardOutput.ReadToEndAsync()
    let errors = proc.StandardError.ReadToEnd()
    proc.WaitForExit()

    if proc.ExitCode <> 0 then
        failwith $"backbone.py {String.Join(' ', args)} failed ({proc.ExitCode}): {output.Result}{errors}"

/// Fashion-MNIST's training set.
let train =
    lazy
        (Load.fashionMnist fashion
         |> Result.defaultWith (fun e -> failwith (DataError.line e))
         |> fst)

/// The backbone's folder: backbone.pt (320-d features of the small CNN trained on classes 0-4, 2 epochs over
/// 3,000 images), its .json, and the models a backbone must refuse or handle.
let folder =
    lazy
        (let dir = temp ()
         let weights = Path.Combine(dir, "weights")
         Directory.CreateDirectory weights |> ignore
         let data = train.Value

         let items =
             [| 0 .. data.Count - 1 |]
             |> Array.filter (fun i -> data.Labels[i] < 5)
             |> Array.take 3000

         let subset = Dataset.select items data
         torch.random.manual_seed 7L |> ignore
         use f = new Nets.MnistFeatures()
         use h = new Nets.Classifier(320L, 5L)

         use tensors =
             Tensors.ofDataset
                 torch.CPU
                 {
                     Mean = [| 0.2860 |]
                     Std = [| 0.3530 |]
                 }
                 subset

         use labels = torch.tensor (subset.Labels |> Array.map int64)
         let parameters = Seq.append (f.parameters ()) (h.parameters ())
         use opt = torch.optim.SGD(parameters, 0.05, 0.9)
         f.train ()
         h.train ()

         for _ in 1..2 do
             use order = torch.randperm (int64 subset.Count)

             for start in 0L .. 64L .. int64 subset.Count - 1L do
                 use _scope = torch.NewDisposeScope()
                 let idx = order.narrow (0L, start, min 64L (int64 subset.Count - start))
                 opt.zero_grad ()

                 let loss =
                     torch.nn.functional.cross_entropy (
                         h.forward (f.forward (tensors.Gather idx)),
                         labels.index_select (0L, idx)
                     )

                 loss.backward ()
                 opt.step () |> ignore

         for KeyValue(name, p) in f.state_dict () do
             let values = p.contiguous().data<float32>().ToArray()
             let bytes = Array.zeroCreate<byte>(values.Length * 4)
             Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length)
             File.WriteAllBytes(Path.Combine(weights, name + ".f32"), bytes)

         runPython [ "export"; weights; dir ]
         dir)
