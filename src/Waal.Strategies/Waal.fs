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

/// Ranks over U as fractions in [0, 1] (0: the smallest; ties share their mean rank).
let private rankFractions (xs: float[]) =
    if xs.Length < 2 then
        Array.zeroCreate xs.Length
    else
        Metrics.ranks xs |> Array.map (fun r -> (r - 1.0) / float (xs.Length - 1))

/// The uncertainty and critic terms as they meet in the score (`ScoreScale`): the paper's bound and the critic
/// raw, margin and entropy z-scored against the z-scored critic (paper); both z-scored (z); both rank fractions
/// (rank).
let private onScale (m: MethodOptions) (u: float[]) (d: float[]) =
    match m.ScoreScale, m.Uncertainty with
    | PaperScale, BoundUncertainty -> u, d
    | PaperScale, _
    | ZScale, _ -> BatchSelection.standardise u, BatchSelection.standardise d
    | RankScale, _ -> rankFractions u, rankFractions d

/// The per-item terms of the items in `indices`, in their order: u (the uncertainty term), the critic value d,
/// and the raw scores. Each item's terms depend on that item alone (and, bit for bit, on the score batch it was
/// computed in: Sharding keeps batches whole).
let terms (ctx: Context) (nets: Nets.Networks) (indices: int[]) =
    let s = Scoring.scores nets ctx.PoolTensors indices ctx.Settings.ScoreBatch ctx.Sink

    let m = ctx.Spec.Method
    let u = Array.init indices.Length (fun i -> uncertainty m (s.Row i))
    let d = s.Critic |> Array.map float
    u, d, s

/// The ranking score (smallest first) of the whole unlabelled pool's terms: u - selection x d on the spec's
/// scale (`onScale`, which may standardise or rank over all of U); or u, or -d (ablations).
let rankOf (m: MethodOptions) (u: float[]) (d: float[]) =
    match m.Score with
    | Combined ->
        let su, sd = onScale m u d
        Array.map2 (Uncertainty.combined m.Selection) su sd
    | UncertaintyOnly -> u
    | DiversityOnly -> d |> Array.map (fun x -> -x)

/// The WAAL scores of the unlabelled pool, in the order of `unlabelled`: u (the uncertainty term), the critic
/// value d, the ranking score (smallest first) and the raw scores. The score is u - selection x d on the
/// spec's scale (`onScale`); or u, or -d (ablations).
let scores (ctx: Context) (nets: Nets.Networks) (unlabelled: int[]) =
    let u, d, s = terms ctx nets unlabelled
    u, d, rankOf ctx.Spec.Method u d, s

/// The WAAL query: the batch by the spec's batch mode over the ranking score (top-k: the k smallest, ties to
/// the lower index).
let query (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let unlabelled = Pool.unlabelled pool
    let _, _, rank, s = scores ctx nets unlabelled
    Strategy.pick ctx nets round k unlabelled rank (fun () -> Strategy.argmaxRows s.Classes s.LogProbabilities)

/// What the critic does, measured after a query: `critic_auc`, how well g separates U (high) from L (its own
/// training items); `critic_holdout_auc` with its 95% interval (`_low`, `_high`), the same on the items withheld
/// from the critic's steps (`--critic-holdout`; empty without); `wgap_first`, `wgap_middle`, `wgap_last`, the
/// critic's gap over the first, middle and last tenth of the round's steps; `critic_moved`, the distance its
/// weights moved from their initialisation; `grad_ratio`, the adversarial gradient's norm on the features over
/// the cross-entropy's (sampled every 25 steps); `critic_term_sd` and `uncertainty_sd`, the spread over U of
/// the two terms as they enter the score; `score_uncertainty_spearman`, the rank correlation of the score with
/// the uncertainty alone; `critic_off_overlap`, the fraction of the batch that the same scores pick with the
/// critic term removed (1: the critic changed nothing), both of the k items the round queried.
let signals (ctx: Context) (nets: Nets.Networks) (pool: Pool) (round: int) (k: int) =
    let unlabelled = Pool.unlabelled pool
    let labelled = Pool.labelled pool
    let u, d, rank, s = scores ctx nets unlabelled

    let critic (items: int[]) =
        (Scoring.scores nets ctx.PoolTensors items ctx.Settings.ScoreBatch ctx.Sink).Critic
        |> Array.map float

    let onLabelled = critic labelled
    let m = ctx.Spec.Method

    let criticTerm, uncertaintyTerm =
        match m.Score with
        | UncertaintyOnly -> Array.zeroCreate d.Length, u
        | DiversityOnly -> d, Array.zeroCreate u.Length
        | Combined ->
            let su, sd = onScale m u d
            sd |> Array.map (fun x -> m.Selection * x), su

    let orNaN = Option.defaultValue Double.NaN

    let holdout =
        let heldL, heldU = Training.criticHoldout ctx.Spec.Seed round m.CriticHoldout pool

        match
            (if heldL.Length > 0 && heldU.Length > 0 then
                 Metrics.auc (critic heldU) (critic heldL)
             else
                 None)
        with
        | Some a ->
            let low, high = Metrics.aucInterval a heldU.Length heldL.Length

            [
                "critic_holdout_auc", a
                "critic_holdout_auc_low", low
                "critic_holdout_auc_high", high
            ]
        | None -> []

    let traced =
        [
            for name in [ "wgap_first"; "wgap_middle"; "wgap_last"; "critic_moved"; "grad_ratio" ] do
                match nets.Trace.TryGetValue name with
                | true, v -> name, v
                | _ -> ()
        ]

    // The batch these scores give for the k queried, and the one they give with the critic term removed
    // (uncertainty alone).
    let k = min k unlabelled.Length

    let overlap =
        let predicted () =
            Strategy.argmaxRows s.Classes s.LogProbabilities

        match
            Strategy.pick ctx nets round k unlabelled rank predicted,
            Strategy.pick ctx nets round k unlabelled u predicted
        with
        | Ok withCritic, Ok without when k > 0 ->
            let a = Set.ofArray withCritic

            [
                "critic_off_overlap", float (without |> Array.filter a.Contains |> Array.length) / float k
            ]
        | _ -> []

    Ok(
        [
            "critic_auc", Metrics.auc d onLabelled |> orNaN
            "critic_term_sd", Metrics.standardDeviation criticTerm
            "uncertainty_sd", Metrics.standardDeviation uncertaintyTerm
            "score_uncertainty_spearman", Metrics.spearman rank u |> orNaN
        ]
        @ holdout
        @ traced
        @ overlap
    )

/// The strategy.
let strategy =
    {
        Name = "waal"
        Description =
            "Wasserstein adversarial active learning: critic-regularised training, query by uncertainty minus critic diversity"
        Deterministic = true
        Train = fun ctx pool round k -> Training.waal ctx.Setup round k pool
        Query = query
        Signals = signals
    }
