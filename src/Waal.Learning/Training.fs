/// The two trainers of a round: WAAL's adversarial min-max (steps A and B with the gradient penalty) and plain
/// cross-entropy on the labelled set. Fresh networks every round, seeded from the round's key.
module Waal.Learning.Training

open System
open TorchSharp
open type TorchSharp.torch
open type TorchSharp.torch.nn
// torch exposes ScalarType fields named int64, float32, ...: take F#'s conversion functions back.
open Microsoft.FSharp.Core.Operators
open TorchSharp.Modules
open Waal.Core
open Waal.Learning.Nets
open Waal.Learning.Tensors

/// What a trainer needs besides the pool: the data, the device, the options and the round's identity.
type Setup =
    {
        Device: Device
        Data: ImageTensors
        Train: TrainOptions
        Method: MethodOptions
        Seed: int64
        /// The network registry's name (Architecture.resolve).
        Network: string
        /// Where long work reports its steps.
        Sink: ProgressSink
    }

/// The setup a spec describes: its training and method options and its seed (the round's batch |B| is the
/// trainer's argument, not the spec's: a label budget or a caller's count can cut it).
let setupOf (device: Device) (data: ImageTensors) (spec: ExperimentSpec) (progress: ProgressSink) =
    {
        Device = device
        Data = data
        Train = spec.Train
        Method = spec.Method
        Seed = spec.Seed
        Network = spec.Network
        Sink = progress
    }

/// Seeds libtorch's generator from the key (seed, round, purpose).
let seedTorchFor (seed: int64) (round: int) (purpose: Rng.Purpose) =
    torch.random.manual_seed (Rng.seedFor (Rng.key seed round purpose)) |> ignore

/// Seeds libtorch's generator for a round's training: initialisation, dropout, the penalty's t, augmentation.
let seedTorch (seed: int64) (round: int) =
    seedTorchFor seed round Rng.TorchTraining

let private requiresGrad (m: nn.Module) (on: bool) =
    for p in m.parameters () do
        p.requires_grad <- on

let private sgd (m: nn.Module) (o: TrainOptions) =
    torch.optim.SGD(m.parameters (), o.LearningRate, o.Momentum, weight_decay = o.WeightDecay, nesterov = o.Nesterov)

/// Sets every parameter group's learning rate.
let private setRate (opt: optim.Optimizer) (lr: float) =
    for g in opt.ParamGroups do
        g.LearningRate <- lr

/// Applies the schedule's rate for a step to the optimisers (nothing under the constant schedule, so the
/// reference never touches them).
let private schedule (o: TrainOptions) (perEpoch: int64) (total: int64) (step: int64) (opts: optim.Optimizer list) =
    match o.Schedule with
    | ConstantRate -> ()
    | CosineRate ->
        let lr = Budget.rate o perEpoch total step

        for opt in opts do
            setRate opt lr

/// The pool's labels as an int64 tensor over all pool indices (-1 where unlabelled): labels come from the pool
/// (what the oracle said), never from the dataset's hidden labels.
let private labelTensor (device: Device) (pool: Pool) =
    let labels =
        Array.init pool.Size (fun i -> Pool.labelOf pool i |> Option.map int64 |> Option.defaultValue -1L)

    torch.tensor(labels).``to`` device

/// Random crop (zero padding 4) and horizontal flip per image, from libtorch's seeded generator.
let internal augment (x: Tensor) =
    let n = x.shape[0]
    let h = x.shape[2]
    let w = x.shape[3]
    let padded = functional.pad (x, [| 4L; 4L; 4L; 4L |])
    let offsets = torch.randint(0L, 9L, [| n; 2L |]).data<int64>().ToArray()
    let flips = (torch.rand (n)).lt(torch.tensor 0.5).data<bool>().ToArray()

    let crops =
        [|
            for i in 0L .. n - 1L ->
                let c =
                    padded[i].narrow(1L, offsets[int i * 2], h).narrow(2L, offsets[int i * 2 + 1], w)

                if flips[int i] then c.flip (2L) else c
        |]

    torch.stack (crops, 0L)

/// One SGD step of f and h on the cross-entropy of a labelled batch; returns the loss.
let private crossEntropyStep (nets: Networks) (optF: optim.Optimizer) (optH: optim.Optimizer) (x: Tensor) (y: Tensor) =
    optF.zero_grad ()
    optH.zero_grad ()

    let ce =
        functional.cross_entropy (nets.Classifier.forward (nets.Features.forward x), y)

    ce.backward ()
    optF.step () |> ignore
    optH.step () |> ignore
    ce.item<float32>()

/// The critic's output a method needs: the H-divergence discriminator gives a probability, whatever the critic
/// option says.
let criticOutput (m: MethodOptions) =
    match m.Adversary with
    | Wasserstein -> m.CriticOutput
    | HDivergence -> SigmoidOutput

let private finite (value: float32) = Single.IsFinite value

/// A training's result: the networks and their step count, or the failure (the networks then disposed).
let private finished (nets: Networks) (failure: LearnError option) (iterations: int64) =
    match failure with
    | Some e ->
        (nets :> IDisposable).Dispose()
        Error e
    | None -> Ok(nets, iterations)

/// The labelled and unlabelled pool items a round withholds from the critic's steps (`CriticHoldout` of each,
/// rounded, drawn by permutations keyed (seed, round, purpose)): the classifier still trains on them, so the
/// critic can be measured on items it never saw (the strategy's signals draw the same sets).
let criticHoldout (seed: int64) (round: int) (fraction: float) (pool: Pool) =
    let draw (items: int[]) (purpose: string) =
        let n =
            int (Math.Round(fraction * float items.Length, MidpointRounding.AwayFromZero))

        Rng.permutation (Rng.key seed round (Rng.Named purpose)) items.Length
        |> Array.truncate n
        |> Array.map (fun i -> items[i])
        |> Array.sort

    draw (Pool.labelled pool) "critic-holdout-labelled", draw (Pool.unlabelled pool) "critic-holdout-unlabelled"

/// Mean of each tenth of a series: the first, the middle (fifth) and the last.
let private tenths (xs: ResizeArray<float>) =
    if xs.Count = 0 then
        nan, nan, nan
    else
        let part (k: int) =
            let a = k * xs.Count / 10
            let b = max (a + 1) ((k + 1) * xs.Count / 10)
            Seq.averageBy id (Seq.take (min xs.Count b - a) (Seq.skip a xs))

        part 0, part 4, part 9

/// WAAL's adversarial training of one round. Under the reference budget each epoch pairs max(|L|,|U|) items
/// (Pairing.epoch); under the floor budget it takes as many steps as the plain trainer, each labelled batch
/// paired with an unlabelled batch from shuffled passes over U (see `segment`). Each batch of `Batch` labelled +
/// `Batch` unlabelled items runs
/// - step A (f, h; critic frozen): CE(h(f(xl)), yl) + alpha (mean g(f(xu)) - c mean g(f(xl)));
/// - step B (critic only; features recomputed without grad): -alpha gap + sign x weight x alpha x GP.
/// The reference's zero-gradient penalty term in step A is left out (it cannot change anything). Without
/// BatchNorm, labelled and unlabelled inputs go through f in one forward pass. With no unlabelled items left,
/// only the cross-entropy is trained. `batch` is the round's query batch |B| (what the paper's imbalance
/// coefficient reads): the batch this round queries, or would query on the last round. Returns the networks and
/// the number of iterations (A + B pairs).
let waal (s: Setup) (round: int) (batch: int) (pool: Pool) : Result<Networks * int64, LearnError> =
    seedTorch s.Seed round
    let d = s.Data

    let nets =
        Nets.createNamed s.Network s.Device d.Channels d.Height d.Width d.Classes (criticOutput s.Method)
    // A cancelled or failed training (an exception from the progress sink, a native error) must not leave
    // the networks to the finaliser: they are disposed on every path but success.
    try
        let labelled = Pool.labelled pool
        let unlabelled = Pool.unlabelled pool

        let c =
            Imbalance.value s.Method.Imbalance labelled.Length (max 1 unlabelled.Length) batch

        let alpha = s.Method.Alpha

        // What the adversary maximises and f minimises: the critic gap (Wasserstein), or, for the paper's
        // H-divergence ablation, the discriminator's log-likelihood of "unlabelled" on zu and "labelled" on zl
        // (binary cross-entropy, no penalty; the labelled term weighted by c as in the gap).
        let adversaryGap (onUnlabelled: Tensor) (onLabelled: Tensor) =
            match s.Method.Adversary with
            | Wasserstein -> Adversarial.gap onUnlabelled onLabelled c
            | HDivergence ->
                let clip (t: Tensor) =
                    t.clamp (Scalar.op_Implicit 1e-6, Scalar.op_Implicit (1.0 - 1e-6))

                let logU: Tensor = (clip onUnlabelled).log()
                let logL: Tensor = (torch.ones_like onLabelled - clip onLabelled).log()
                logU.mean () + logL.mean () * c

        use labels = labelTensor s.Device pool
        use optF = sgd nets.Features s.Train
        use optH = sgd nets.Classifier s.Train

        use optG =
            match s.Method.CriticOptimiser with
            | CriticSgd -> sgd nets.Critic s.Train :> optim.Optimizer
            | CriticAdam -> torch.optim.Adam(nets.Critic.parameters (), s.Method.CriticLearningRate)

        // The critic's loss scale: alpha under the networks' SGD (the reference), 1 under its own Adam.
        let criticScale =
            match s.Method.CriticOptimiser with
            | CriticSgd -> alpha
            | CriticAdam -> 1.0

        let scheduled =
            match s.Method.CriticOptimiser with
            | CriticSgd -> [ optF :> optim.Optimizer; optH; optG ]
            | CriticAdam -> [ optF :> optim.Optimizer; optH ]

        let augmenting = s.Method.Augment && d.Channels = 3 && d.Height > 1
        let mutable failure = None
        let mutable iterations = 0L
        nets.Train true

        // Diagnostics (Nets.Trace): the critic's starting weights, its gap at each step, the ratio of the
        // adversarial to the cross-entropy gradient on the features every `sampleEvery` steps. None of it changes
        // a parameter.
        let criticStart =
            [
                for p in nets.Critic.parameters () do
                    use detached = p.detach ()
                    detached.clone ()
            ]

        let gaps = ResizeArray<float>()
        let ratios = ResizeArray<float>()
        let sampleEvery = 25L

        let heldL, heldU = criticHoldout s.Seed round s.Method.CriticHoldout pool
        let withheld = Collections.Generic.HashSet<int>(Array.append heldL heldU)

        // Passes over an empty L would never end: the floor budget needs a label (the reference's pairing refuses
        // it too).
        if labelled.Length = 0 then
            invalidArg (nameof pool) "training needs at least one labelled item"

        let perEpoch = Budget.perEpoch s.Train true labelled.Length unlabelled.Length
        let totalSteps = Budget.steps s.Train true labelled.Length unlabelled.Length

        // A segment's labelled and unlabelled items, pair by pair, and its name for the progress sink. The
        // reference: epoch e pairs max(|L|,|U|) items (Pairing.epoch). The floor budget: segment p is a
        // shuffled pass over L (the plain trainer's shuffle) paired with the next |L| items of shuffled passes
        // over U; segments go on until the budget's steps are taken.
        let segment (n: int) =
            match s.Train.Budget with
            | EpochsOverFloor ->
                let li =
                    Rng.permutation (Rng.key s.Seed round (Rng.PlainShuffle n)) labelled.Length
                    |> Array.map (fun i -> labelled[i])

                let ui =
                    Pairing.passRun
                        (fun q -> Rng.key s.Seed round (Rng.UnlabelledPass q))
                        unlabelled
                        (int64 n * int64 labelled.Length)
                        labelled.Length

                li, ui, None
            | EpochsOverLabelled
            | MatchWaal ->
                let li, ui =
                    Pairing.epoch (Rng.key s.Seed round (Rng.EpochPairs n)) labelled unlabelled

                li, ui, Some $"round {round} epoch {n + 1}/{s.Train.Epochs}"

        let mutable n = 0

        // The progress sink sees one phase per epoch under the reference budget, and one phase for the whole
        // round under the floor budget (whose passes over a small L are a few steps each).
        if s.Train.Budget = EpochsOverFloor then
            s.Sink.Start $"round {round} training ({totalSteps} steps)" (int totalSteps)

        while failure.IsNone && iterations < totalSteps do
            let epoch = n
            n <- n + 1

            if failure.IsNone then
                let li, ui, phase = segment epoch

                use liT = indexTensor s.Device li
                use uiT = indexTensor s.Device ui
                // Without BatchNorm or augmentation, each batch's inputs are gathered in one index_select: batch b's
                // labelled items followed by its unlabelled ones, laid out per epoch so a batch is one narrow.
                let fused = not nets.HasBatchNorm && not augmenting && ui.Length > 0

                use pairsT =
                    if fused then
                        let pairs = Array.zeroCreate (2 * li.Length)

                        for b in 0 .. Pairing.batches li.Length s.Train.Batch - 1 do
                            let start = b * s.Train.Batch
                            let len = min s.Train.Batch (li.Length - start)

                            for k in 0 .. len - 1 do
                                pairs[2 * start + k] <- int64 li[start + k]
                                pairs[2 * start + len + k] <- int64 ui[start + k]

                        torch.tensor(pairs).``to`` s.Device
                    else
                        null

                let total =
                    int (min (int64 (Pairing.batches li.Length s.Train.Batch)) (totalSteps - iterations))

                phase |> Option.iter (fun name -> s.Sink.Start name total)
                let mutable b = 0

                while failure.IsNone && b < total do
                    use _scope = torch.NewDisposeScope()
                    schedule s.Train perEpoch totalSteps iterations scheduled
                    let start = int64 (b * s.Train.Batch)
                    let len = min (int64 s.Train.Batch) (int64 li.Length - start)
                    let idxL = liT.narrow (0L, start, len)
                    let yl = labels.index_select (0L, idxL)

                    // The batch's inputs: labelled rows then unlabelled rows (one tensor when fused).
                    let inputs () =
                        if fused then
                            d.Gather(pairsT.narrow (0L, 2L * start, 2L * len))
                        else
                            let xl = d.Gather(idxL)
                            let xu = d.Gather(uiT.narrow (0L, start, len))
                            let xl = if augmenting then augment xl else xl
                            let xu = if augmenting then augment xu else xu
                            torch.cat ([| xl; xu |], 0L)

                    if ui.Length = 0 then
                        let xl = d.Gather(idxL)
                        let xl = if augmenting then augment xl else xl
                        let v = crossEntropyStep nets optF optH xl yl

                        if not (finite v) then
                            failure <- Some(Diverged(round, epoch, b, "the cross-entropy", float v))
                    else
                        let x = inputs ()

                        // f over the labelled and unlabelled rows: one forward pass without BatchNorm, two with it
                        // (batch statistics must not mix the sets). Returns all features, labelled rows first.
                        let features () =
                            if nets.HasBatchNorm then
                                torch.cat (
                                    [|
                                        nets.Features.forward (x.narrow (0L, 0L, len))
                                        nets.Features.forward (x.narrow (0L, len, len))
                                    |],
                                    0L
                                )
                            else
                                nets.Features.forward x

                        // Step A: f and h against the frozen critic.
                        requiresGrad nets.Critic false
                        optF.zero_grad ()
                        optH.zero_grad ()
                        let z = features ()
                        // A head's f has no parameters (the inputs are a backbone's embeddings): z is then data, and
                        // the diagnostics below take gradients with respect to it, so it is made a leaf that has them.
                        let z =
                            if z.requires_grad then
                                z
                            else
                                z.detach().requires_grad_ true

                        let ce =
                            functional.cross_entropy (nets.Classifier.forward (z.narrow (0L, 0L, len)), yl)

                        let gz = nets.Critic.forward z
                        let gapA = adversaryGap (gz.narrow (0L, len, len)) (gz.narrow (0L, 0L, len))
                        let lossA = ce + gapA * alpha

                        if iterations % sampleEvery = 0L && alpha > 0.0 then
                            let onFeatures (t: Tensor) =
                                (torch.autograd.grad ([| t |], [| z |], retain_graph = true)).[0].norm().item<float32>()

                            let ceNorm = onFeatures ce

                            if ceNorm > 0.0f then
                                ratios.Add(float (onFeatures (gapA * alpha)) / float ceNorm)

                        lossA.backward ()
                        optF.step () |> ignore
                        optH.step () |> ignore
                        requiresGrad nets.Critic true

                        // Step B: the critic, on features recomputed after step A, without gradients into f;
                        // `CriticSteps` times; never on the items withheld from it; not at all for a frozen critic.
                        let z2 =
                            use _ = torch.no_grad ()
                            features ()

                        // The critic's rows: every row, or those of items not withheld (as many of each side).
                        let critics =
                            if withheld.Count = 0 then
                                Some(z2, len)
                            else
                                let keep (items: int[]) (offset: int64) =
                                    [|
                                        for r in 0 .. int len - 1 do
                                            if not (withheld.Contains items[int start + r]) then
                                                offset + int64 r
                                    |]

                                let rowsL = keep li 0L
                                let rowsU = keep ui len
                                let m = min rowsL.Length rowsU.Length

                                if m = 0 then
                                    None
                                else
                                    let rows = Array.append rowsL[.. m - 1] rowsU[.. m - 1]
                                    Some(z2.index_select (0L, torch.tensor(rows).``to`` s.Device), int64 m)

                        let mutable bv = 0.0f

                        match critics with
                        | Some(zc, m) when s.Method.CriticTrained ->
                            let zl2 = zc.narrow (0L, 0L, m)
                            let zu2 = zc.narrow (0L, m, m)

                            for k in 1 .. s.Method.CriticSteps do
                                optG.zero_grad ()
                                let gz2 = nets.Critic.forward zc
                                let gapB = adversaryGap (gz2.narrow (0L, m, m)) (gz2.narrow (0L, 0L, m))

                                let lossB =
                                    match s.Method.Adversary with
                                    | Wasserstein ->
                                        let gp = Adversarial.gradientPenalty nets.Critic.forward zu2 zl2
                                        Adversarial.criticLoss criticScale gapB gp s.Method.GpSign s.Method.GpWeight
                                    | HDivergence -> gapB * -criticScale

                                lossB.backward ()
                                optG.step () |> ignore
                                bv <- lossB.item<float32>()

                                if k = 1 then
                                    gaps.Add(float (gapB.item<float32>()))
                        | _ -> ()

                        let a = lossA.item<float32>()

                        if not (finite a) then
                            failure <- Some(Diverged(round, epoch, b, "the loss of step A (f, h)", float a))
                        elif not (finite bv) then
                            failure <- Some(Diverged(round, epoch, b, "the loss of step B (critic)", float bv))

                    iterations <- iterations + 1L
                    b <- b + 1
                    s.Sink.Advance 1

                if phase.IsSome then
                    s.Sink.Finish()

        if s.Train.Budget = EpochsOverFloor then
            s.Sink.Finish()

        let first, middle, last = tenths gaps
        nets.Trace["wgap_first"] <- first
        nets.Trace["wgap_middle"] <- middle
        nets.Trace["wgap_last"] <- last

        nets.Trace["critic_moved"] <-
            Seq.zip (nets.Critic.parameters ()) criticStart
            |> Seq.sumBy (fun (p, p0) ->
                use d = p.detach () - p0
                float ((d * d).sum().item<float32>()))
            |> sqrt

        nets.Trace["grad_ratio"] <- (if ratios.Count = 0 then nan else Seq.average ratios)

        for p0 in criticStart do
            p0.Dispose()

        finished nets failure iterations
    with _ ->
        (nets :> IDisposable).Dispose()
        reraise ()

/// Plain cross-entropy training of f and h on the labelled set (the baselines' trainer): shuffled passes over L
/// in batches of `Batch`, for the budget's steps (Budget.steps: `Epochs` passes, as many steps as WAAL's
/// reference, or Epochs x ceil(max(|L|, Floor) / Batch)). The critic is not trained.
let plain (s: Setup) (round: int) (pool: Pool) : Result<Networks * int64, LearnError> =
    seedTorch s.Seed round
    let d = s.Data

    let nets =
        Nets.createNamed s.Network s.Device d.Channels d.Height d.Width d.Classes s.Method.CriticOutput
    // A cancelled or failed training (an exception from the progress sink, a native error) must not leave
    // the networks to the finaliser: they are disposed on every path but success.
    try
        let labelled = Pool.labelled pool
        use labels = labelTensor s.Device pool
        use optF = sgd nets.Features s.Train
        use optH = sgd nets.Classifier s.Train
        let augmenting = s.Method.Augment && d.Channels = 3 && d.Height > 1
        let mutable failure = None
        let mutable iterations = 0L
        nets.Train true

        // The budget: Epochs passes over L (the reference), or as many steps as WAAL takes in this round.
        let perPass = Pairing.batches labelled.Length s.Train.Batch

        if labelled.Length = 0 && s.Train.Budget = EpochsOverFloor then
            invalidArg (nameof pool) "training needs at least one labelled item"

        let unlabelledCount = pool.Size - labelled.Length
        let budget = int (Budget.steps s.Train false labelled.Length unlabelledCount)
        let stepsPerEpoch = Budget.perEpoch s.Train false labelled.Length unlabelledCount

        s.Sink.Start $"round {round} training ({budget} steps)" budget
        let mutable pass = 0

        while failure.IsNone && int iterations < budget do
            let order =
                Rng.permutation (Rng.key s.Seed round (Rng.PlainShuffle pass)) labelled.Length
                |> Array.map (fun i -> labelled[i])

            use idx = indexTensor s.Device order
            let mutable b = 0

            while failure.IsNone && b < perPass && int iterations < budget do
                use _scope = torch.NewDisposeScope()
                schedule s.Train stepsPerEpoch (int64 budget) iterations [ optF :> optim.Optimizer; optH ]
                let start = int64 (b * s.Train.Batch)
                let len = min (int64 s.Train.Batch) (int64 order.Length - start)
                let i = idx.narrow (0L, start, len)
                let x = d.Gather(i)
                let x = if augmenting then augment x else x
                let v = crossEntropyStep nets optF optH x (labels.index_select (0L, i))

                if not (finite v) then
                    failure <- Some(Diverged(round, pass, b, "the cross-entropy", float v))

                iterations <- iterations + 1L
                b <- b + 1
                s.Sink.Advance 1

            pass <- pass + 1

        s.Sink.Finish()

        finished nets failure iterations
    with _ ->
        (nets :> IDisposable).Dispose()
        reraise ()
