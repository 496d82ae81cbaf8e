/// Our side of the side-by-side benchmark (bench/run.sh): the library's real trainers and scoring on
/// Fashion-MNIST with |L| = 1000, |U| = 49,000, printed as CSV rows `side,metric,value,unit`.
module Waal.Bench.Program

open System
open System.Diagnostics
open System.IO
open TorchSharp
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Experiments

let private row metric (value: float) unit =
    printfn "ours,%s,%.4f,%s" metric value unit

[<EntryPoint>]
let main argv =
    if argv.Length > 0 && argv[0] = "micro" then
        torch.set_num_threads (if argv.Length > 1 then int argv[1] else 2)

        match (if argv.Length > 2 then argv[2] else "") with
        | "pools" -> Micro.pools ()
        | "phases" -> Micro.phases ()
        | "plain" -> Micro.plainPhases ()
        | _ -> Micro.run ()

        exit 0

    let folder =
        if argv.Length > 0 then
            argv[0]
        else
            "/usr/share/datasets/fashion-mnist"

    let threads = if argv.Length > 1 then int argv[1] else 2
    torch.set_num_threads threads

    match Load.fashionMnist folder with
    | Error e ->
        eprintfn "%s" (DataError.line e)
        2
    | Ok(train, test) ->
        let poolData = Dataset.take 50000 train
        use poolT = Tensors.ofNamed "fashion-mnist" torch.CPU poolData
        use testT = Tensors.ofNamed "fashion-mnist" torch.CPU test
        let spec = Spec.defaults "fashion-mnist" folder
        let empty = Pool.create poolData.Count 10 |> Result.defaultWith (failwithf "%A")
        let initial = Pool.draw (Rng.key 1L 0 "initial") 1000 empty

        let pool =
            Pool.label 0 (initial |> Array.map (fun i -> i, poolData.Labels[i])) empty
            |> Result.defaultWith (failwithf "%A")

        let setup budget =
            let train =
                { spec.Train with
                    Epochs = 1
                    Budget = budget
                }

            Training.setupOf
                torch.CPU
                poolT
                { spec with
                    Train = train
                    Seed = 1L
                    Query = 1000
                }
                ProgressSink.none

        let timed f =
            let clock = Stopwatch.StartNew()
            let r = f ()
            r, clock.Elapsed.TotalSeconds

        // (a) WAAL: one epoch of max(|L|,|U|) = 49,000 pairs = 766 iterations of step A + step B with the penalty.
        let waal, seconds =
            timed (fun () -> Training.waal (setup EpochsOverLabelled) 0 pool)

        let nets, iterations =
            waal |> Result.defaultWith (fun e -> failwith (LearnError.message e))

        use nets = nets
        row "waal_train_iterations_per_s" (float iterations / seconds) "it/s"

        // (b) the WAAL query's scoring of the 49,000 unlabelled images (f, h, g, log-softmax) at batch 500.
        let unlabelled = Pool.unlabelled pool

        let _, seconds =
            timed (fun () -> Scoring.scores nets poolT unlabelled 500 ProgressSink.none)

        row "waal_query_images_per_s" (float unlabelled.Length / seconds) "img/s"

        // (c) test prediction over the 10,000 test images at batch 500.
        let _, seconds = timed (fun () -> Scoring.predict nets testT 500 ProgressSink.none)
        row "test_prediction_images_per_s" (float test.Count / seconds) "img/s"

        // (d) plain cross-entropy: WAAL's step count (766) over the labelled set, batch 64.
        let plain, seconds = timed (fun () -> Training.plain (setup MatchWaal) 0 pool)

        let plainNets, plainIterations =
            plain |> Result.defaultWith (fun e -> failwith (LearnError.message e))

        (plainNets :> IDisposable).Dispose()
        row "plain_train_iterations_per_s" (float plainIterations / seconds) "it/s"

        // The scoring batch size, measured rather than guessed (query pass over the 49,000 images).
        for b in [ 125; 250; 500; 1000; 2000 ] do
            let _, seconds =
                timed (fun () -> Scoring.scores nets poolT unlabelled b ProgressSink.none)

            row $"query_images_per_s_at_batch_{b}" (float unlabelled.Length / seconds) "img/s"

        // (e) peak resident memory of the whole process.
        row
            "peak_rss_mb"
            (QueryTimes.processStatusKb "VmHWM"
             |> Option.map (fun kb -> kb / 1024.0)
             |> Option.defaultValue nan)
            "MB"

        0
