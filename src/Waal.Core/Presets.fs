namespace Waal.Core

/// The values a preset gives the options whose defaults it decides. Every other option has one default whatever
/// the preset (the option table's `defaults`).
type PresetValues =
    {
        Epochs: int
        LearningRate: float
        Momentum: float
        WeightDecay: float
        TrainBudget: TrainBudget
        /// E of the floor budget: E x ceil(max(|L|, Floor) / Batch) steps a round.
        Floor: int
        Nesterov: bool
        Schedule: Schedule
        Warmup: int
        Alpha: float
        Selection: float
        Imbalance: Imbalance.Coefficient
        GpSign: GpSign
        CriticOutput: CriticOutput
        CriticOptimiser: CriticOptimiser
        Uncertainty: WaalUncertainty
        Score: WaalScore
        BatchMode: BatchMode
    }

/// The two presets, as records: `reference` (the authors' code at a CPU budget) and `recommended` (the protocol
/// and WAAL settings that docs/findings.md measured).
[<RequireQualifiedAccess>]
module Presets =
    let private isWaal (strategy: string) =
        System.String.Equals(strategy, "waal", System.StringComparison.OrdinalIgnoreCase)

    /// The authors' code's settings, at 2 epochs a round for WAAL; the baselines take the dataset's own epochs,
    /// learning rate and momentum.
    let reference (d: DefaultsFor) =
        {
            Epochs = if isWaal d.Strategy then 2 else d.Profile.BaselineEpochs
            LearningRate =
                if isWaal d.Strategy then
                    0.01
                else
                    d.Profile.BaselineLearningRate
            Momentum = d.Profile.Momentum
            WeightDecay = 0.0
            TrainBudget = EpochsOverLabelled
            Floor = 3000
            Nesterov = false
            Schedule = ConstantRate
            Warmup = 0
            Alpha = 0.002
            Selection = 10.0
            Imbalance = Imbalance.Reference
            GpSign = ReferenceSign
            CriticOutput = SigmoidOutput
            CriticOptimiser = CriticSgd
            Uncertainty = BoundUncertainty
            Score = Combined
            BatchMode = TopK
        }

    /// The measured protocol: every strategy trains the same floor budget. WAAL's query ranks by the margin
    /// alone: the critic's term made every measured batch worse (docs/findings.md §2-4); the critic still shapes
    /// the features through WAAL's training.
    let recommended =
        {
            Epochs = 30
            LearningRate = 0.05
            Momentum = 0.9
            WeightDecay = 5e-4
            TrainBudget = EpochsOverFloor
            Floor = 3000
            Nesterov = true
            Schedule = CosineRate
            Warmup = 1
            Alpha = 0.002
            Selection = 10.0
            Imbalance = Imbalance.Reference
            GpSign = ReferenceSign
            CriticOutput = SigmoidOutput
            CriticOptimiser = CriticSgd
            Uncertainty = MarginUncertainty
            Score = UncertaintyOnly
            BatchMode = TopK
        }

    /// The values of the preset a default is asked for.
    let valuesFor (d: DefaultsFor) =
        match d.Preset with
        | ReferencePreset -> reference d
        | RecommendedPreset -> recommended
