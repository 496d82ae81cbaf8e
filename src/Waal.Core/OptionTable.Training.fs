/// The option table's training room: how each round trains, and the preset that picks these defaults. A default
/// that the preset decides reads the preset's record (Presets.fs).
module internal Waal.Core.OptionTable.Training

open Waal.Core

/// The default the preset decides.
let private byPreset (field: PresetValues -> 'T) = defaultsBy (Presets.valuesFor >> field)

let options: OptionDef list =
    [
        integer
            "epochs"
            (from 1)
            Lens.epochs
            "epochs per round (reference preset: waal 2, baselines 10 for Fashion-MNIST, else 20; recommended: see docs/findings.md)."
        |> byPreset _.Epochs
        integer "batch-size" (from 1) Lens.batch "batch size, per half for WAAL."
        |> defaults 64
        |> formerly "batch"
        number
            "learning-rate"
            (Open 0.0)
            Unbounded
            Lens.learningRate
            "SGD learning rate (reference: 0.01; CIFAR-10's baselines 0.05)."
        |> byPreset _.LearningRate
        |> formerly "lr"
        number "momentum" (Closed 0.0) (Open 1.0) Lens.momentum "SGD momentum (reference: 0.5; CIFAR-10 0.3)."
        |> byPreset _.Momentum
        number
            "weight-decay"
            (Closed 0.0)
            Unbounded
            Lens.weightDecay
            "SGD's L2 weight decay on every network (0: none, as the reference)."
        |> byPreset _.WeightDecay
        |> later
        choice
            "train-budget"
            [
                EpochsOverLabelled, "epochs"
                MatchWaal, "match-waal"
                EpochsOverFloor, "floor"
            ]
            Lens.budget
            "a round's length: epochs (baselines E passes over L, WAAL E epochs of max(|L|,|U|) pairs), match-waal (baselines as many steps as WAAL), floor (every strategy E x ceil(max(|L|, floor) / batch) steps)."
        |> byPreset _.TrainBudget
        |> later
        integer "floor" (from 1) Lens.floor "the floor budget's M: a round trains at least E x ceil(M / batch) steps."
        |> byPreset _.Floor
        |> later
        flag "nesterov" Lens.nesterov "Nesterov momentum in SGD."
        |> byPreset _.Nesterov
        |> later
        choice
            "schedule"
            [ ConstantRate, "constant"; CosineRate, "cosine" ]
            Lens.schedule
            "the learning rate over a round: constant, or cosine to 0 after a linear warm-up."
        |> byPreset _.Schedule
        |> later
        integer "warmup" (from 0) Lens.warmup "epochs of linear warm-up before the cosine schedule."
        |> byPreset _.Warmup
        |> later
    ]

/// Where the defaults come from: read before every other option, since it picks their defaults.
let preset: OptionDef =
    choice
        "preset"
        [ ReferencePreset, "reference"; RecommendedPreset, "recommended" ]
        Lens.preset
        "where the defaults come from: recommended (the protocol and WAAL settings of docs/findings.md) or reference (the authors' code's settings at a CPU budget of 2 epochs a round, not the paper's 80-epoch protocol; a spec.json without this field)."
    |> defaultsBy _.Preset
    |> later
    |> readFirst
