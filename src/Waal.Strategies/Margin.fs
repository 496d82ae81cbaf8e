/// Margin: the items with the smallest gap between their two most likely classes.
module Waal.Strategies.Margin

open Waal.Core

/// The score of one prediction's probabilities (smallest: queried first).
let score = Classic.margin

/// The strategy.
let strategy =
    {
        Name = "margin"
        Description = "smallest p_(1) - p_(2)"
        Deterministic = true
        Train = Strategy.trainPlain
        Query = Strategy.bySmallest score
        Signals = Strategy.noSignals
    }
