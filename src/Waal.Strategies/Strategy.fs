namespace Waal.Strategies

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
        Pool: ImageTensors
        Progress: ProgressSink
    }

    /// The trainer setup for this context.
    member c.Setup = Training.setupOf c.Device c.Pool c.Spec c.Progress

/// A query strategy: how a round trains its networks and how it picks the next batch. Every strategy returns
/// min(k, |U|) distinct unlabelled indices (the round checks it).
type Strategy =
    {
        Name: string
        Description: string
        /// True when the same networks and pool give the same batch whatever order the pool is stored in
        /// (no random draws in the query).
        Deterministic: bool
        /// Trains fresh networks on the pool's labelled items in a round; returns them and the step count.
        Train: Context -> Pool -> int -> Result<Networks * int64, LearnError>
        /// Picks up to k unlabelled indices with the trained networks in a round.
        Query: Context -> Networks -> Pool -> int -> int -> Result<int[], LearnError>
    }

/// Helpers the strategies share.
module Strategy =
    /// The baselines' trainer: plain cross-entropy on the labelled set, with the spec's budget.
    let trainPlain (ctx: Context) (pool: Pool) (round: int) = Training.plain ctx.Setup round pool

    /// Ranks the unlabelled pool by a score of each prediction's probabilities; takes the k smallest.
    let bySmallest (score: float[] -> float) (ctx: Context) (nets: Networks) (pool: Pool) (round: int) (k: int) =
        let unlabelled = Pool.unlabelled pool

        let p =
            Scoring.probabilities nets ctx.Pool unlabelled ctx.Settings.ScoreBatch ctx.Progress

        let c = ctx.Pool.Classes

        let scores =
            Array.init unlabelled.Length (fun i -> score (Array.init c (fun j -> float p[i * c + j])))

        TopK.smallest k unlabelled scores
        |> Result.mapError (fun e -> BadScores(round, e))
