/// How long a round trains and at what learning rate: pure functions of the training options and the pool's
/// sizes, shared by both trainers.
module Waal.Core.Budget

open System

/// Steps of one epoch: a pass over max(|L|, floor) labelled images (floor budget), over L (the baselines'
/// reference) or over max(|L|,|U|) pairs (WAAL's reference and match-waal).
let perEpoch (t: TrainOptions) (waal: bool) (labelled: int) (unlabelled: int) =
    match t.Budget with
    | EpochsOverFloor -> int64 (Pairing.batches (max labelled t.Floor) t.Batch)
    | EpochsOverLabelled when not waal -> int64 (Pairing.batches labelled t.Batch)
    | EpochsOverLabelled
    | MatchWaal -> int64 (Pairing.batches (max labelled unlabelled) t.Batch)

/// The steps of a round: Epochs x perEpoch. (WAAL's reference budget with no unlabelled items left trains
/// Epochs passes over L.)
let steps (t: TrainOptions) (waal: bool) (labelled: int) (unlabelled: int) =
    int64 t.Epochs * perEpoch t waal labelled unlabelled

/// The learning rate of step `step` (0-based) of a round of `total` steps: constant, or a linear warm-up over
/// Warmup epochs (lr x (step + 1) / W) followed by a half cosine from lr at the warm-up's end to 0 after the
/// last step.
let rate (t: TrainOptions) (stepsPerEpoch: int64) (total: int64) (step: int64) =
    match t.Schedule with
    | ConstantRate -> t.LearningRate
    | CosineRate ->
        let w = min total (int64 t.Warmup * stepsPerEpoch)

        if step < w then
            t.LearningRate * float (step + 1L) / float w
        else
            let span = float (max 1L (total - w))
            t.LearningRate * 0.5 * (1.0 + Math.Cos(Math.PI * float (step - w) / span))
