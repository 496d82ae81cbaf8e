/// Least confidence: the items whose most likely class has the smallest probability.
module Waal.Strategies.LeastConfidence

open Waal.Core

/// The score of one prediction's probabilities (smallest: queried first).
let score = Classic.leastConfidence

/// The strategy.
let strategy =
    {
        Name = "least-confidence"
        Description = "smallest max_c p_c"
        Deterministic = true
        Train = Strategy.trainPlain
        Query = Strategy.bySmallest score
        Signals = Strategy.noSignals
    }
