/// WAAL (Shui et al., AISTATS 2020): adversarial training with the critic, then the query that takes the k
/// smallest u - selection x g(f(x)): uncertain (small loss bound) and unlike the labelled set (large critic).
/// The paper's ablations are options: the H-divergence adversary (training), and ranking by u alone or by the
/// critic alone (query).
module Waal.Strategies.Waal

open Waal.Core
open Waal.Learning

/// The WAAL scores of the unlabelled pool, in the order of `unlabelled`: u (the chosen bound of -log p), the
/// critic value d, and the ranking score (smallest first): u - selection x d, or u, or -d.
let scores (ctx: Context) (nets: Nets.Networks) (unlabelled: int[]) =
    let s = Scoring.scores nets ctx.Pool unlabelled ctx.Settings.ScoreBatch ctx.Progress
    let m = ctx.Spec.Method

    let u =
        Array.init unlabelled.Length (fun i -> Uncertainty.ofLogProbabilities m.Bound (s.Row i))

    let d = s.Critic |> Array.map float

    let rank =
        match m.Score with
        | Combined -> Array.map2 (Uncertainty.combined m.Selection) u d
        | UncertaintyOnly -> u
        | DiversityOnly -> d |> Array.map (fun x -> -x)

    u, d, rank

/// The WAAL query: the k unlabelled indices of smallest ranking score (ties to the lower index).
let query (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let unlabelled = Pool.unlabelled pool
    let _, _, rank = scores ctx nets unlabelled

    TopK.smallest k unlabelled rank
    |> Result.mapError (fun e -> BadScores(round, e))

/// The strategy.
let strategy =
    {
        Name = "waal"
        Description =
            "Wasserstein adversarial active learning: critic-regularised training, query by uncertainty minus critic diversity"
        Deterministic = true
        Train = fun ctx pool round -> Training.waal ctx.Setup round pool
        Query = query
    }
