/// Backbones (`--backbone`): a real one, made here as a user would make theirs. The project's small CNN is trained
/// with TorchSharp on Fashion-MNIST's classes 0-4, rebuilt from those weights by Debian's PyTorch and exported
/// with torch.jit.trace; then used on a folder of classes 5-9. Nothing is downloaded.
module Waal.Experiments.Tests.Backbones

open System
open System.Diagnostics
open System.IO
open Expecto
open TorchSharp
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Experiments

let private fashion = Waal.Testing.Environment.fashion

let private temp = Waal.Testing.BackboneModels.temp

let private runPython = Waal.Testing.BackboneModels.runPython

let private train = Waal.Testing.BackboneModels.train

let private model name =
    Path.Combine(Waal.Testing.BackboneModels.folder.Value, name)

/// A folder of Fashion-MNIST's classes 5-9 (sandal .. ankle boot, never seen by the backbone), `perClass` grey
/// PNGs each, from training images after the backbone's.
let private unseenFolder (perClass: int) =
    let dir = temp ()
    let data = train.Value

    let items =
        [| 30000 .. data.Count - 1 |] |> Array.filter (fun i -> data.Labels[i] >= 5)

    let subset = Dataset.select items data

    let relabelled =
        { subset with
            Labels = subset.Labels |> Array.map (fun l -> l - 5)
        }

    Waal.Testing.ImageFolders.write
        Waal.Testing.ImageFolders.GreyPng
        relabelled
        [| "sandal"; "shirt"; "sneaker"; "bag"; "boot" |]
        perClass
        dir
    |> ignore

    dir

let private ok what (r: Result<'a, Backbone.BackboneError>) =
    match r with
    | Ok v -> v
    | Error e -> failtest $"{what}: {e.File}: {e.Detail}"

/// The folder read as the backbone's preparation says.
let private readFor (backbone: Backbone.Backbone) (folder: string) =
    Folder.read (Backbone.imageOptions backbone.Preprocessing Folder.defaultOptions) None folder
    |> Result.defaultWith (fun e -> failtest (DataError.line e))
    |> fun r -> r.Data

/// Every row of an embeddings file.
let private rowsOf (file: PixelFile) =
    let values = Array.zeroCreate<float32>(file.Rows.Length * file.RowBytes / 4)
    file.Read(file.Rows, Runtime.InteropServices.MemoryMarshal.AsBytes(Span values))
    values

let private withCache (dir: string) (f: unit -> unit) =
    let before = Environment.GetEnvironmentVariable "WAAL_IMAGE_CACHE"
    Environment.SetEnvironmentVariable("WAAL_IMAGE_CACHE", dir)

    try
        f ()
    finally
        Environment.SetEnvironmentVariable("WAAL_IMAGE_CACHE", before)

let all =
    testSequenced
    <| testList
        "Backbones"
        [
            test
                "its embeddings equal PyTorch's on the same files to 1e-4, and are cached until a file or the backbone changes" {
                let folder = unseenFolder 8
                let cache = temp ()

                withCache cache (fun () ->
                    use b = Backbone.load torch.CPU (model "backbone.pt") |> ok "load"
                    Expect.equal b.Dim 320 "the small CNN's 320 features"
                    let data = readFor b folder
                    let first = Backbone.embed b ProgressSink.none "embedding" data |> ok "embed"
                    Expect.isFalse first.FromCache "the first time, computed"
                    let ours = rowsOf first.File
                    first.File.Handle.Dispose()

                    let listing = Path.Combine(cache, "files.txt")

                    File.WriteAllLines(listing, data.Files |> Array.map (fun f -> Path.Combine(folder, f)))

                    let out = Path.Combine(cache, "pytorch.f32")
                    runPython [ "embed"; model "backbone.pt"; listing; out ]
                    let bytes = File.ReadAllBytes out

                    let theirs =
                        Array.init (bytes.Length / 4) (fun i -> BitConverter.ToSingle(bytes, 4 * i))

                    Expect.equal theirs.Length ours.Length "one row of 320 per file"

                    let worst =
                        Array.map2 (fun (a: float32) b -> abs (float a - float b)) ours theirs
                        |> Array.max

                    Expect.isLessThan worst 1e-4 $"largest difference from PyTorch's embedding: {worst}"

                    // Cached: the same rows read back.
                    let again = Backbone.embed b ProgressSink.none "embedding" data |> ok "embed again"
                    Expect.isTrue again.FromCache "the second time, read from the cache"
                    Expect.equal (rowsOf again.File) ours "the cached rows"
                    again.File.Handle.Dispose()

                    // A file touched: embedded again.
                    let touched = Path.Combine(folder, data.Files[3])
                    File.SetLastWriteTimeUtc(touched, DateTime.UtcNow.AddMinutes 1.0)
                    let data' = readFor b folder

                    let afterTouch =
                        Backbone.embed b ProgressSink.none "embedding" data' |> ok "after a touch"

                    Expect.isFalse afterTouch.FromCache "a changed file makes a new key"
                    Expect.equal (rowsOf afterTouch.File) ours "same pixels, same rows"
                    afterTouch.File.Handle.Dispose()

                    // Another backbone (the same weights, another preparation): embedded again, differently.
                    let other = temp ()
                    File.Copy(model "backbone.pt", Path.Combine(other, "b.pt"))

                    File.WriteAllText(
                        Path.Combine(other, "b.json"),
                        """{"resize": 0, "crop": 28, "channels": 1, "mean": [0.5], "std": [0.5]}"""
                    )

                    use b2 =
                        Backbone.load torch.CPU (Path.Combine(other, "b.pt")) |> ok "load the other"

                    Expect.notEqual b2.Hash b.Hash "another preparation, another hash"

                    let byOther =
                        Backbone.embed b2 ProgressSink.none "embedding" data' |> ok "the other"

                    Expect.isFalse byOther.FromCache "another backbone makes a new key"
                    Expect.notEqual (rowsOf byOther.File) ours "another preparation, other rows"
                    byOther.File.Handle.Dispose()

                    // The tuple model's second output is the same features.
                    use t = Backbone.load torch.CPU (model "tuple.pt") |> ok "the tuple model"
                    let byTuple = Backbone.embed t ProgressSink.none "embedding" data' |> ok "tuple"
                    Expect.equal (rowsOf byTuple.File) ours "output 1 of (logits, features)"
                    byTuple.File.Handle.Dispose()
                    Directory.Delete(other, true))

                Directory.Delete(folder, true)
                Directory.Delete(cache, true)
            }

            test "a file that is not a backbone is refused with the file named and what was expected" {
                let dir = temp ()

                let write name (text: string) =
                    File.WriteAllText(Path.Combine(dir, name), text)

                let at name = Path.Combine(dir, name)

                let refused (file: string) (expected: string) =
                    match Backbone.load torch.CPU file with
                    | Ok b ->
                        (b :> IDisposable).Dispose()
                        failtest $"{file} was accepted"
                    | Error e ->
                        Expect.stringContains e.Detail expected file
                        e.File

                write "notes.pt" "these are not weights"
                Expect.equal (refused (at "notes.pt") "not a TorchScript model") (at "notes.pt") "names the model"
                write "model.onnx" "an ONNX protobuf would start here"

                refused (at "model.onnx") "ONNX files are not read: export TorchScript instead"
                |> ignore

                write "empty.pt" ""
                refused (at "empty.pt") "empty" |> ignore
                refused (at "missing.pt") "no such file" |> ignore
                Expect.equal (refused (model "wrong-rank.pt") "rank 4") (model "wrong-rank.pt") "a feature map"

                refused (model "no-image.pt") "does not take a batch of images (2 x 1 x 28 x 28"
                |> ignore

                File.Copy(model "backbone.pt", at "typo.pt")
                write "typo.json" """{"crops": 28}"""

                Expect.equal (refused (at "typo.pt") "unknown field 'crops'") (at "typo.json") "names the .json"

                File.Copy(model "backbone.pt", at "words.pt")
                write "words.json" """{"crop": "big"}"""
                refused (at "words.pt") "crop: expected a whole number, found \"big\"" |> ignore
                File.Copy(model "backbone.pt", at "grey.pt")
                write "grey.json" """{"channels": 1, "mean": [0.5, 0.5], "std": [0.5]}"""
                refused (at "grey.pt") "expected 1 value(s) each" |> ignore
                Directory.Delete(dir, true)
            }

            test
                "with 50 labels, a head on the backbone's features beats the network trained from scratch (3 paired seeds, 100 steps each)" {
                let folder = unseenFolder 160

                let accuracy (extra: string list) (seed: int) =
                    let out = temp ()

                    let config =
                        Waal.Cli.CommandLine.ofCommandLine (
                            [
                                "--dataset"
                                $"folder={folder}"
                                "--holdout"
                                "0.25"
                                "--strategy"
                                "random"
                                "--initial"
                                "50"
                                "--rounds"
                                "0"
                                "--epochs"
                                "10"
                                "--floor"
                                "640"
                                "--seed"
                                string seed
                                "--threads"
                                "2"
                            ]
                            @ extra
                        )
                        |> Result.defaultWith failtest

                    let lines = Collections.Generic.List<string>()
                    let hooks = { Runner.quiet with Info = lines.Add }

                    match Runner.run config out false hooks with
                    | Error e -> failtest (ExperimentError.line e)
                    | Ok() -> ()

                    let csv = File.ReadAllLines(Path.Combine(out, "rounds.csv"))
                    let row = csv[1].Split(',')
                    let header = csv[0].Split(',')
                    let column = Array.findIndex (fun h -> h = "test_accuracy") header
                    Directory.Delete(out, true)
                    float row[column], List.ofSeq lines

                let head = [ 1; 2; 3 ] |> List.map (accuracy [ "--backbone"; model "backbone.pt" ])

                // From scratch, the folder gets what "auto" picks for it: the residual net.
                let scratch = [ 1; 2; 3 ] |> List.map (accuracy [])

                Expect.contains
                    (snd head[0])
                    "network: head (auto: the head on the backbone's embeddings)"
                    "the run says which network and why"

                Expect.contains
                    (snd scratch[0])
                    "network: resnet (auto: a folder of your own images gets the residual net at any size)"
                    "a folder of 28x28 images is not Fashion-MNIST itself"

                let mean xs = List.averageBy fst xs

                let differences = List.map2 (fun (a, _) (b, _) -> a - b) head scratch

                printfn
                    "backbone head %A, resnet from scratch %A (test accuracy, 50 labels, 100 steps)"
                    (List.map fst head)
                    (List.map fst scratch)

                Expect.isGreaterThan (mean head) (mean scratch) "the head beats the network from scratch on average"

                Expect.all differences (fun d -> d > 0.0) $"and on every paired seed: {differences}"
                Directory.Delete(folder, true)
            }

            test "every strategy runs unchanged on the backbone's embeddings (WAAL's critic on the same features)" {
                let folder = unseenFolder 20

                for strategy in Waal.Strategies.Registry.names do
                    let out = temp ()

                    let config =
                        Waal.Cli.CommandLine.ofCommandLine
                            [
                                "--dataset"
                                $"folder={folder}"
                                "--backbone"
                                model "backbone.pt"
                                "--strategy"
                                strategy
                                "--initial"
                                "10"
                                "--query"
                                "10"
                                "--rounds"
                                "2"
                                "--epochs"
                                "1"
                                "--floor"
                                "128"
                                "--threads"
                                "2"
                            ]
                        |> Result.defaultWith failtest

                    match Runner.run config out false Runner.quiet with
                    | Error e -> failtest $"{strategy}: {ExperimentError.line e}"
                    | Ok() -> ()

                    let rounds = File.ReadAllLines(Path.Combine(out, "rounds.csv"))
                    Expect.equal rounds.Length 4 $"{strategy}: rounds 0, 1 and 2"
                    Expect.stringStarts rounds[3] "2,30," $"{strategy}: 30 labels by round 2"
                    Directory.Delete(out, true)

                Directory.Delete(folder, true)
            }

            test "the exported model carries its backbone and predicts the run's final test accuracy exactly" {
                let folder = unseenFolder 24
                let out = temp ()
                let own = temp ()
                // The run's backbone is a copy that is changed afterwards: the exported model must not need it.
                let backbone = Path.Combine(own, "mine.pt")
                File.Copy(model "backbone.pt", backbone)
                File.Copy(model "backbone.json", Path.Combine(own, "mine.json"))

                let config =
                    Waal.Cli.CommandLine.ofCommandLine
                        [
                            "--dataset"
                            $"folder={folder}"
                            "--backbone"
                            backbone
                            "--initial"
                            "20"
                            "--query"
                            "20"
                            "--rounds"
                            "1"
                            "--epochs"
                            "2"
                            "--floor"
                            "256"
                            "--threads"
                            "2"
                        ]
                    |> Result.defaultWith failtest

                match Runner.run config out false Runner.quiet with
                | Error e -> failtest (ExperimentError.line e)
                | Ok() -> ()

                let modelDir = Path.Combine(own, "model")

                let info =
                    ModelExport.export out modelDir
                    |> Result.defaultWith (fun e -> failtest (Model.ModelError.line e))

                Expect.equal (info.Network, info.InputShape) ("head", (320, 1, 1)) "a head on 320-d embeddings"
                Expect.isTrue (File.Exists(Path.Combine(modelDir, "backbone.pt"))) "the backbone inside the model"

                match Model.ofJson "m" (Text.Encoding.UTF8.GetString(Model.toJson info)) with
                | Ok back -> Expect.equal back info "model.json round trip, backbone included"
                | Error e -> failtest (Model.ModelError.line e)

                use dataset =
                    Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(out, "dataset.json")))

                let testFiles =
                    dataset.RootElement.GetProperty("testFiles").EnumerateArray()
                    |> Seq.map (fun e -> Path.Combine(folder, e.GetString()))
                    |> List.ofSeq

                let classNames = info.ClassNames

                let truth =
                    testFiles
                    |> List.map (fun f -> Array.IndexOf(classNames, Path.GetFileName(Path.GetDirectoryName f)))
                    |> Array.ofList

                let predictWith dir =
                    match Model.predictFiles dir testFiles false 250 with
                    | Ok(_, rows, []) -> rows
                    | Ok(_, _, skipped) -> failtestf "skipped %A" skipped
                    | Error e -> failtest (Model.ModelError.line e)

                let final =
                    RunCsv.readRoundsCsv (Path.Combine(out, "rounds.csv"))
                    |> Result.defaultWith failtest
                    |> List.last

                let fromRun = predictWith out
                let exported = predictWith modelDir
                let predicted = exported |> List.map (fun (_, p) -> p.Class) |> Array.ofList

                Expect.equal
                    (Metrics.accuracy predicted truth)
                    final.TestAccuracy
                    "the final evaluation's accuracy, exactly"

                Expect.equal
                    (Model.predictionsCsv info fromRun)
                    (Model.predictionsCsv info exported)
                    "the run folder and the exported model predict the same"

                // The run's backbone changed afterwards: the run folder refuses to predict with it, by name; the
                // exported model still predicts, with its own copy.
                File.WriteAllText(Path.Combine(own, "mine.json"), """{"resize": 0, "crop": 28, "channels": 1}""")

                match Model.predictFiles out testFiles false 250 with
                | Ok _ -> failtest "predicted with a changed backbone"
                | Error e ->
                    Expect.stringStarts
                        (Model.ModelError.line e)
                        $"error MODEL001: {backbone}: not the backbone the model was trained on"
                        "the changed backbone named"

                match ModelExport.export out (Path.Combine(own, "again")) with
                | Ok _ -> failtest "exported with a changed backbone"
                | Error e ->
                    Expect.stringStarts
                        (Model.ModelError.line e)
                        $"error MODEL001: {backbone}: not the backbone the model was trained on"
                        "export names the run's changed backbone"

                Expect.isFalse (Directory.Exists(Path.Combine(own, "again"))) "nothing exported"
                Expect.equal (predictWith modelDir) exported "the exported model is whole"
                File.Delete(Path.Combine(modelDir, "backbone.pt"))

                match Model.load modelDir with
                | Ok m ->
                    (m :> IDisposable).Dispose()
                    failtest "loaded without its backbone"
                | Error e -> Expect.stringContains (Model.ModelError.line e) "the model's backbone is missing" "named"

                for d in [ folder; out; own ] do
                    Directory.Delete(d, true)
            }

            test "a run refuses a backbone it cannot use before writing anything, naming the file (EXP015) or option" {
                let folder = unseenFolder 4

                let refused (extra: string list) =
                    let out = Path.Combine(temp (), "run")

                    let config =
                        Waal.Cli.CommandLine.ofCommandLine (
                            [ "--dataset"; $"folder={folder}"; "--initial"; "5"; "--query"; "5" ] @ extra
                        )
                        |> Result.defaultWith failtest

                    match Runner.run config out false Runner.quiet with
                    | Ok() -> failtest $"{extra} ran"
                    | Error e ->
                        Expect.isFalse (Directory.Exists out) "nothing written"
                        ExperimentError.line e

                let missing = Path.Combine(folder, "none.pt")

                Expect.equal
                    (refused [ "--backbone"; missing ])
                    $"error EXP015: {missing}: no such file or directory"
                    "a missing backbone"

                let wrongRank = model "wrong-rank.pt"

                Expect.stringContains
                    (refused [ "--backbone"; wrongRank ])
                    $"error EXP015: {wrongRank}: the output for 2 images is 2 x 10 x 24 x 24 (rank 4)"
                    "an output of the wrong rank"

                Expect.stringContains
                    (refused [ "--backbone"; model "backbone.pt"; "--image-size"; "32" ])
                    "error EXP001: --image-size: the backbone's preparation decides the size"
                    "--image-size beside a backbone"

                Expect.stringContains
                    (refused [ "--backbone"; model "backbone.pt"; "--network"; "resnet" ])
                    "error EXP001: --network: a backbone's embeddings (D x 1 x 1) are classified by the head"
                    "another network on embeddings"

                Directory.Delete(folder, true)
            }
        ]
