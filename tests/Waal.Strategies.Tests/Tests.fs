module Waal.Strategies.Tests.Tests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open TorchSharp
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Testing
open Waal.Strategies

let private fashion = Waal.Testing.Environment.fashion

/// 600 real Fashion-MNIST images as the pool, and one network trained on 100 of them with WAAL's trainer
/// (every strategy's query can run on it: it has features, classifier, embeddings and a critic).
type private Fixture =
    {
        Data: Dataset
        Tensors: Tensors.ImageTensors
        Nets: Nets.Networks
    }

let private size = 600

let private fixture =
    lazy
        (let train =
            match Load.fashionMnist fashion with
            | Ok(train, _) -> train
            | Error e -> failwith (DataError.line e)

         let data = Dataset.take size train
         let tensors = Tensors.ofDataset torch.CPU Normalisation.fashionMnist data

         let spec =
             (Datasets.reference "fashion-mnist" "waal" |> Result.defaultWith failwith).Spec

         let pool = Pools.labelled data.Labels 10 100 1L

         let setup =
             Training.setupOf
                 torch.CPU
                 tensors
                 { spec with
                     Train = { spec.Train with Epochs = 1 }
                     Seed = 1L
                     Query = 50
                 }
                 ProgressSink.none

         match Training.waal setup 0 100 pool with
         | Ok(nets, _) ->
             {
                 Data = data
                 Tensors = tensors
                 Nets = nets
             }
         | Error e -> failwith (LearnError.message e))

/// The spec variant a suite runs under: the reference (top-k), or a batch mode / WAAL uncertainty.
let mutable private variant: ExperimentSpec -> ExperimentSpec = id

let private context (seed: int64) (tensors: Tensors.ImageTensors) =
    {
        Spec =
            variant
                { (Datasets.reference "fashion-mnist" "waal" |> Result.defaultWith failwith).Spec with
                    Seed = seed
                }
        Settings = Options.defaultSettings
        Device = torch.CPU
        PoolTensors = tensors
        Sink = ProgressSink.none
    }

/// A pool state: some labelled items (1 .. size-1 of them, drawn with a seed), a round, k, and a seed.
type private Case =
    {
        Labelled: int
        Draw: int
        Round: int
        K: int
        Seed: int
    }

/// Cases whose unlabelled part has between `fewest` and `most` items.
let private casesWithUnlabelled (fewest: int) (most: int) =
    gen {
        let! labelled = Gen.choose (size - most, size - fewest)
        let! draw = Gen.choose (0, 10000)
        let! round = Gen.choose (0, 5)
        let! k = Gen.frequency [ 3, Gen.choose (1, 60); 1, Gen.choose (300, 700) ]
        let! seed = Gen.choose (1, 1000)

        return
            {
                Labelled = labelled
                Draw = draw
                Round = round
                K = k
                Seed = seed
            }
    }

/// Mostly a large unlabelled part (400 to 599 items), sometimes a small one (1 to 50).
let private cases =
    Gen.frequency [ 3, casesWithUnlabelled (size - 200) (size - 1); 1, casesWithUnlabelled 1 50 ]

let private poolOf (f: Fixture) (c: Case) =
    let empty = Pool.create size 10 |> Result.defaultWith (failwithf "%A")

    let picked =
        Pool.draw (Rng.key (int64 c.Draw) 0 (Rng.Named "case")) c.Labelled empty

    Pool.label 0 (picked |> Array.map (fun i -> i, f.Data.Labels[i])) empty
    |> Result.defaultWith (failwithf "%A")

let private query (s: Strategy) (ctx: Context) (nets: Nets.Networks) (pool: Pool) (c: Case) =
    match s.Query ctx nets pool c.Round c.K with
    | Ok picked -> picked
    | Error e -> failwith (LearnError.message e)

/// How many cases, and from which pools: DeepFool (up to 50 steps x 10 backward passes an item; 2 cases on the
/// usual pools took 28 s of the suite) gets more cases on pools of at most 80 unlabelled items.
let private casesFor (s: Strategy) =
    if s.Name = "dfal" then
        6, casesWithUnlabelled 1 80
    else
        12, cases

let private suiteUnder
    (label: string)
    (change: ExperimentSpec -> ExperimentSpec)
    (cases': int, generator: Gen<Case>)
    (s: Strategy)
    =
    let config =
        { FsCheckConfig.defaultConfig with
            maxTest = cases'
        }

    let prop name (check: Case -> bool) =
        testPropertyWithConfig
            config
            $"{label}: {name}"
            (Prop.forAll (Arb.fromGen generator) (fun c ->
                variant <- change

                try
                    check c
                finally
                    variant <- id))

    testList
        label
        [
            prop "returns min(k, |U|) distinct unlabelled indices" (fun c ->
                let f = fixture.Value
                let pool = poolOf f c
                let picked = query s (context (int64 c.Seed) f.Tensors) f.Nets pool c

                picked.Length = min c.K pool.UnlabelledCount
                && (Array.distinct picked).Length = picked.Length
                && picked
                   |> Array.forall (fun i -> i >= 0 && i < size && not (Pool.isLabelled pool i)))

            prop "the same seed gives the same indices" (fun c ->
                let f = fixture.Value
                let pool = poolOf f c
                let ctx = context (int64 c.Seed) f.Tensors
                query s ctx f.Nets pool c = query s ctx f.Nets pool c)

            if s.Deterministic then
                prop "chooses the same items when the pool is stored in another order" (fun c ->
                    let f = fixture.Value
                    let pool = poolOf f c
                    let perm = Rng.permutation (Rng.key (int64 c.Seed) 0 (Rng.Named "order")) size
                    // Item j of the permuted pool is item perm[j] of the original.
                    use idx = Tensors.indexTensor torch.CPU perm

                    let reordered =
                        match f.Tensors.Pixels with
                        | Tensors.Resident pixels -> pixels.index_select (0L, idx)
                        | Tensors.Streamed _
                        | Tensors.Embedded _ -> failwith "the fixture's pool is in memory"

                    let permuted =
                        { f.Tensors with
                            Pixels = Tensors.Resident reordered
                        }

                    let inverse = Array.zeroCreate size
                    perm |> Array.iteri (fun j i -> inverse[i] <- j)

                    let permutedPool =
                        Pool.create size 10
                        |> Result.bind (
                            Pool.label 0 (Pool.labelled pool |> Array.map (fun i -> inverse[i], f.Data.Labels[i]))
                        )
                        |> Result.defaultWith (failwithf "%A")

                    let direct = query s (context (int64 c.Seed) f.Tensors) f.Nets pool c |> set

                    let viaPermuted =
                        query s (context (int64 c.Seed) permuted) f.Nets permutedPool c
                        |> Array.map (fun j -> perm[j])
                        |> set

                    reordered.Dispose()
                    direct = viaPermuted)
        ]

let private suite (s: Strategy) = suiteUnder s.Name id (casesFor s) s

/// The strategies that rank by one score, under every batch mode but top-k (their reference suite covers it),
/// and WAAL with its margin and entropy uncertainty terms.
let private modes =
    let scalar = [ "waal"; "entropy"; "margin"; "least-confidence" ]

    testList
        "batch modes"
        [
            for name in scalar do
                let s = Registry.tryFind name |> Option.get

                for mode, modeName in [ SoftRank, "soft-rank"; ClassBalanced, "balanced"; Clustered, "cluster" ] do
                    suiteUnder
                        $"{name} {modeName}"
                        (fun spec ->
                            { spec with
                                Pick = { spec.Pick with Mode = mode }
                            })
                        (4, cases)
                        s

            for u, uName in [ MarginUncertainty, "margin"; EntropyUncertainty, "entropy" ] do
                suiteUnder
                    $"waal {uName} uncertainty"
                    (fun spec ->
                        { spec with
                            Method = { spec.Method with Uncertainty = u }
                        })
                    (4, cases)
                    Waal.strategy
        ]

/// Brute-force farthest-first: the full pairwise distance matrix, then k times the candidate whose nearest
/// centre is farthest (ties to the lower index).
let private bruteForceFarthestFirst (e: Embeddings) (centres: int[]) (candidates: int[]) (k: int) =
    let n = e.Count
    let dist = Array2D.init n n (fun a b -> e.SquaredDistance(a, b))
    let chosen = ResizeArray<int>(centres)

    [|
        for _ in 1 .. min k candidates.Length do
            let pick =
                candidates
                |> Array.filter (fun c -> not (chosen.Contains c))
                |> Array.maxBy (fun c ->
                    let nearest =
                        if chosen.Count = 0 then
                            infinity
                        else
                            chosen |> Seq.map (fun x -> dist[c, x]) |> Seq.min

                    nearest, -c)

            chosen.Add pick
            yield pick
    |]

let private specific =
    testList
        "specific"
        [
            test
                "transport sees the batch: no two copies of one image, no copy of a labelled one, where margin takes many" {
                let f = fixture.Value
                // 200 images three times over, exact copies: item c x 200 + i is copy c of image i.
                let data =
                    Dataset.repeat (Rng.key 1L 0 Rng.RepeatNoise) 3 0.0 (Dataset.take 200 f.Data)

                use tensors = Tensors.ofDataset torch.CPU Normalisation.fashionMnist data
                let pool = Pools.labelled data.Labels 10 30 5L

                let ctx =
                    let c = context 5L tensors

                    { c with
                        Spec =
                            { c.Spec with
                                BatchQuery =
                                    { c.Spec.BatchQuery with
                                        Candidates = 0
                                    }
                            }
                    }

                let run (s: Strategy) =
                    match s.Query ctx f.Nets pool 1 60 with
                    | Ok picked -> picked
                    | Error e -> failtest (LearnError.message e)

                let labelledImages = Pool.labelled pool |> Array.map (fun i -> i % 200) |> set

                let waste (picked: int[]) =
                    let images = picked |> Array.map (fun i -> i % 200)
                    let repeats = images.Length - (Array.distinct images).Length
                    let copies = images |> Array.filter labelledImages.Contains |> Array.length
                    repeats, copies

                Expect.equal (waste (run Transport.strategy)) (0, 0) "transport: no repeat, no copy of a labelled image"
                let repeats, _ = waste (run Margin.strategy)
                Expect.isGreaterThan repeats 10 "margin, one item at a time, takes copies of the same images"
                // Herding matches the pool with equal weights on the sites, so a dense part of the pool may be worth
                // a second copy; W1 to the best measure on L u S weighs each site freely and never is.
                Expect.isLessThan (waste (run Transport.mmd) |> fst) (repeats / 2) "mmd: far fewer repeats than margin"
            }

            testPropertyWithConfig
                { FsCheckConfig.defaultConfig with
                    maxTest = 8
                }
                "kcenter equals brute-force farthest-first on small pools"
                (Prop.forAll
                    (Arb.fromGen (Gen.zip3 (Gen.choose (20, 120)) (Gen.choose (1, 15)) (Gen.choose (0, 9999))))
                    (fun (n, k, seed) ->
                        let f = fixture.Value
                        let small = Dataset.take n f.Data
                        use tensors = Tensors.ofDataset torch.CPU Normalisation.fashionMnist small
                        let empty = Pool.create n 10 |> Result.defaultWith (failwithf "%A")

                        let first =
                            Pool.draw (Rng.key (int64 seed) 0 (Rng.Named "kc")) (max 1 (n / 5)) empty

                        let pool =
                            Pool.label 0 (first |> Array.map (fun i -> i, small.Labels[i])) empty
                            |> Result.defaultWith (failwithf "%A")

                        let ctx = context 1L tensors
                        let e = Scoring.embeddings f.Nets tensors (Array.init n id) 250 ProgressSink.none

                        let viaStrategy =
                            KCenter.strategy.Query ctx f.Nets pool 0 k
                            |> Result.defaultWith (fun e -> failwith (LearnError.message e))

                        viaStrategy = bruteForceFarthestFirst e (Pool.labelled pool) (Pool.unlabelled pool) k))

            test
                "BALD's passes keep BatchNorm in eval mode: only dropout layers are stochastic, and running statistics never change" {
                use _scope = torch.NewDisposeScope()
                torch.random.manual_seed 3L |> ignore
                use vgg = Nets.create torch.CPU 3 32 32 10 SigmoidOutput

                let before =
                    vgg.Features.state_dict ()
                    |> Seq.map (fun kv -> kv.Key, kv.Value.clone ())
                    |> Array.ofSeq

                Scoring.dropoutOnly vgg

                for m in vgg.Features.modules () do
                    match m with
                    | :? Modules.BatchNorm2d -> Expect.isFalse m.training "BatchNorm in eval mode"
                    | _ -> ()

                let dropouts =
                    [ vgg.Features :> torch.nn.Module; vgg.Classifier; vgg.Critic ]
                    |> List.collect (fun m -> m.modules () |> Seq.filter (fun x -> x :? Modules.Dropout) |> List.ofSeq)

                Expect.isNonEmpty dropouts "the classifier has dropout"
                Expect.all dropouts (fun d -> d.training) "dropout layers are stochastic"
                use x = torch.randn ([| 8L; 3L; 32L; 32L |])

                use _ = torch.no_grad ()
                let a = (vgg.Classifier.forward (vgg.Features.forward x)).clone()
                let b = vgg.Classifier.forward (vgg.Features.forward x)
                Expect.isFalse (a.allclose (b, 1e-5, 1e-8, false)) "two passes differ (dropout)"

                for name, value in before do
                    Expect.isTrue
                        (value.equal(vgg.Features.state_dict().[name]).all().item<bool>())
                        $"{name} unchanged (running statistics included)"
            }

            test "every registered strategy has a distinct name, a description, and is found by name" {
                Expect.equal (List.distinct Registry.names) Registry.names "distinct names"

                Expect.containsAll
                    Registry.names
                    [
                        "random"
                        "least-confidence"
                        "margin"
                        "entropy"
                        "bald"
                        "kmeans"
                        "kcenter"
                        "badge"
                        "dfal"
                        "waal"
                        "transport"
                        "mmd"
                    ]
                    "the baselines of docs/method.md, waal and the batch queries"

                for s in Registry.all do
                    Expect.isNotEmpty s.Description s.Name

                    Expect.equal
                        (Registry.tryFind (s.Name.ToUpperInvariant()) |> Option.map (fun f -> f.Name))
                        (Some s.Name)
                        $"{s.Name} by name"
            }
        ]

/// WAAL's critic measured on the items withheld from its steps: trained on a pool whose unlabelled part is its
/// labelled part's kind of image inverted (separable by construction), it must tell them apart on the withheld
/// items; on a pool where the two parts are a random split of the same images, it must not.
let private critic =
    testList
        "WAAL's critic"
        [
            test
                "on withheld items its AUC is near 1 when L and U differ by construction, and near 0.5 for a random split" {
                let f = fixture.Value
                let half = size / 2
                let pixels = Dataset.pixels f.Data
                let bytes = f.Data.ImageSize

                // Items 0 .. half-1 as they are, half .. size-1 inverted (255 - v).
                let inverted =
                    pixels |> Array.mapi (fun j v -> if j / bytes >= half then 255uy - v else v)

                let spec =
                    let r =
                        (Datasets.reference "fashion-mnist" "waal" |> Result.defaultWith failwith).Spec

                    { r with
                        Seed = 7L
                        Query = 50
                        Train =
                            { r.Train with
                                Epochs = 5
                                Budget = EpochsOverFloor
                                Floor = 1280
                            }
                        Method =
                            { r.Method with
                                CriticOptimiser = CriticAdam
                                CriticLearningRate = 1e-3
                                Imbalance = Imbalance.One
                                CriticHoldout = 0.25
                                CriticSteps = 3
                            }
                    }

                let measured (images: byte[]) (labelled: int[]) =
                    let data =
                        Dataset.create "test" images f.Data.Labels 1 28 28 10
                        |> Result.defaultWith (fun e -> failwith (DataError.line e))

                    use tensors = Tensors.ofDataset torch.CPU Normalisation.fashionMnist data

                    let ctx =
                        {
                            Spec = spec
                            Settings = Options.defaultSettings
                            Device = torch.CPU
                            PoolTensors = tensors
                            Sink = ProgressSink.none
                        }

                    let pool =
                        Pool.create size 10
                        |> Result.bind (Pool.label 0 (labelled |> Array.map (fun i -> i, data.Labels[i])))
                        |> Result.defaultWith (failwithf "%A")

                    match Waal.strategy.Train ctx pool 0 spec.Query with
                    | Error e -> failwith (LearnError.message e)
                    | Ok(nets, _) ->
                        use nets = nets

                        let signals =
                            Waal.signals ctx nets pool 0 spec.Query
                            |> Result.defaultWith (fun e -> failwith (LearnError.message e))
                            |> dict

                        signals["critic_holdout_auc"],
                        signals["critic_holdout_auc_low"],
                        signals["critic_holdout_auc_high"]

                // L: the images as they are; U: the inverted ones.
                let auc, low, _ = measured inverted (Array.init half id)
                Expect.isGreaterThan auc 0.95 $"separable by construction: AUC {auc}"
                Expect.isGreaterThan low 0.9 $"and its interval's low end {low}"

                // L: a random half of the same (untouched) images.
                let random =
                    Rng.permutation (Rng.key 7L 0 (Rng.Named "split")) size
                    |> Array.truncate half
                    |> Array.sort

                let auc, low, high = measured pixels random
                Expect.isLessThan (abs (auc - 0.5)) 0.12 $"a random split: AUC {auc} near 0.5"
                Expect.isLessThan low 0.5 $"its interval ({low}, {high}) holds 0.5"
                Expect.isGreaterThan high 0.5 $"its interval ({low}, {high}) holds 0.5"
            }

            test
                "a frozen critic keeps its initial weights; a trained one moves, its gap is traced, the batch is compared" {
                let f = fixture.Value

                let run (trained: bool) =
                    let r =
                        (Datasets.reference "fashion-mnist" "waal" |> Result.defaultWith failwith).Spec

                    let spec =
                        { r with
                            Seed = 3L
                            Query = 40
                            Train = { r.Train with Epochs = 1 }
                            Method =
                                { r.Method with
                                    CriticTrained = trained
                                }
                        }

                    let ctx =
                        {
                            Spec = spec
                            Settings = Options.defaultSettings
                            Device = torch.CPU
                            PoolTensors = f.Tensors
                            Sink = ProgressSink.none
                        }

                    let pool = Pools.labelled f.Data.Labels 10 100 3L

                    match Waal.strategy.Train ctx pool 0 spec.Query with
                    | Error e -> failwith (LearnError.message e)
                    | Ok(nets, _) ->
                        use nets = nets

                        let ok r =
                            r |> Result.defaultWith (fun e -> failwith (LearnError.message e))

                        let signals = Waal.signals ctx nets pool 0 spec.Query |> ok |> dict

                        // critic_off_overlap is over the k items the round queried (a caller's count or a label
                        // budget can cut the spec's 40 to 7), at a selection of 0.3, where the critic term changes
                        // part of the batch (2 of these 7 stay without it, 26 of the 40): what the round reports
                        // and the overlap of the two batches of 7.
                        let k = 7

                        let scored (score: WaalScore) (selection: float) =
                            { ctx with
                                Spec =
                                    { spec with
                                        Method =
                                            { spec.Method with
                                                Score = score
                                                Selection = selection
                                            }
                                    }
                            }

                        let queried = Waal.query (scored Combined 0.3) nets pool 0 k |> ok

                        let without =
                            Waal.query (scored UncertaintyOnly 0.3) nets pool 0 k |> ok |> Set.ofArray

                        let expected =
                            float (queried |> Array.filter without.Contains |> Array.length) / float k

                        let reported =
                            (Waal.signals (scored Combined 0.3) nets pool 0 k |> ok |> dict)["critic_off_overlap"]

                        signals, (expected, reported)

                let frozen, _ = run false
                Expect.equal frozen["critic_moved"] 0.0 "a frozen critic does not move"
                Expect.isTrue (Double.IsNaN frozen["wgap_first"]) "and has no gap of its own steps"
                let trained, (expected, reported) = run true
                Expect.isGreaterThan trained["critic_moved"] 0.0 "a trained critic moves"
                Expect.isLessThan expected 1.0 "at selection 0.3 the critic term changes the batch of 7"
                Expect.equal reported expected "critic_off_overlap is over the 7 items queried, not the spec's 40"

                for name in [ "wgap_first"; "wgap_middle"; "wgap_last"; "grad_ratio" ] do
                    Expect.isTrue (Double.IsFinite trained[name]) $"{name} is measured"

                let overlap = trained["critic_off_overlap"]
                Expect.isTrue (overlap >= 0.0 && overlap <= 1.0) $"the overlap is a fraction: {overlap}"
            }
        ]

let all =
    testSequenced (
        testList
            "Strategies"
            [
                yield! Registry.all |> List.map suite
                yield modes
                yield specific
                yield critic
            ]
    )
