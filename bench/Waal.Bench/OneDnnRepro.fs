/// The smallest program that trains like WAAL with TorchSharp alone (no code of this project): the Fashion-MNIST
/// network (two 5x5 convolutions, libtorch's own max pooling, dropout), a classifier, a sigmoid critic, step A
/// (cross-entropy plus the critic gap) and step B (the critic's gap and gradient penalty, a double backward), on
/// random images, SGD as the reference. It answers one question on a machine: does oneDNN give a NaN loss here,
/// and are two runs bit-identical? `Waal.Bench onednn-repro RUNS STEPS THREADS` (docs/platform.md). Nothing in
/// it sets oneDNN's instruction set: run it with and without ONEDNN_MAX_CPU_ISA to compare.
module Waal.Bench.OneDnnRepro

open System
open System.Security.Cryptography
open TorchSharp
open type TorchSharp.torch
open type TorchSharp.torch.nn
// torch exposes ScalarType fields named int64, float32, ...: take F#'s conversion functions back.
open Microsoft.FSharp.Core.Operators

/// One training run of `steps` WAAL steps: the first step whose loss is not finite (or None), the SHA-256 of
/// every weight at the end, and the seconds taken.
let private once (steps: int) =
    torch.manual_seed 1L |> ignore
    let conv1 = Conv2d(1L, 10L, 5L)
    let conv2 = Conv2d(10L, 20L, 5L)
    let drop2 = Dropout2d(0.5)
    let fc1 = Linear(320L, 50L)
    let dropH = Dropout(0.5)
    let fc2 = Linear(50L, 10L)
    let g1 = Linear(320L, 50L)
    let dropG = Dropout(0.5)
    let g2 = Linear(50L, 1L)

    let features (x: Tensor) =
        let x = functional.relu (functional.max_pool2d (conv1.forward x, 2L))

        let x =
            functional.relu (functional.max_pool2d (drop2.forward (conv2.forward x), 2L))

        x.flatten 1L

    let classify (z: Tensor) =
        fc2.forward (dropH.forward (functional.relu (fc1.forward z)))

    let critic (z: Tensor) =
        g2.forward(dropG.forward (functional.relu (g1.forward z))).view(-1L).sigmoid()

    let fh: Modules.Parameter seq =
        [ conv1 :> Module; conv2; fc1; fc2 ] |> Seq.collect (fun m -> m.parameters ())

    let gp: Modules.Parameter seq =
        [ g1 :> Module; g2 ] |> Seq.collect (fun m -> m.parameters ())

    let optFh = torch.optim.SGD(fh, 0.01, momentum = 0.5)
    let optG = torch.optim.SGD(gp, 0.01, momentum = 0.5)
    // 4096 random images, normalised as Fashion-MNIST's are, and random labels.
    let images = (torch.rand (4096L, 1L, 28L, 28L) - 0.1307) / 0.3081
    let labels = torch.randint (10L, [| 4096L |])
    let alpha, c, weight = 0.002, 0.1, 2.0
    let clock = Diagnostics.Stopwatch.StartNew()
    let mutable failed = None
    let mutable step = 0

    while failed.IsNone && step < steps do
        use _scope = torch.NewDisposeScope()
        let first = int64 (step * 128 % 4096)
        let x = images.narrow (0L, first, 128L)
        let y = labels.narrow (0L, first, 64L)

        // Step A: features and classifier against the critic (its gradients are not used).
        optFh.zero_grad ()
        let z = features x
        let ce = functional.cross_entropy (classify (z.narrow (0L, 0L, 64L)), y)
        let gz = critic z

        let lossA =
            ce
            + (gz.narrow(0L, 64L, 64L).mean() - gz.narrow(0L, 0L, 64L).mean() * c) * alpha

        lossA.backward ()
        optFh.step () |> ignore

        // Step B: the critic, on features recomputed without gradients, with the gradient penalty.
        optG.zero_grad ()

        let z2 =
            use _ = torch.no_grad ()
            features x

        let zl, zu = z2.narrow (0L, 0L, 64L), z2.narrow (0L, 64L, 64L)
        let gz2 = critic z2
        let gap = gz2.narrow(0L, 64L, 64L).mean() - gz2.narrow(0L, 0L, 64L).mean() * c
        let t = torch.rand (64L, 1L)

        let points =
            torch.cat([| zu + t * (zl - zu); zu; zl |], 0L).detach().requires_grad_ true

        let out = critic points

        let grads =
            torch.autograd.grad ([| out.sum () |], [| points |], retain_graph = true, create_graph = true)

        let d = grads[0].norm(1, false, 2.0f) - 1.0
        let lossB = gap * -alpha + (d * d).mean() * (-1.0 * weight * alpha)
        lossB.backward ()
        optG.step () |> ignore

        let a, b = lossA.item<float32>(), lossB.item<float32>()

        if not (Single.IsFinite a && Single.IsFinite b) then
            failed <- Some step

        step <- step + 1

    use hash = IncrementalHash.CreateHash HashAlgorithmName.SHA256

    for p in Seq.append fh gp do
        hash.AppendData(p.data<float32>().ToArray() |> Array.collect BitConverter.GetBytes)

    failed, Convert.ToHexString(hash.GetHashAndReset()).Substring(0, 16), clock.Elapsed.TotalSeconds

/// The data caches the processor reports through CPUID, read the way oneDNN's CPU detection (Xbyak) reads them:
/// on AMD, leaf 0x8000001D when the highest extended leaf reaches it, else the legacy leaves 0x80000005/6; on
/// Intel, leaf 4. A level of size 0, or no level at all, is what a virtual machine that hides its cache topology
/// can report, and what oneDNN then blocks its kernels with (docs/platform.md). Lines of (level, bytes, sharing).
let caches () =
    let cpuid (leaf: int) (sub: int) =
        let struct (a, b, c, d) = Runtime.Intrinsics.X86.X86Base.CpuId(leaf, sub)
        uint32 a, uint32 b, uint32 c, uint32 d

    let bits (v: uint32) (lo: int) (hi: int) =
        (v >>> lo) &&& ((1u <<< (hi - lo + 1)) - 1u)

    if not Runtime.Intrinsics.X86.X86Base.IsSupported then
        "not an x86 processor", []
    else
        let _, vb, vc, vd = cpuid 0 0

        let vendor =
            [ vb; vd; vc ]
            |> List.collect (fun r -> [ for i in 0..3 -> char (bits r (8 * i) (8 * i + 7)) ])
            |> Array.ofList
            |> String

        let descriptor (a: uint32) (b: uint32) (c: uint32) =
            let fully = bits a 9 9 = 1u
            let ways, parts, line = bits b 22 31 + 1u, bits b 12 21 + 1u, bits b 0 11 + 1u

            let size =
                int64 ways * int64 parts * int64 line * (if fully then 1L else int64 c + 1L)

            size, int (bits a 14 25 + 1u)

        let levels =
            if vendor = "AuthenticAMD" then
                let maxExt, _, _, _ = cpuid (int 0x80000000u) 0

                if maxExt >= 0x8000001Du then
                    [
                        for sub in 0..7 do
                            let a, b, c, _ = cpuid (int 0x8000001Du) sub
                            let kind = bits a 0 4

                            if kind = 1u || kind = 3u then
                                let size, sharing = descriptor a b c
                                $"leaf 0x8000001D.{sub}", int (bits a 5 7), size, sharing
                    ]
                elif maxExt >= 0x80000006u then
                    let _, _, c5, _ = cpuid (int 0x80000005u) 0
                    let _, _, c6, d6 = cpuid (int 0x80000006u) 0

                    [
                        "leaf 0x80000005", 1, int64 (bits c5 24 31) * 1024L, 1
                        if bits c6 12 15 > 0u then
                            "leaf 0x80000006", 2, int64 (bits c6 16 31) * 1024L, 1
                        if bits d6 12 15 > 0u then
                            "leaf 0x80000006", 3, int64 (bits d6 18 31) * 512L * 1024L, 0
                    ]
                else
                    []
            else
                [
                    for sub in 0..7 do
                        let a, b, c, _ = cpuid 4 sub
                        let kind = bits a 0 4

                        if kind = 1u || kind = 3u then
                            let size, sharing = descriptor a b c
                            $"leaf 4.{sub}", int (bits a 5 7), size, sharing
                ]

        vendor, levels

/// Runs `runs` trainings of `steps` steps with `threads` libtorch threads; prints one line per run and a summary.
let run (runs: int) (steps: int) (threads: int) =
    torch.set_num_threads threads
    let isa = Environment.GetEnvironmentVariable "ONEDNN_MAX_CPU_ISA" |> Option.ofObj

    printfn
        "onednn-repro: %d runs of %d steps, %d threads, ONEDNN_MAX_CPU_ISA=%s"
        runs
        steps
        threads
        (isa |> Option.defaultValue "(unset: oneDNN's own choice)")

    let vendor, levels = caches ()

    let shown =
        if IO.Directory.Exists "/sys/devices/system/cpu/cpu0/cache" then
            "shown"
        else
            "hidden"

    printfn
        "processor: %s; the cache topology in /sys is %s; data caches by CPUID: %d level(s)"
        vendor
        shown
        levels.Length

    for source, level, bytes, sharing in levels do
        printfn "  L%d: %d bytes, shared by %d logical processor(s) (%s)" level bytes sharing source

    let results =
        [
            for r in 1..runs do
                let failed, hash, seconds = once steps

                match failed with
                | Some step -> printfn "run %d: NaN or infinite loss at step %d (%.1f s)" r step seconds
                | None -> printfn "run %d: %d steps, no NaN, weights %s (%.1f s)" r steps hash seconds

                failed, hash
        ]

    let nan = results |> List.filter (fst >> Option.isSome) |> List.length

    let distinct =
        results
        |> List.filter (fst >> Option.isNone)
        |> List.map snd
        |> List.distinct
        |> List.length

    printfn "summary: %d of %d runs gave a NaN; the finished runs' weights take %d distinct value(s)" nan runs distinct
