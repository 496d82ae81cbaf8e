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
open Waal.Strategies

let private row metric (value: float) unit =
    printfn "ours,%s,%.4f,%s" metric value unit

[<EntryPoint>]
let main argv =
    if argv.Length > 0 && (argv[0] = "scale" || argv[0] = "scale-prepare") then
        // scale[-prepare] FASHION_DIR COUNT THREADS SCRATCH_DIR
        if argv[0] = "scale" then
            Scale.run argv[1] (int argv[2]) (int argv[3]) argv[4]
        else
            Scale.prepare argv[1] (int argv[2]) (int argv[3]) argv[4]

        exit 0

    if argv.Length > 0 && argv[0] = "batch-query" then
        // batch-query FASHION_DIR THREADS POOL K STRATEGY...
        exit (BatchQuery.run argv[1] (int argv[2]) (int argv[3]) (int argv[4]) (List.ofArray argv[5..]))

    if argv.Length > 0 && argv[0] = "onednn-repro" then
        // onednn-repro [RUNS] [STEPS] [THREADS]: TorchSharp alone, no code of this project, no oneDNN guard.
        let arg i d =
            if argv.Length > i then int argv[i] else d

        OneDnnRepro.run (arg 1 20) (arg 2 2000) (arg 3 2)
        exit 0

    if argv.Length > 0 && argv[0] = "micro" then
        Device.configure (if argv.Length > 1 then int argv[1] else 2)

        match (if argv.Length > 2 then argv[2] else "") with
        | "pools" -> Micro.pools ()
        | "phases" -> Micro.phases ()
        | "plain" -> Micro.plainPhases (if argv.Length > 3 then argv[3] else "")
        | "layers" -> Micro.layers ()
        | "predict" -> Micro.predictOps ()
        | "poolsizes" -> Micro.poolSizes ()
        | "poolbackward" -> Micro.poolBackward ()
        | "convforms" -> Micro.convForms ()
        | "batchthreads" -> Micro.batchThreads ()
        | _ -> Micro.run ()

        exit 0

    let folder =
        if argv.Length > 0 then
            argv[0]
        else
            "/usr/share/datasets/fashion-mnist"

    let threads = if argv.Length > 1 then int argv[1] else 2
    // The runner's process settings: libtorch's threads and the C heap's reuse of freed memory (the mirror runs
    // with the same glibc settings, given through the environment by run.sh).
    Device.configure threads

    match Load.fashionMnist folder with
    | Error e ->
        eprintfn "%s" (DataError.line e)
        2
    | Ok(train, test) ->
        let poolData = Dataset.take 50000 train
        let entry = Datasets.find "fashion-mnist" |> Result.defaultWith failwith
        use poolT = Tensors.ofEntry entry torch.CPU poolData poolData
        use testT = Tensors.ofEntry entry torch.CPU poolData test
        let config = Datasets.defaults "fashion-mnist" "waal" |> Result.defaultWith failwith

        let config =
            { config with
                Settings =
                    { config.Settings with
                        DataDir = folder
                    }
            }

        let spec = config.Spec
        let empty = Pool.create poolData.Count 10 |> Result.defaultWith (failwithf "%A")
        let initial = Pool.draw (Rng.key 1L 0 Rng.InitialDraw) 1000 empty

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

        // A trainer's run, timed; its networks and step count. The training rows are the best of three runs (fresh
        // networks each time, the same seed), as in the mirror: the machine's speed drifts by several percent.
        let train (trainer: unit -> Result<Nets.Networks * int64, LearnError>) =
            let result, seconds = timed trainer

            let nets, iterations =
                result |> Result.defaultWith (fun e -> failwith (LearnError.message e))

            nets, iterations, seconds

        let bestOf3 trainer =
            let runs = [ for _ in 1..3 -> train trainer ]

            for nets, _, _ in List.take 2 runs do
                (nets :> IDisposable).Dispose()

            let nets, iterations, _ = List.last runs
            nets, iterations, runs |> List.map (fun (_, _, s) -> s) |> List.min

        // (a) WAAL: one epoch of max(|L|,|U|) = 49,000 pairs = 766 iterations of step A + step B with the penalty.
        let nets, iterations, seconds =
            bestOf3 (fun () -> Training.waal (setup EpochsOverLabelled) 0 1000 pool)

        use nets = nets
        row "waal_train_iterations_per_s" (float iterations / seconds) "it/s"

        // Scoring rows are short (about half a second): each is the best of three passes, here and in the mirror.
        let best3 f =
            [ for _ in 1..3 -> snd (timed f) ] |> List.min

        let unlabelled = Pool.unlabelled pool
        let scoreBatch = config.Settings.ScoreBatch

        // (b) the WAAL query's scoring of the 49,000 unlabelled images (f, h, g, log-softmax).
        let seconds =
            best3 (fun () -> Scoring.scores nets poolT unlabelled scoreBatch ProgressSink.none)

        row "waal_query_images_per_s" (float unlabelled.Length / seconds) "img/s"

        // (c) test prediction over the 10,000 test images.
        let seconds =
            best3 (fun () -> Scoring.predict nets testT scoreBatch ProgressSink.none)

        row "test_prediction_images_per_s" (float test.Count / seconds) "img/s"

        // (d) plain cross-entropy: WAAL's step count (766) over the labelled set, batch 64.
        let plainNets, plainIterations, seconds =
            bestOf3 (fun () -> Training.plain (setup MatchWaal) 0 pool)

        (plainNets :> IDisposable).Dispose()
        row "plain_train_iterations_per_s" (float plainIterations / seconds) "it/s"

        // (e) peak resident memory of the whole process over rows a-d (the sweeps below are ours only).
        row
            "peak_rss_mb"
            (QueryTimes.processStatusKb "VmHWM"
             |> Option.map (fun kb -> kb / 1024.0)
             |> Option.defaultValue nan)
            "MB"

        // The scoring batch size, measured rather than guessed (the default is the spec's ScoreBatch).
        for b in [ 64; 125; 250; 500; 1000; 2000 ] do
            let seconds =
                best3 (fun () -> Scoring.scores nets poolT unlabelled b ProgressSink.none)

            row $"query_images_per_s_at_batch_{b}" (float unlabelled.Length / seconds) "img/s"

            let seconds = best3 (fun () -> Scoring.predict nets testT b ProgressSink.none)

            row $"prediction_images_per_s_at_batch_{b}" (float test.Count / seconds) "img/s"

        // The diversity strategies at pool scale: 1,000 picks from the 49,000 unlabelled images, on the WAAL model.
        let ctx: Waal.Strategies.Context =
            {
                Spec = { spec with Seed = 1L; Query = 1000 }
                Settings = config.Settings
                Device = torch.CPU
                PoolTensors = poolT
                Sink = ProgressSink.none
            }

        let diversity =
            Registry.all |> List.filter (fun s -> s.Name = "kcenter" || s.Name = "badge")

        for t in QueryTimes.measure ctx nets pool 1000 diversity do
            row $"{t.Strategy}_query_seconds" t.Seconds "s"
            row $"{t.Strategy}_peak_extra_mb" (t.PeakExtraMb |> Option.defaultValue nan) "MB"

        // Native memory across rounds: the real runner, five query rounds of WAAL (20,000-image pool, one epoch
        // each), the resident memory after each persisted round (after a .NET collection).
        let folder = Path.Combine(Path.GetTempPath(), $"waal-bench-{Environment.ProcessId}")

        let hooks =
            { Runner.quiet with
                AfterRound =
                    fun r ->
                        GC.Collect()
                        GC.WaitForPendingFinalizers()

                        row
                            $"rss_after_round_{r.Round}_mb"
                            (QueryTimes.processStatusKb "VmRSS"
                             |> Option.map (fun kb -> kb / 1024.0)
                             |> Option.defaultValue nan)
                            "MB"
            }

        let rounds =
            {
                Spec =
                    { spec with
                        Seed = 1L
                        PoolSize = Some 20000
                        Rounds = 5
                        Train = { spec.Train with Epochs = 1 }
                    }
                Settings =
                    { config.Settings with
                        Threads = threads
                    }
            }

        match Runner.run rounds folder true hooks with
        | Ok() -> ()
        | Error e -> eprintfn "%s" (ExperimentError.line e)

        if Directory.Exists folder then
            Directory.Delete(folder, true)

        0
