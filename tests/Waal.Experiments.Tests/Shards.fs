/// `waal query` in shards: the merged batch equals the one-process batch, which equals the strategy's own query,
/// for every strategy that shards and every batch mode; shard files that do not fit are refused by name.
module Waal.Experiments.Tests.Shards

open System
open System.IO
open Expecto
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Experiments
open Waal.Strategies

let private fashion = Waal.Testing.Environment.fashion

let private ok what =
    function
    | Ok v -> v
    | Error e -> failtestf "%s: %s" what (ExperimentError.line e)

/// A trained round 0 (400 pool images, 20 labels, 1 epoch) of a strategy, with score batches of 64 so that the
/// 380 unlabelled items make 6 batches, which 4 shards cannot split evenly and 8 shards leave some empty.
let private trained (strategy: string) (f: ExperimentSpec -> ExperimentSpec) =
    let c = Datasets.reference "fashion-mnist" strategy |> Result.defaultWith failwith

    let config =
        { c with
            Settings =
                { c.Settings with
                    DataDir = fashion
                    Threads = 2
                    ScoreBatch = 64
                }
            Spec =
                f
                    { c.Spec with
                        Strategy = strategy
                        PoolSize = Some 400
                        Initial = 20
                        Query = 16
                        Rounds = 0
                        Seed = 5L
                        Train = { c.Spec.Train with Epochs = 1 }
                    }
        }

    let dir =
        Path.Combine(Path.GetTempPath(), "waal-shards-" + Guid.NewGuid().ToString "N")

    Runner.run config dir false Runner.quiet |> ok $"training {strategy}"
    dir

let private inShards (o: QueryShards.Opened) (dir: string) (shards: int) =
    let files =
        [
            for s in 0 .. shards - 1 do
                let items, terms = QueryShards.scoreShard o s shards
                let file = Path.Combine(dir, $"shard-{shards}-{s}.bin")
                QueryShards.writeShard file o s shards items terms |> ok "write shard"
                file
        ]

    files, QueryShards.merge o (List.rev files) |> ok $"merge of {shards}"

let private case (name: string) (strategy: string) (f: ExperimentSpec -> ExperimentSpec) =
    test $"{name}: the merged batch of 4 or 8 shards equals one process's, and the strategy's own query" {
        let dir = trained strategy f

        try
            use o = QueryShards.openRun dir ProgressSink.none |> ok "open"
            let one = QueryShards.queryAll o |> ok "one process"
            Expect.equal one.Length 16 "a batch of the spec's size"
            Expect.equal (Array.distinct one).Length one.Length "distinct items"
            Expect.isTrue (one |> Array.forall (fun i -> not (Pool.isLabelled o.Pool i))) "unlabelled items"

            let own =
                (Registry.tryFind strategy).Value.Query o.Context o.Nets o.Pool o.Round o.K
                |> Result.defaultWith (fun e -> failtestf "the strategy's query: %s" (LearnError.message e))

            Expect.equal one own "one process = the strategy's own query"

            for shards in [ 4; 8 ] do
                let files, merged = inShards o dir shards
                Expect.equal merged one $"{shards} shards, merged = one process"

                if shards = 8 then
                    Expect.isTrue
                        (files
                         |> List.exists (fun f -> (QueryShards.readShard f |> ok "read").Items.Length = 0))
                        "8 shards of 6 batches: some are empty, and merge all the same"
        finally
            Directory.Delete(dir, true)
    }

let private refusals =
    test "shard files that are missing, repeated, from another state, cut short or not shards are refused by name" {
        let a = trained "margin" id
        let b = trained "margin" (fun s -> { s with Seed = 6L })

        try
            use o = QueryShards.openRun a ProgressSink.none |> ok "open a"
            use other = QueryShards.openRun b ProgressSink.none |> ok "open b"
            let files, _ = inShards o a 4
            let otherFiles, _ = inShards other b 4

            let refused (files: string list) (expected: string) =
                match QueryShards.merge o files with
                | Ok _ -> failtestf "merged %A" files
                | Error e ->
                    let line = ExperimentError.line e
                    Expect.stringContains line expected $"the refusal says why: {line}"
                    line

            refused (List.take 3 files) "missing: [3]" |> ignore
            refused (files @ [ files[1] ]) "repeated: [1]" |> ignore
            let line = refused (files[..2] @ [ otherFiles[3] ]) "another state of the run"
            Expect.stringContains line otherFiles[3] "names the file"

            let cut = Path.Combine(a, "cut.bin")
            let bytes = File.ReadAllBytes files[2]
            File.WriteAllBytes(cut, bytes[.. bytes.Length - 9])
            refused [ files[0]; files[1]; cut; files[3] ] "cut short or extended" |> ignore

            let text = Path.Combine(a, "text.bin")
            File.WriteAllText(text, "index,score\n1,0.5\n")
            refused [ files[0]; files[1]; text; files[3] ] "not a query shard" |> ignore
            refused [] "no shard files" |> ignore

            // A strategy that needs the whole pool is refused before any data is read.
            let spec = Path.Combine(a, "spec.json")
            File.WriteAllText(spec, File.ReadAllText(spec).Replace("\"margin\"", "\"kcenter\""))

            match QueryShards.openRun a ProgressSink.none with
            | Ok _ -> failtest "kcenter opened for shards"
            | Error e ->
                let line = ExperimentError.line e
                Expect.stringContains line "'kcenter' does not query in shards" line
                Expect.stringContains line "spec.json" "names the spec"
        finally
            Directory.Delete(a, true)
            Directory.Delete(b, true)
    }

/// One at a time: BALD's dropout masks come from libtorch's one global generator, which a test training beside it
/// would draw from between the seeding and the passes.
let all =
    testSequenced
    <| testList
        "query shards"
        [
            case "random" "random" id
            case "bald" "bald" id
            case "least-confidence, clustered" "least-confidence" (fun s ->
                { s with
                    Pick =
                        { s.Pick with
                            Mode = Clustered
                            Candidates = 3
                        }
                })
            case "margin, class-balanced" "margin" (fun s ->
                { s with
                    Pick = { s.Pick with Mode = ClassBalanced }
                })
            case "entropy, soft-rank" "entropy" (fun s ->
                { s with
                    Pick = { s.Pick with Mode = SoftRank }
                })
            case "waal, the paper's score, top-k" "waal" (fun s ->
                { s with
                    Method =
                        { s.Method with
                            Uncertainty = BoundUncertainty
                            ScoreScale = PaperScale
                            Selection = 1.0
                        }
                    Pick = { s.Pick with Mode = TopK }
                })
            case "waal, margin on the z-scale, clustered" "waal" (fun s ->
                { s with
                    Method =
                        { s.Method with
                            Uncertainty = MarginUncertainty
                            ScoreScale = ZScale
                            Selection = 0.5
                        }
                    Pick = { s.Pick with Mode = Clustered }
                })
            refusals
        ]
