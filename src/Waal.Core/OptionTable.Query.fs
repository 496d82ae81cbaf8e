/// The option table's query room: WAAL's adversarial training and query, how scores become a batch, and the
/// batch-level queries (transport, mmd).
module internal Waal.Core.OptionTable.Query

open Waal.Core

let private byPreset (field: PresetValues -> 'T) = defaultsBy (Presets.valuesFor >> field)

/// WAAL's method, how scores become a batch, and the batch-level queries.
let method: OptionDef list =
    [
        number "alpha" (Closed 0.0) Unbounded Lens.alpha "weight of the adversarial terms."
        |> byPreset _.Alpha
        number
            "selection"
            Unbounded
            Unbounded
            Lens.selection
            "weight of the critic in the query score u - selection x critic."
        |> byPreset _.Selection
        choice
            "imbalance"
            [
                Imbalance.Reference, "reference"
                Imbalance.Paper, "paper"
                Imbalance.One, "one"
            ]
            Lens.imbalance
            "the coefficient c: reference |L|/|U|, the paper's C0, or one."
        |> byPreset _.Imbalance
        choice
            "gp-sign"
            [ ReferenceSign, "reference"; WganGpSign, "wgan-gp" ]
            Lens.gpSign
            "gradient-penalty sign in the critic step (reference: -1; wgan-gp: +1)."
        |> byPreset _.GpSign
        number "gp-weight" (Closed 0.0) Unbounded Lens.gpWeight "gradient-penalty weight."
        |> defaults 2.0
        choice "critic" CriticOutput.names Lens.criticOutput "the critic's last activation."
        |> byPreset _.CriticOutput
        choice
            "bound"
            [
                Uncertainty.Mixed, "mixed"
                Uncertainty.L1, "l1"
                Uncertainty.L2, "l2"
                Uncertainty.WorstCase, "worst-case"
            ]
            Lens.bound
            "the uncertainty bound (mixed: 0.5 L1 + 0.5 L2)."
        |> defaults Uncertainty.Mixed
        flag "augment" Lens.augment "random crop + flip for 3x32x32 data (off, as in the paper)."
        |> defaults false
        choice
            "adversary"
            [ Wasserstein, "wasserstein"; HDivergence, "h-divergence" ]
            Lens.adversary
            "WAAL's adversary: the Wasserstein critic, or the paper's H-divergence ablation."
        |> defaults Wasserstein
        |> later
        choice
            "waal-score"
            [
                Combined, "combined"
                UncertaintyOnly, "uncertainty"
                DiversityOnly, "diversity"
            ]
            Lens.score
            "WAAL's query ranking: combined (u - selection x critic), or the ablations."
        |> byPreset _.Score
        |> later
        choice
            "critic-optimiser"
            [ CriticSgd, "sgd"; CriticAdam, "adam" ]
            Lens.criticOptimiser
            "the critic's optimiser: sgd (the networks' SGD on the alpha-scaled loss) or adam (its own rate, unscaled loss)."
        |> byPreset _.CriticOptimiser
        |> later
        number
            "critic-learning-rate"
            (Open 0.0)
            Unbounded
            Lens.criticLearningRate
            "Adam's learning rate for the critic (critic-optimiser adam)."
        |> defaults 0.001
        |> later
        |> formerly "critic-lr"
        choice
            "waal-uncertainty"
            [
                BoundUncertainty, "bound"
                MarginUncertainty, "margin"
                EntropyUncertainty, "entropy"
            ]
            Lens.uncertainty
            "WAAL's uncertainty term: the paper's bound (see --bound), or margin or entropy, standardised over U against the standardised critic."
        |> byPreset _.Uncertainty
        |> later
        choice
            "batch-mode"
            [
                TopK, "top-k"
                SoftRank, "soft-rank"
                ClassBalanced, "balanced"
                Clustered, "cluster"
            ]
            Lens.batchMode
            "how waal, entropy, margin and least-confidence turn scores into a batch: top-k, soft-rank (P ~ rank^-beta), balanced (quotas over predicted classes), cluster (best of each of k clusters among the top candidates x k)."
        |> byPreset _.BatchMode
        |> later
        number
            "beta"
            (Closed 0.0)
            Unbounded
            Lens.pickBeta
            "the soft-rank exponent: 0 uniform, 1 Kirsch et al.'s default, large values approach top-k (--batch-mode top-k is the limit)."
        |> defaults 1.0
        |> later
        integer
            "candidates"
            (between 1 10000)
            Lens.pickCandidates
            "the cluster mode's candidates, as a multiple of the query size."
        |> defaults 10
        |> later
        number
            "transport-beta"
            (Closed 0.0)
            (Closed 16.0)
            Lens.transportBeta
            "transport and mmd: the pool's weights w(x) ~ u(x)^beta, u = 1 - margin (0: plain W1 or MMD of the pool; larger: the uncertain part of the pool counts more)."
        // The pilot of docs/findings.md §7 chose 2 by the plan's rule.
        |> defaults 2.0
        |> later
        integer
            "transport-candidates"
            (between 0 10000)
            Lens.transportCandidates
            "transport and mmd: pick among the most uncertain C x k unlabelled items (0: among all of them)."
        |> defaults 10
        |> later
        integer
            "transport-targets"
            (from 1)
            Lens.transportTargets
            "transport and mmd: the pool measure is every unlabelled item, or a seeded uniform sample of this many when there are more (bounds time and memory at any pool size)."
        |> defaults 20000
        |> later
        choice
            "transport-trainer"
            [ PlainTrainer, "plain"; WaalTrainer, "waal" ]
            Lens.transportTrainer
            "transport and mmd: the rounds train with plain cross-entropy (plain) or with WAAL's adversarial trainer and its options (waal)."
        |> defaults PlainTrainer
        |> later
    ]

/// The critic's controls, added after the first spec.json format.
let critic: OptionDef list =
    [
        integer
            "critic-steps"
            (between 1 100)
            Lens.criticSteps
            "WAAL: critic steps (step B) per step of the networks (step A)."
        |> defaults 1
        |> later
        flag
            "critic-trained"
            Lens.criticTrained
            "WAAL: train the critic (false: it keeps its random initialisation, a control on the same score path)."
        |> defaults true
        |> later
        number
            "critic-holdout"
            (Closed 0.0)
            (Open 0.5)
            Lens.criticHoldout
            "WAAL: the fraction of L and of U withheld from the critic's steps (the classifier still trains on them), so diagnostics.csv measures the critic on items it never saw (0: none)."
        |> defaults 0.0
        |> later
        choice
            "score-scale"
            [ PaperScale, "paper"; ZScale, "z"; RankScale, "rank" ]
            Lens.scoreScale
            "WAAL's query: the scale on which the critic term meets the uncertainty, u - selection x d: paper (the bound and the critic raw; margin and entropy z-scored), z (both z-scored over U) or rank (both as rank fractions)."
        |> defaults PaperScale
        |> later
    ]
