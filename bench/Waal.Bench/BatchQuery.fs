/// The batch queries' speed on a real pool (bench/batch-query.sh): the networks trained once on 1,000 labels of
/// Fashion-MNIST, then the query of k items from the unlabelled rest of a pool of N (noisy copies beyond the
/// 60,000 training images, as `--repeat` makes them), timed for transport and mmd under their settings and for
/// BADGE, k-center and margin on the same networks. Prints CSV rows `strategy,setting,pool,k,seconds,peak_extra_mb`.
module Waal.Bench.BatchQuery

open System
open TorchSharp
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Experiments
open Waal.Strategies

let run (folder: string) (threads: int) (poolSize: int) (k: int) (which: string list) =
    Device.configure threads

    match Load.fashionMnist folder with
    | Error e ->
        eprintfn "%s" (DataError.line e)
        2
    | Ok(train, _) ->
        let originals = Dataset.take (min poolSize 50000) train
        let copies = (poolSize + originals.Count - 1) / originals.Count

        let poolData =
            Dataset.repeat (Rng.key 1L 0 Rng.RepeatNoise) copies 0.03 originals
            |> Dataset.take poolSize

        let entry = Datasets.find "fashion-mnist" |> Result.defaultWith failwith
        use poolT = Tensors.ofEntry entry torch.CPU poolData poolData

        let config =
            Datasets.defaults "fashion-mnist" "margin" |> Result.defaultWith failwith

        let spec =
            { config.Spec with
                Seed = 1L
                Query = k
            }

        let empty = Pool.create poolData.Count 10 |> Result.defaultWith (failwithf "%A")
        let initial = Pool.draw (Rng.key 1L 0 Rng.InitialDraw) 1000 empty

        let pool =
            Pool.label 0 (initial |> Array.map (fun i -> i, poolData.Labels[i])) empty
            |> Result.defaultWith (failwithf "%A")

        let ctxOf (s: ExperimentSpec) : Context =
            {
                Spec = s
                Settings = config.Settings
                Device = torch.CPU
                PoolTensors = poolT
                Sink = ProgressSink.none
            }

        let nets, _ =
            Training.plain (ctxOf spec).Setup 0 pool
            |> Result.defaultWith (fun e -> failwith (LearnError.message e))

        use nets = nets
        printfn "strategy,setting,pool,k,seconds,peak_extra_mb"

        let time (label: string) (s: ExperimentSpec) (name: string) =
            let strategy = (Registry.tryFind name).Value

            for t in QueryTimes.measure (ctxOf s) nets pool k [ strategy ] do
                printfn
                    "%s,%s,%d,%d,%.3f,%.0f"
                    t.Strategy
                    label
                    poolData.Count
                    k
                    t.Seconds
                    (t.PeakExtraMb |> Option.defaultValue nan)

        let b = spec.BatchQuery

        for w in which do
            match w with
            | "transport"
            | "mmd" -> time "default" spec w
            | "transport-all-candidates" ->
                time
                    "candidates=all"
                    { spec with
                        BatchQuery = { b with Candidates = 0 }
                    }
                    "transport"
            | "transport-all-targets" ->
                time
                    "targets=all"
                    { spec with
                        BatchQuery = { b with Targets = Int32.MaxValue }
                    }
                    "transport"
            | "transport-3k" ->
                time
                    "candidates=3"
                    { spec with
                        BatchQuery = { b with Candidates = 3 }
                    }
                    "transport"
            | name -> time "" spec name

        0
