namespace Waal.Strategies

open System.Collections.Generic
open TorchSharp
open Waal.Core
open Waal.Learning
open Waal.Learning.Nets
open Waal.Learning.Tensors

/// What a strategy works with: the spec, the run settings, the device, the pool's images as tensors, and a
/// progress sink.
type Context =
    {
        Spec: ExperimentSpec
        Settings: RunSettings
        Device: torch.Device
        PoolTensors: ImageTensors
        /// Where long work reports its steps.
        Sink: ProgressSink
    }

    /// The trainer setup for this context.
    member c.Setup = Training.setupOf c.Device c.PoolTensors c.Spec c.Sink

/// A query strategy: how a round trains its networks and how it picks the next batch. Every strategy returns
/// min(k, |U|) distinct unlabelled indices (the round checks it).
type Strategy =
    {
        Name: string
        Description: string
        /// True when the same networks and pool give the same batch whatever order the pool is stored in
        /// (no random draws in the query).
        Deterministic: bool
        /// Trains fresh networks on the pool's labelled items in a round, before a query of k items (the round's
        /// batch, which the trainer may read); returns them and the step count.
        Train: Context -> Pool -> int -> int -> Result<Networks * int64, LearnError>
        /// Picks up to k unlabelled indices with the trained networks in a round.
        Query: Context -> Networks -> Pool -> int -> int -> Result<int[], LearnError>
        /// Named measurements of the trained networks after a query of k items (rounds.csv's diagnostics; may
        /// be empty).
        Signals: Context -> Networks -> Pool -> int -> int -> Result<(string * float) list, LearnError>
    }

/// Helpers the strategies share.
module Strategy =
    /// The baselines' trainer: plain cross-entropy on the labelled set, with the spec's budget.
    let trainPlain (ctx: Context) (pool: Pool) (round: int) (_: int) = Training.plain ctx.Setup round pool

    /// No measurements.
    let noSignals (_: Context) (_: Networks) (_: Pool) (_: int) (_: int) : Result<(string * float) list, LearnError> =
        Ok []

    /// Turns one score per unlabelled item (SMALLEST first) into the batch by the spec's batch mode: top-k,
    /// soft-rank sampling, class-balanced quotas over the predicted classes, or one pick per cluster of the top
    /// candidates' embeddings. `predicted` gives each unlabelled item's predicted class (asked for only when
    /// needed).
    let pick
        (ctx: Context)
        (nets: Networks)
        (round: int)
        (k: int)
        (unlabelled: int[])
        (scores: float[])
        (predicted: unit -> int[])
        =
        let p = ctx.Spec.Pick

        match p.Mode with
        | TopK -> TopK.smallest k unlabelled scores
        | SoftRank -> BatchSelection.softRank (Rng.key ctx.Spec.Seed round Rng.SoftRankKeys) p.Beta k unlabelled scores
        | ClassBalanced -> BatchSelection.balanced ctx.PoolTensors.Classes k unlabelled scores (predicted ())
        | Clustered ->
            let m = min unlabelled.Length (max k (p.Candidates * k))

            TopK.smallest m unlabelled scores
            |> Result.bind (fun top ->
                let scoreOf = Dictionary<int, float>(unlabelled.Length)

                for i in 0 .. unlabelled.Length - 1 do
                    scoreOf[unlabelled[i]] <- scores[i]

                let e = Scoring.embeddings nets ctx.PoolTensors top ctx.Settings.ScoreBatch ctx.Sink

                BatchSelection.clustered
                    (Rng.key ctx.Spec.Seed round Rng.ClusterSeeds)
                    p.Candidates
                    k
                    top
                    (top |> Array.map (fun i -> scoreOf[i]))
                    e)
        |> Result.mapError (fun e -> BadScores(round, e))

    /// The class of largest probability in each row of a row-major probability (or log-probability) block.
    let argmaxRows (classes: int) (rows: float32[]) =
        Array.init (rows.Length / classes) (fun i ->
            let mutable best = 0

            for j in 1 .. classes - 1 do
                if rows[i * classes + j] > rows[i * classes + best] then
                    best <- j

            best)

    /// A score of each prediction's probabilities, for the items in `indices` (in their order), with each
    /// item's predicted class.
    let probabilityScores (score: float[] -> float) (ctx: Context) (nets: Networks) (indices: int[]) =
        let p =
            Scoring.probabilities nets ctx.PoolTensors indices ctx.Settings.ScoreBatch ctx.Sink

        let c = ctx.PoolTensors.Classes

        Array.init indices.Length (fun i -> score (Array.init c (fun j -> float p[i * c + j]))), argmaxRows c p

    /// Ranks the unlabelled pool by a score of each prediction's probabilities (smallest first) and picks the
    /// batch by the spec's batch mode.
    let bySmallest (score: float[] -> float) (ctx: Context) (nets: Networks) (pool: Pool) (round: int) (k: int) =
        let unlabelled = Pool.unlabelled pool
        let scores, predicted = probabilityScores score ctx nets unlabelled
        pick ctx nets round k unlabelled scores (fun () -> predicted)
