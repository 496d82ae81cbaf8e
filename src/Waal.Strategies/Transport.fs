/// The batch queries that see the whole batch: `transport` picks the batch S that most lowers the
/// uncertainty-weighted W1 between the pool and L u S (greedy, facility location), and `mmd` the one that most
/// lowers the MMD on the same weights (kernel herding: the same idea with a closed-form critic). Both in the
/// classifier's embedding that every strategy sees; the math is Waal.Core.Transport, the fast path
/// Waal.Learning.TransportKernels.
module Waal.Strategies.Transport

open Waal.Core
open Waal.Learning

/// What a batch query works on: the problem (rows of one embedding block, ids = pool indices) built from the
/// unlabelled pool's margin uncertainties.
let internal problem (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let b = ctx.Spec.BatchQuery
    let unlabelled = Pool.unlabelled pool
    let labelled = Pool.labelled pool
    let c = ctx.PoolTensors.Classes

    let p =
        Scoring.probabilities nets ctx.PoolTensors unlabelled ctx.Settings.ScoreBatch ctx.Sink

    let u =
        Array.init unlabelled.Length (fun i -> Transport.marginUncertainty (Array.init c (fun j -> float p[i * c + j])))

    // Candidates: the most uncertain C x k (ties to the lower index), or all of U.
    let candidates =
        let m =
            if b.Candidates = 0 then
                unlabelled.Length
            else
                min unlabelled.Length (b.Candidates * k)

        TopK.largest m unlabelled u

    // The pool measure: all of U, or a keyed uniform sample of it.
    let uOf = Array.zeroCreate<float> pool.Size

    for i in 0 .. unlabelled.Length - 1 do
        uOf[unlabelled[i]] <- u[i]

    let targets =
        if unlabelled.Length <= b.Targets then
            unlabelled
        else
            Rng.sample (Rng.key ctx.Spec.Seed round Rng.TransportTargets) b.Targets unlabelled
            |> Array.sort

    candidates
    |> Result.map (fun candidates ->
        // One embedding block for every row the problem names, in pool order.
        let ids =
            Array.concat [ targets; candidates; labelled ] |> Array.distinct |> Array.sort

        let rowOf = System.Collections.Generic.Dictionary<int, int>(ids.Length)

        for r in 0 .. ids.Length - 1 do
            rowOf[ids[r]] <- r

        let e = Scoring.embeddings nets ctx.PoolTensors ids ctx.Settings.ScoreBatch ctx.Sink

        ({
            Points = e
            Ids = ids
            Targets = targets |> Array.map (fun i -> rowOf[i])
            Weights = Transport.weights b.Beta (targets |> Array.map (fun i -> uOf[i]))
            Support = labelled |> Array.map (fun i -> rowOf[i])
            Candidates = candidates |> Array.map (fun i -> rowOf[i])
        }
        : Transport.Problem))
    |> Result.mapError (fun e -> BadScores(round, e))

let private train (ctx: Context) (pool: Pool) (round: int) (k: int) =
    match ctx.Spec.BatchQuery.Trainer with
    | PlainTrainer -> Strategy.trainPlain ctx pool round k
    | WaalTrainer -> Training.waal ctx.Setup round k pool

let private query select (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    problem ctx nets pool round k
    |> Result.map (fun p ->
        let s: Transport.Selection = select p k
        s.Picks |> Array.map (fun r -> p.Ids[r]))

/// Transport: greedy batch that most lowers the weighted W1 from the pool to L u S.
let strategy =
    {
        Name = "transport"
        Description =
            "the batch that most lowers the uncertainty-weighted W1 between the pool and the labelled set (greedy)"
        Deterministic = true
        Train = train
        Query = query TransportKernels.greedy
        Signals = Strategy.noSignals
    }

/// Kernel herding: greedy batch that most lowers the weighted MMD from the pool to L u S (median bandwidth).
let mmd =
    {
        Name = "mmd"
        Description = "kernel herding: the batch that most lowers the uncertainty-weighted MMD to the labelled set"
        // No random draws, but herding's scores ((n + 1) a(c) - b(c), two sums of a hundred kernel values each)
        // tie to within the float32 rounding of the embeddings, and that rounding depends on the score batch an
        // image falls in: a pool stored in another order can flip such a tie (found by the shared property suite).
        Deterministic = false
        Train = train
        Query = query (fun p k -> TransportKernels.herding (Transport.Herding.bandwidth p) p k)
        Signals = Strategy.noSignals
    }
