/// Entropy: the items whose prediction has the largest entropy (smallest sum p log p).
module Waal.Strategies.Entropy

open Waal.Core

/// The score of one prediction's probabilities (smallest: queried first).
let score = Classic.negEntropy

/// The strategy.
let strategy =
    {
        Name = "entropy"
        Description = "smallest sum_c p_c log p_c"
        Deterministic = true
        Train = Strategy.trainPlain
        Query = Strategy.bySmallest score
        Signals = Strategy.noSignals
    }
