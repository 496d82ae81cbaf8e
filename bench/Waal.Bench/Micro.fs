/// Op-level timings behind the side-by-side rows (`Waal.Bench micro`): where a WAAL iteration and a scoring
/// batch spend their time in libtorch, for choosing layouts and batch sizes by measurement.
module Waal.Bench.Micro

open System.Diagnostics
open TorchSharp
open type TorchSharp.torch
open type TorchSharp.torch.nn
open Microsoft.FSharp.Core.Operators

let private time (f: unit -> unit) =
    for _ in 1..3 do
        use _d = torch.NewDisposeScope()
        f ()

    let n = 40
    let clock = Stopwatch.StartNew()

    for _ in 1..n do
        use _d = torch.NewDisposeScope()
        f ()

    clock.Elapsed.TotalMilliseconds / float n

let private channelsLast (x: Tensor) =
    x.permute(0L, 2L, 3L, 1L).contiguous().permute(0L, 3L, 1L, 2L)

let private poolPerm (c: Tensor) =
    let n, ch, h, w = c.shape[0], c.shape[1], c.shape[2], c.shape[3]

    let (struct (v, _)) =
        c
            .view(n, ch, h / 2L, 2L, w / 2L, 2L)
            .permute(0L, 1L, 2L, 4L, 3L, 5L)
            .reshape(n, ch, h / 2L, w / 2L, 4L)
            .max(-1L)

    v

let private poolTwo (c: Tensor) =
    let n, ch, h, w = c.shape[0], c.shape[1], c.shape[2], c.shape[3]
    let (struct (a, _)) = c.view(n, ch, h / 2L, 2L, w / 2L, 2L).max(5L)
    let (struct (b, _)) = a.max (3L)
    b

let private poolRef (c: Tensor) = functional.max_pool2d (c, 2L)

/// A fresh Fashion-MNIST net (seed 1), 2,000 random images with labels, and SGD as the trainers set it up.
let private trainingFixture () =
    torch.random.manual_seed 1L |> ignore
    let nets = Waal.Learning.Nets.create torch.CPU 1 28 28 10 Waal.Core.SigmoidOutput
    let images = torch.randn (2000L, 1L, 28L, 28L)
    let labels = torch.randint (0L, 10L, [| 2000L |])

    let sgd (m: Module) =
        torch.optim.SGD(m.parameters (), 0.01, 0.5)

    nets, images, labels, sgd

/// Wall-clock totals per phase over the iterations after a warm-up: `Lap(it, k)` ends phase k of iteration it.
type private Laps(names: string[], warmup: int) =
    let totals = Array.zeroCreate names.Length
    let clock = Stopwatch()

    member _.Start() = clock.Restart()

    member _.Lap(iteration: int, k: int) =
        if iteration >= warmup then
            totals[k] <- totals[k] + clock.Elapsed.TotalMilliseconds

        clock.Restart()

    /// Prints each phase's mean over `timed` iterations, and the total.
    member _.Print(timed: int) =
        for k in 0 .. names.Length - 1 do
            printfn "%-12s %.3f ms" names[k] (totals[k] / float timed)

        printfn "%-12s %.3f ms" "total" (Array.sum totals / float timed)

/// Where one WAAL iteration (64 + 64 images) spends its time, phase by phase, over 200 iterations.
let phases () =
    let nets, images, labels, sgd = trainingFixture ()

    let optF, optH, optG = sgd nets.Features, sgd nets.Classifier, sgd nets.Critic

    let names =
        [|
            "gather"
            "f fwd"
            "h,g fwd"
            "A backward"
            "A steps"
            "f no-grad"
            "g + GP"
            "B backward"
            "B step"
            "item"
        |]

    let laps = Laps(names, 20)
    nets.Train true

    for it in 0..219 do
        use _d = torch.NewDisposeScope()

        let lap k = laps.Lap(it, k)
        laps.Start()
        let idx = torch.randint (0L, 2000L, [| 128L |])
        let x = images.index_select (0L, idx)
        let yl = labels.index_select (0L, idx.narrow (0L, 0L, 64L))
        lap 0

        for p in nets.Critic.parameters () do
            p.requires_grad <- false

        optF.zero_grad ()
        optH.zero_grad ()
        let z = nets.Features.forward x
        lap 1

        let ce =
            functional.cross_entropy (nets.Classifier.forward (z.narrow (0L, 0L, 64L)), yl)

        let gz = nets.Critic.forward z

        let lossA =
            ce
            + Waal.Learning.Adversarial.gap (gz.narrow (0L, 64L, 64L)) (gz.narrow (0L, 0L, 64L)) 0.02
              * 0.002

        lap 2
        lossA.backward ()
        lap 3
        optF.step () |> ignore
        optH.step () |> ignore

        for p in nets.Critic.parameters () do
            p.requires_grad <- true

        lap 4

        let z2 =
            use _ = torch.no_grad ()
            nets.Features.forward x

        lap 5
        optG.zero_grad ()
        let gz2 = nets.Critic.forward z2

        let gap =
            Waal.Learning.Adversarial.gap (gz2.narrow (0L, 64L, 64L)) (gz2.narrow (0L, 0L, 64L)) 0.02

        let gp =
            Waal.Learning.Adversarial.gradientPenalty
                nets.Critic.forward
                (z2.narrow (0L, 64L, 64L))
                (z2.narrow (0L, 0L, 64L))

        let lossB =
            Waal.Learning.Adversarial.criticLoss 0.002 gap gp Waal.Core.ReferenceSign 2.0

        lap 6
        lossB.backward ()
        lap 7
        optG.step () |> ignore
        lap 8
        lossA.item<float32>() |> ignore
        lossB.item<float32>() |> ignore
        lap 9

    (use _ = torch.no_grad ()
     let x = images.narrow (0L, 0L, 128L)
     let c1 = nn.Conv2d(1L, 10L, 5L)
     let c2 = nn.Conv2d(10L, 20L, 5L)
     let d2 = nn.Dropout2d(0.5)
     let a = c1.forward x
     printfn "conv1 %.3f" (time (fun () -> c1.forward x |> ignore))
     let p = Waal.Learning.Pooling.maxPool2 a
     printfn "pool1 %.3f" (time (fun () -> Waal.Learning.Pooling.maxPool2 a |> ignore))
     let r = functional.relu p
     printfn "relu1 %.3f" (time (fun () -> functional.relu p |> ignore))
     let b = c2.forward r
     printfn "conv2 %.3f" (time (fun () -> c2.forward r |> ignore))
     let dd = d2.forward b
     printfn "dropout2d %.3f" (time (fun () -> d2.forward b |> ignore))
     printfn "pool2 %.3f" (time (fun () -> Waal.Learning.Pooling.maxPool2 dd |> ignore))
     printfn "whole f %.3f" (time (fun () -> nets.Features.forward x |> ignore)))

    let x = images.narrow (0L, 0L, 128L)
    let c1 = nn.Conv2d(1L, 10L, 5L)
    let c2 = nn.Conv2d(10L, 20L, 5L)
    let g1 = torch.randn (128L, 10L, 24L, 24L)
    let g2 = torch.randn (128L, 20L, 8L, 8L)
    printfn "conv1 fwd+bwd (weights) %.3f" (time (fun () -> (c1.forward x).backward([| g1 |])))
    let r = torch.randn(128L, 10L, 12L, 12L).requires_grad_ true
    printfn "conv2 fwd+bwd (weights, input) %.3f" (time (fun () -> (c2.forward r).backward([| g2 |])))
    let a = torch.randn(128L, 10L, 24L, 24L).requires_grad_ true
    let gp = torch.randn (128L, 10L, 12L, 12L)
    printfn "pool1 fwd+bwd %.3f" (time (fun () -> (Waal.Learning.Pooling.maxPool2 a).backward([| gp |])))
    printfn "relu fwd+bwd %.3f" (time (fun () -> (functional.relu a).backward([| g1 |])))

    laps.Print 200

/// Where one plain cross-entropy step (64 images) spends its time.
let plainPhases (variant: string) =
    let nets, images, labels, sgd = trainingFixture ()

    let optF, optH = sgd nets.Features, sgd nets.Classifier

    let names =
        [| "gather"; "zero_grad"; "f fwd"; "h + CE"; "backward"; "steps"; "item" |]

    let laps = Laps(names, 20)
    nets.Train true

    for it in 0..519 do
        use _d = torch.NewDisposeScope()

        let lap k = laps.Lap(it, k)
        laps.Start()
        let idx = torch.randint (0L, 2000L, [| 64L |])
        let x = images.index_select (0L, idx)
        let y = labels.index_select (0L, idx)
        lap 0
        optF.zero_grad ()
        optH.zero_grad ()
        lap 1
        let z = nets.Features.forward x
        lap 2
        let ce = functional.cross_entropy (nets.Classifier.forward z, y)
        lap 3

        if variant <> "nobackward" then
            ce.backward ()

        lap 4

        if variant = "" then
            optF.step () |> ignore
            optH.step () |> ignore

        lap 5
        ce.item<float32>() |> ignore
        lap 6

    let x = images.narrow (0L, 0L, 64L)
    printfn "standalone f fwd (same net, grad) %.3f" (time (fun () -> nets.Features.forward x |> ignore))

    (use _ = torch.no_grad ()
     printfn "standalone f fwd (no grad) %.3f" (time (fun () -> nets.Features.forward x |> ignore)))

    laps.Print 500

/// The forward and backward of the Fashion-MNIST net's layers at batch 64, with gradients, op by op.
let layers () =
    torch.random.manual_seed 1L |> ignore
    let x = torch.randn (64L, 1L, 28L, 28L)
    let c1 = nn.Conv2d(1L, 10L, 5L)
    let c2 = nn.Conv2d(10L, 20L, 5L)
    let d2 = nn.Dropout2d(0.5)
    let a = c1.forward x
    let pa = Waal.Learning.Pooling.maxPool2 a
    let r = functional.relu pa
    let b = c2.forward r
    let db = d2.forward b
    let pb = Waal.Learning.Pooling.maxPool2 db
    printfn "conv1 fwd %.3f" (time (fun () -> c1.forward x |> ignore))
    printfn "pool1 fwd (custom fn) %.3f" (time (fun () -> Waal.Learning.Pooling.maxPool2 a |> ignore))
    printfn "pool1 fwd (max_pool2d) %.3f" (time (fun () -> functional.max_pool2d (a, 2L) |> ignore))
    printfn "relu1 fwd %.3f" (time (fun () -> functional.relu pa |> ignore))
    printfn "conv2 fwd %.3f" (time (fun () -> c2.forward r |> ignore))
    printfn "dropout2d fwd %.3f" (time (fun () -> d2.forward b |> ignore))
    printfn "pool2 fwd %.3f" (time (fun () -> Waal.Learning.Pooling.maxPool2 db |> ignore))

    printfn
        "whole forward %.3f"
        (time (fun () ->
            functional
                .relu(
                    Waal.Learning.Pooling.maxPool2 (
                        d2.forward (c2.forward (functional.relu (Waal.Learning.Pooling.maxPool2 (c1.forward x))))
                    )
                )
                .flatten(1L)
            |> ignore))

    let ga = torch.randn (64L, 10L, 24L, 24L)
    let gb = torch.randn (64L, 20L, 8L, 8L)
    let gpa = torch.randn (64L, 10L, 12L, 12L)
    let gpb = torch.randn (64L, 20L, 4L, 4L)
    printfn "conv1 fwd+bwd %.3f" (time (fun () -> (c1.forward x).backward([| ga |])))
    let rl = r.detach().requires_grad_ true
    printfn "conv2 fwd+bwd %.3f" (time (fun () -> (c2.forward rl).backward([| gb |])))
    let al = a.detach().requires_grad_ true
    printfn "pool1 fwd+bwd (custom) %.3f" (time (fun () -> (Waal.Learning.Pooling.maxPool2 al).backward([| gpa |])))
    printfn "pool1 fwd+bwd (max_pool2d) %.3f" (time (fun () -> (functional.max_pool2d (al, 2L)).backward([| gpa |])))
    let bl = db.detach().requires_grad_ true
    printfn "pool2 fwd+bwd (custom) %.3f" (time (fun () -> (Waal.Learning.Pooling.maxPool2 bl).backward([| gpb |])))
    printfn "pool2 fwd+bwd (max_pool2d) %.3f" (time (fun () -> (functional.max_pool2d (bl, 2L)).backward([| gpb |])))

/// One prediction batch (250 images, inference mode) of a fresh net, op by op.
let predictOps () =
    torch.random.manual_seed 1L |> ignore
    let nets = Waal.Learning.Nets.create torch.CPU 1 28 28 10 Waal.Core.SigmoidOutput
    nets.Train false
    let images = torch.randn (250L, 1L, 28L, 28L)
    use _ = torch.inference_mode true
    let c1 = nn.Conv2d(1L, 10L, 5L)
    let c2 = nn.Conv2d(10L, 20L, 5L)
    let a = c1.forward images
    let pa = Waal.Learning.Pooling.maxPool2 a
    let r = functional.relu pa
    let b = c2.forward r
    let pb = Waal.Learning.Pooling.maxPool2 b
    let z = (functional.relu pb).flatten(1L)
    let logits = nets.Classifier.forward z
    printfn "conv1 %.3f" (time (fun () -> c1.forward images |> ignore))
    printfn "pool1 %.3f" (time (fun () -> Waal.Learning.Pooling.maxPool2 a |> ignore))
    printfn "relu1 %.3f" (time (fun () -> functional.relu pa |> ignore))
    printfn "conv2 %.3f" (time (fun () -> c2.forward r |> ignore))
    printfn "pool2 %.3f" (time (fun () -> Waal.Learning.Pooling.maxPool2 b |> ignore))
    printfn "relu2+flatten %.3f" (time (fun () -> (functional.relu pb).flatten(1L) |> ignore))
    printfn "classifier %.3f" (time (fun () -> nets.Classifier.forward z |> ignore))
    printfn "argmax %.3f" (time (fun () -> logits.argmax (1L) |> ignore))
    printfn "features %.3f" (time (fun () -> nets.Features.forward images |> ignore))
    let d2 = nn.Dropout2d(0.5)
    d2.eval ()
    printfn "dropout2d eval %.3f" (time (fun () -> d2.forward b |> ignore))

    printfn
        "chain %.3f"
        (time (fun () ->
            (functional.relu (
                Waal.Learning.Pooling.maxPool2 (
                    c2.forward (functional.relu (Waal.Learning.Pooling.maxPool2 (c1.forward images)))
                )
            ))
                .flatten(1L)
            |> ignore))

    printfn
        "chain with dropout %.3f"
        (time (fun () ->
            (functional.relu (
                Waal.Learning.Pooling.maxPool2 (
                    d2.forward (c2.forward (functional.relu (Waal.Learning.Pooling.maxPool2 (c1.forward images))))
                )
            ))
                .flatten(1L)
            |> ignore))

    printfn
        "whole %.3f"
        (time (fun () -> (nets.Classifier.forward (nets.Features.forward images)).argmax(1L) |> ignore))

let poolSizes () =
    for shape in
        [
            [| 64L; 20L; 8L; 8L |]
            [| 128L; 20L; 8L; 8L |]
            [| 32L; 10L; 24L; 24L |]
            [| 64L; 10L; 24L; 24L |]
            [| 128L; 10L; 24L; 24L |]
        ] do
        let a = torch.randn(shape).requires_grad_ true
        let g = torch.randn ([| shape[0]; shape[1]; shape[2] / 2L; shape[3] / 2L |])
        let ours = time (fun () -> (Waal.Learning.Pooling.maxPool2 a).backward([| g |]))
        let theirs = time (fun () -> (functional.max_pool2d (a, 2L)).backward([| g |]))
        printfn "%A (%d elements): custom %.3f max_pool2d %.3f" shape (shape |> Array.reduce (*)) ours theirs

let poolBackward () =
    let x = torch.randn (128L, 10L, 24L, 24L)
    let y = functional.max_pool2d (x, 2L)
    let g = torch.randn (128L, 10L, 12L, 12L)

    let corners (t: Tensor) =
        let top = t.slice (2L, 0L, 24L, 2L)
        let bottom = t.slice (2L, 1L, 24L, 2L)

        top.slice (3L, 0L, 24L, 2L),
        top.slice (3L, 1L, 24L, 2L),
        bottom.slice (3L, 0L, 24L, 2L),
        bottom.slice (3L, 1L, 24L, 2L)

    let a, _, _, _ = corners x
    let on = a.eq y
    printfn "body direct %.3f" (time (fun () -> Waal.Learning.Pooling.routeGradient x y g |> ignore))
    printfn "  eq strided %.3f" (time (fun () -> a.eq y |> ignore))
    printfn "  mul bool %.3f" (time (fun () -> (g * on) |> ignore))
    printfn "  add0 %.3f" (time (fun () -> g.add (Scalar.op_Implicit 0.0f) |> ignore))
    printfn "  sub %.3f" (time (fun () -> (g - g) |> ignore))
    printfn "  zeros_like %.3f" (time (fun () -> torch.zeros_like x |> ignore))
    let gx = torch.zeros_like x
    printfn "  copy strided %.3f" (time (fun () -> (let t, _, _, _ = corners gx in t.copy_ g |> ignore)))

    let leafTime =
        time (fun () ->
            let l = x.detach().requires_grad_ true
            (Waal.Learning.Pooling.maxPool2Custom l).backward([| g |]))

    let fwdTime =
        time (fun () ->
            let l = x.detach().requires_grad_ true
            Waal.Learning.Pooling.maxPool2Custom l |> ignore)

    printfn "custom fwd %.3f fwd+bwd %.3f" fwdTime leafTime

/// conv2 (10 -> 20 channels, 5 x 5, on 12 x 12) as libtorch's convolution and as unfold + matmul, forward and
/// forward + backward.
let convForms () =
    torch.random.manual_seed 1L |> ignore
    let c2 = nn.Conv2d(10L, 20L, 5L)
    let w = c2.weight
    let bias = c2.bias

    let unfolded (x: Tensor) =
        let n = x.shape[0]
        let cols = functional.unfold (x, 5L)
        (w.view(20L, 250L).matmul(cols) + bias.view (1L, 20L, 1L)).view(n, 20L, 8L, 8L)

    for n in [ 64L; 128L; 250L ] do
        let x = torch.randn (n, 10L, 12L, 12L)
        let g = torch.randn (n, 20L, 8L, 8L)

        let same =
            use _ = torch.no_grad ()
            (c2.forward x - unfolded x).abs().max().item<float32>()

        let fwdConv =
            use _ = torch.no_grad ()
            time (fun () -> c2.forward x |> ignore)

        let fwdUnfold =
            use _ = torch.no_grad ()
            time (fun () -> unfolded x |> ignore)

        let xl = x.detach().requires_grad_ true
        let fbConv = time (fun () -> (c2.forward xl).backward([| g |]))
        let fbUnfold = time (fun () -> (unfolded xl).backward([| g |]))

        printfn
            "%d: conv fwd %.3f fwd+bwd %.3f | unfold+matmul fwd %.3f fwd+bwd %.3f | max diff %g"
            n
            fwdConv
            fbConv
            fwdUnfold
            fbUnfold
            same

        let xc = channelsLast(x).detach().requires_grad_ true
        let gc = channelsLast g
        let fbCl = time (fun () -> (c2.forward xc).backward([| gc |]))

        let fwdCl =
            use _ = torch.no_grad ()
            time (fun () -> c2.forward xc |> ignore)

        printfn "%d: channels-last conv fwd %.3f fwd+bwd %.3f" n fwdCl fbCl

/// Prediction over 10,000 images: one thread of batches with 2 OpenMP threads per op, against two threads of
/// batches with one OpenMP thread each.
let batchThreads () =
    torch.random.manual_seed 1L |> ignore
    let nets = Waal.Learning.Nets.create torch.CPU 1 28 28 10 Waal.Core.SigmoidOutput
    nets.Train false
    let images = torch.randn (10000L, 1L, 28L, 28L)
    let batch = 250L
    let count = 40

    let one (out: Tensor) (b: int) =
        use _d = torch.NewDisposeScope()
        let x = images.narrow (0L, int64 b * batch, batch)

        out.narrow(0L, int64 b * batch, batch).copy_((nets.Classifier.forward (nets.Features.forward x)).argmax(1L))
        |> ignore

    let sequential () =
        let out = torch.empty ([| 10000L |], dtype = ScalarType.Int64)
        use _ = torch.inference_mode true

        for b in 0 .. count - 1 do
            one out b

        out

    let concurrent () =
        let out = torch.empty ([| 10000L |], dtype = ScalarType.Int64)

        let worker (w: int) =
            System.Threading.Thread(fun () ->
                torch.set_num_threads 1
                use _ = torch.inference_mode true

                for b in w..2 .. count - 1 do
                    one out b)

        let threads = [| worker 0; worker 1 |]

        for t in threads do
            t.Start()

        for t in threads do
            t.Join()

        out

    let a = sequential ()
    let b = concurrent ()
    printfn "identical %b" (a.eq(b).all().item<bool>())

    for _ in 1..3 do
        let c1 = Stopwatch.StartNew()
        sequential () |> ignore
        let s1 = c1.Elapsed.TotalMilliseconds
        let c2 = Stopwatch.StartNew()
        concurrent () |> ignore

        printfn
            "sequential (2 OMP threads) %.1f ms, 2 batch threads x 1 OMP thread %.1f ms"
            s1
            c2.Elapsed.TotalMilliseconds

let pools () =
    (use _ = torch.no_grad ()
     let x = torch.randint(0L, 3L, [| 128L; 10L; 24L; 24L |]).to_type(ScalarType.Float32)
     let y = functional.max_pool2d (x, 2L)
     let g = torch.randn (128L, 10L, 12L, 12L)
     let a = x.slice(2L, 0L, 24L, 2L).slice(3L, 0L, 24L, 2L)
     let zero = torch.zeros (1)
     printfn "eq strided %.3f" (time (fun () -> a.eq y |> ignore))
     let on = a.eq y
     printfn "where %.3f" (time (fun () -> torch.where (on, g, zero) |> ignore))
     printfn "where full %.3f" (time (fun () -> torch.where (on, g, torch.zeros_like g) |> ignore))
     printfn "mul bool %.3f" (time (fun () -> g.mul on |> ignore))
     printfn "stack4 %.3f" (time (fun () -> torch.stack ([| g; g |], 4L) |> ignore))
     printfn "stack3 %.3f" (time (fun () -> torch.stack ([| g; g |], 3L) |> ignore))
     printfn "zeros_like x %.3f" (time (fun () -> torch.zeros_like x |> ignore))
     let gx = torch.zeros_like x
     printfn "strided copy %.3f" (time (fun () -> gx.slice(2L, 0L, 24L, 2L).slice(3L, 0L, 24L, 2L).copy_ g |> ignore))
     printfn "add %.3f" (time (fun () -> g.add g |> ignore))
     let ac = a.contiguous ()
     printfn "contiguous %.3f" (time (fun () -> a.contiguous () |> ignore))
     printfn "eq contiguous %.3f" (time (fun () -> ac.eq y |> ignore))
     printfn "ge contiguous %.3f" (time (fun () -> ac.ge y |> ignore))
     printfn "eq strided %.3f" (time (fun () -> a.eq y |> ignore))
     printfn "masked_fill %.3f" (time (fun () -> g.masked_fill (on, 0.0f) |> ignore))
     printfn "not %.3f" (time (fun () -> on.logical_not () |> ignore))
     printfn "heaviside %.3f" (time (fun () -> torch.heaviside (ac - y, torch.ones (1)) |> ignore))
     printfn "sub %.3f" (time (fun () -> ac - y |> ignore))
     printfn "mul float %.3f" (time (fun () -> g * g |> ignore)))

    for n in [ 128L; 500L ] do
        let c = torch.randint(0L, 3L, [| n; 10L; 24L; 24L |]).to_type(ScalarType.Float32)
        let g = torch.randn (n, 10L, 12L, 12L)

        for name, p in
            [
                "max_pool2d", poolRef
                "perm-max", poolPerm
                "two-max", poolTwo
                "waal", Waal.Learning.Pooling.maxPool2
            ] do
            let fwd =
                use _ = torch.no_grad ()
                time (fun () -> p c |> ignore)

            let fb =
                time (fun () ->
                    let x = c.detach().requires_grad_ true
                    (p x).backward([| g |]))

            let x = c.detach().requires_grad_ true
            (poolRef x).backward([| g |])
            let y = c.detach().requires_grad_ true
            (p y).backward([| g |])

            let same =
                (poolRef c).eq(p c).all().item<bool>() && x.grad.eq(y.grad).all().item<bool>()

            printfn "%d %-10s fwd %.3f ms fwd+bwd %.3f ms exact %b" n name fwd fb same

let run () =
    let w1 = torch.randn (10L, 1L, 5L, 5L)
    let b1 = torch.randn (10L)
    let w2 = torch.randn (20L, 10L, 5L, 5L)
    let b2 = torch.randn (20L)

    for n in [ 128L; 500L ] do
        let x = torch.randn (n, 1L, 28L, 28L)

        (use _ = torch.no_grad ()
         let y = functional.relu (functional.max_pool2d (functional.conv2d (x, w1, b1), 2L))
         printfn "%d conv1 %.3f ms" n (time (fun () -> functional.conv2d (x, w1, b1) |> ignore))
         printfn "%d conv2 %.3f ms" n (time (fun () -> functional.conv2d (y, w2, b2) |> ignore))
         let c1 = functional.conv2d (x, w1, b1)
         printfn "%d pool1 %.3f ms" n (time (fun () -> functional.max_pool2d (c1, 2L) |> ignore))
         let xc = channelsLast x
         let yc = channelsLast y
         printfn "%d CL conv1 %.3f ms" n (time (fun () -> functional.conv2d (xc, w1, b1) |> ignore))
         printfn "%d CL conv2 %.3f ms" n (time (fun () -> functional.conv2d (yc, w2, b2) |> ignore))
         let c1c = functional.conv2d (xc, w1, b1)
         printfn "%d CL pool1 %.3f ms" n (time (fun () -> functional.max_pool2d (c1c, 2L) |> ignore))
         let h = c1.shape[2]

         printfn
             "%d amax pool1 %.3f ms"
             n
             (time (fun () -> c1.view(n, 10L, h / 2L, 2L, h / 2L, 2L).amax([| 3L; 5L |]) |> ignore))

         let quad () =
             let a = c1.slice (2L, 0L, h, 2L)
             let b = c1.slice (2L, 1L, h, 2L)

             torch.maximum (
                 torch.maximum (a.slice (3L, 0L, h, 2L), a.slice (3L, 1L, h, 2L)),
                 torch.maximum (b.slice (3L, 0L, h, 2L), b.slice (3L, 1L, h, 2L))
             )

         printfn "%d maximum pool1 %.3f ms" n (time (fun () -> quad () |> ignore))
         printfn "%d relu c1 %.3f ms" n (time (fun () -> functional.relu c1 |> ignore))

         printfn
             "%d withidx pool1 %.3f ms"
             n
             (time (fun () -> torch.nn.functional.max_pool2d_with_indices (c1, [| 2L; 2L |]) |> ignore)))

        let fb (input: Tensor) () =
            let w1g = w1.clone().requires_grad_ true
            let w2g = w2.clone().requires_grad_ true

            let o =
                functional
                    .relu(
                        functional.max_pool2d (
                            functional.conv2d (
                                functional.relu (functional.max_pool2d (functional.conv2d (input, w1g, b1), 2L)),
                                w2g,
                                b2
                            ),
                            2L
                        )
                    )
                    .sum()

            o.backward ()

        printfn "%d fwd+bwd %.3f ms" n (time (fb x))

        let pool (c: Tensor) =
            let h = c.shape[2]
            let a = c.slice (2L, 0L, h, 2L)
            let b = c.slice (2L, 1L, h, 2L)

            torch.maximum (
                torch.maximum (a.slice (3L, 0L, h, 2L), a.slice (3L, 1L, h, 2L)),
                torch.maximum (b.slice (3L, 0L, h, 2L), b.slice (3L, 1L, h, 2L))
            )

        let fbq (input: Tensor) () =
            let w1g = w1.clone().requires_grad_ true
            let w2g = w2.clone().requires_grad_ true
            let h1 = functional.relu (pool (functional.conv2d (input, w1g, b1)))
            let o = functional.relu(pool (functional.conv2d (h1, w2g, b2))).sum()
            o.backward ()

        printfn "%d quad fwd+bwd %.3f ms" n (time (fbq x))
        printfn "%d CL fwd+bwd %.3f ms" n (time (fb (channelsLast x)))

    let b = torch.randn (10L)
    let clock = Stopwatch.StartNew()

    for _ in 1..20000 do
        use _d = torch.NewDisposeScope()
        b.add b |> ignore

    printfn "tiny op %.2f us" (clock.Elapsed.TotalMilliseconds * 1000.0 / 20000.0)
