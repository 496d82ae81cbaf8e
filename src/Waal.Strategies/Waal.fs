/// WAAL (Shui et al., AISTATS 2020): adversarial training with the critic, then the query that takes the k
/// smallest u - selection x g(f(x)): uncertain (small loss bound) and unlike the labelled set (large critic).
/// The paper's ablations are options: the H-divergence adversary (training), and ranking by u alone or by the
/// critic alone (query). So are a margin or entropy uncertainty (standardised against the standardised critic)
/// and the batch mode (top-k, as the paper, or soft-rank, class-balanced, clustered).
module Waal.Strategies.Waal

open System
open Waal.Core
open Waal.Learning

/// The uncertainty term of each unlabelled item (smallest = most uncertain): the paper's bound of -log p, or the
/// margin or negative entropy of p.
let private uncertainty (m: MethodOptions) (row: float[]) =
    match m.Uncertainty with
    | BoundUncertainty -> Uncertainty.ofLogProbabilities m.Bound row
    | MarginUncertainty -> Classic.margin (row |> Array.map exp)
    | EntropyUncertainty -> Classic.negEntropy (row |> Array.map exp)

/// The WAAL scores of the unlabelled pool, in the order of `unlabelled`: u (the uncertainty term), the critic
/// value d, the ranking score (smallest first) and the raw scores. The score is u - selection x d with the
/// paper's bound, z(u) - selection x z(d) (z-scores over U) with margin or entropy; or u, or -d (ablations).
let scores (ctx: Context) (nets: Nets.Networks) (unlabelled: int[]) =
    let s = Scoring.scores nets ctx.Pool unlabelled ctx.Settings.ScoreBatch ctx.Progress
    let m = ctx.Spec.Method
    let u = Array.init unlabelled.Length (fun i -> uncertainty m (s.Row i))
    let d = s.Critic |> Array.map float

    let rank =
        match m.Score, m.Uncertainty with
        | Combined, BoundUncertainty -> Array.map2 (Uncertainty.combined m.Selection) u d
        | Combined, _ ->
            Array.map2 (Uncertainty.combined m.Selection) (BatchSelection.standardise u) (BatchSelection.standardise d)
        | UncertaintyOnly, _ -> u
        | DiversityOnly, _ -> d |> Array.map (fun x -> -x)

    u, d, rank, s

/// The WAAL query: the batch by the spec's batch mode over the ranking score (top-k: the k smallest, ties to
/// the lower index).
let query (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let unlabelled = Pool.unlabelled pool
    let _, _, rank, s = scores ctx nets unlabelled
    Strategy.pick ctx nets round k unlabelled rank (fun () -> Strategy.argmaxRows s.Classes s.LogProbabilities)

/// What the critic does, measured after a query: `critic_auc`, how well g separates U (high) from L (the
/// training labels, not held out); `critic_term_sd` and `uncertainty_sd`, the spread over U of the two terms as
/// they enter the score; `score_uncertainty_spearman`, the rank correlation of the score with the uncertainty
/// term alone (1: the critic changes nothing in the order).
let signals (ctx: Context) (nets: Nets.Networks) (pool: Pool) (_: int) =
    let unlabelled = Pool.unlabelled pool
    let labelled = Pool.labelled pool
    let u, d, rank, _ = scores ctx nets unlabelled

    let onLabelled =
        (Scoring.scores nets ctx.Pool labelled ctx.Settings.ScoreBatch ctx.Progress).Critic
        |> Array.map float

    let m = ctx.Spec.Method

    let criticTerm, uncertaintyTerm =
        match m.Score, m.Uncertainty with
        | UncertaintyOnly, _ -> Array.zeroCreate d.Length, u
        | DiversityOnly, _ -> d, Array.zeroCreate u.Length
        | Combined, BoundUncertainty -> d |> Array.map (fun x -> m.Selection * x), u
        | Combined, _ ->
            BatchSelection.standardise d |> Array.map (fun x -> m.Selection * x), BatchSelection.standardise u

    let orNaN = Option.defaultValue Double.NaN

    Ok
        [
            "critic_auc", Metrics.auc d onLabelled |> orNaN
            "critic_term_sd", Metrics.standardDeviation criticTerm
            "uncertainty_sd", Metrics.standardDeviation uncertaintyTerm
            "score_uncertainty_spearman", Metrics.spearman rank u |> orNaN
        ]

/// The strategy.
let strategy =
    {
        Name = "waal"
        Description =
            "Wasserstein adversarial active learning: critic-regularised training, query by uncertainty minus critic diversity"
        Deterministic = true
        Train = fun ctx pool round -> Training.waal ctx.Setup round pool
        Query = query
        Signals = signals
    }
