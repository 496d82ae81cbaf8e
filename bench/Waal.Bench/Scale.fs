/// The folder-scale rows: a generated folder of N images (Fashion-MNIST's training images, repeated, as grey
/// PNGs in their class folders) read as a folder dataset and scored by a fresh network, in a process of its own,
/// so its peak RSS is the pool's cost. `bench/scale.sh` runs it for 50,000 and 200,000 images.
module Waal.Bench.Scale

open System
open System.Diagnostics
open System.IO
open TorchSharp
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Experiments

let private kb (field: string) =
    QueryTimes.processStatusKb field |> Option.defaultValue nan

/// Writes the folder once (a marker file says it is complete).
let private generate (fashion: string) (count: int) (folder: string) =
    let marker = Path.Combine(folder, ".complete")

    if not (File.Exists marker) then
        if Directory.Exists folder then
            Directory.Delete(folder, true)

        let train, _ =
            Load.fashionMnist fashion
            |> Result.defaultWith (fun e -> failwith (DataError.line e))

        let names =
            [|
                "top"
                "trouser"
                "pullover"
                "dress"
                "coat"
                "sandal"
                "shirt"
                "sneaker"
                "bag"
                "boot"
            |]

        for n in names do
            Directory.CreateDirectory(Path.Combine(folder, n)) |> ignore

        Threading.Tasks.Parallel.For(
            0,
            count,
            fun i ->
                let source = i % train.Count

                use bitmap =
                    new SkiaSharp.SKBitmap(
                        SkiaSharp.SKImageInfo(28, 28, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque)
                    )

                Runtime.InteropServices.Marshal.Copy(train.Images, source * 784, bitmap.GetPixels(), 784)
                use png = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100)
                let file = Path.Combine(folder, names[train.Labels[source]], $"{i:D7}.png")
                File.WriteAllBytes(file, png.ToArray())
        )
        |> ignore

        File.WriteAllText(marker, string count)

let private row metric (value: float) unit =
    printfn "ours,%s,%s,%s" metric (value.ToString("R", Globalization.CultureInfo.InvariantCulture)) unit

/// Writes the folder of `count` images (once) and decodes it into the cache: the first-time costs.
let prepare (fashion: string) (count: int) (threads: int) (scratch: string) =
    Device.configure threads
    let folder = Path.Combine(scratch, $"scale-{count}")
    let clock = Stopwatch.StartNew()
    generate fashion count folder
    row $"scale_{count}_generate_seconds" clock.Elapsed.TotalSeconds "s"
    let clock = Stopwatch.StartNew()

    match Folder.read Folder.defaultOptions None folder with
    | Ok r -> row $"scale_{count}_first_read_seconds" clock.Elapsed.TotalSeconds $"s (from the cache: {r.FromCache})"
    | Error e -> failwith (DataError.line e)

/// In a fresh process after `prepare`: reads the folder (from the cache), holds it as tensors and scores every
/// image with a fresh network; prints the read time, the scoring rate (best of three passes) and the process's
/// peak RSS.
let run (fashion: string) (count: int) (threads: int) (scratch: string) =
    Device.configure threads
    let folder = Path.Combine(scratch, $"scale-{count}")
    let clock = Stopwatch.StartNew()

    let read =
        Folder.read Folder.defaultOptions None folder
        |> Result.defaultWith (fun e -> failwith (DataError.line e))

    let seconds = clock.Elapsed.TotalSeconds
    let afterRead = kb "VmRSS"
    let data = read.Data
    let entry = Datasets.find "folder" |> Result.defaultWith failwith
    use tensors = Tensors.ofEntry entry torch.CPU data data
    let afterTensors = kb "VmRSS"
    torch.random.manual_seed 1L |> ignore

    use nets =
        Nets.create torch.CPU data.Channels data.Height data.Width data.Classes SigmoidOutput

    let indices = Array.init data.Count id

    Scoring.probabilities nets tensors indices[..999] 250 ProgressSink.none
    |> ignore

    let best =
        [ 1..3 ]
        |> List.map (fun _ ->
            let clock = Stopwatch.StartNew()
            Scoring.probabilities nets tensors indices 250 ProgressSink.none |> ignore
            clock.Elapsed.TotalSeconds)
        |> List.min

    row $"scale_{count}_read_seconds" seconds $"s (from the cache: {read.FromCache})"
    row $"scale_{count}_score_images_per_s" (float data.Count / best) "img/s"
    row $"scale_{count}_rss_after_read_mb" (afterRead / 1024.0) "MB"
    row $"scale_{count}_rss_after_tensors_mb" (afterTensors / 1024.0) "MB"
    row $"scale_{count}_peak_rss_mb" (kb "VmHWM" / 1024.0) "MB"
