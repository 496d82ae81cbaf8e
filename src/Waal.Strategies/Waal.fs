/// WAAL (Shui et al., AISTATS 2020): adversarial training with the critic, then the query that takes the k
/// smallest u - selection x g(f(x)): uncertain (small loss bound) and unlike the labelled set (large critic).
module Waal.Strategies.Waal

open Waal.Core
open Waal.Learning

/// The WAAL scores of the unlabelled pool: u (the chosen bound of -log p), the critic value d, and the
/// combined score u - selection x d, one per unlabelled index, in the order of `unlabelled`.
let scores (ctx: Context) (nets: Nets.Networks) (unlabelled: int[]) =
    let s = Scoring.scores nets ctx.Pool unlabelled ctx.Spec.ScoreBatch ctx.Progress
    let m = ctx.Spec.Method

    let u =
        Array.init unlabelled.Length (fun i -> Uncertainty.ofLogProbabilities m.Bound (s.Row i))

    let d = s.Critic |> Array.map float
    u, d, Array.map2 (Uncertainty.combined m.Selection) u d

/// The WAAL query: the k unlabelled indices of smallest combined score (ties to the lower index).
let query (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let unlabelled = Pool.unlabelled pool
    let _, _, combined = scores ctx nets unlabelled

    TopK.smallest k unlabelled combined
    |> Result.mapError (fun e -> BadScores(round, e))

/// The strategy.
let strategy =
    {
        Name = "waal"
        Description =
            "Wasserstein adversarial active learning: critic-regularised training, query by uncertainty minus critic diversity"
        Train = fun ctx pool round -> Training.waal ctx.Setup round pool
        Query = query
    }
