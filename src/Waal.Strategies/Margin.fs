/// Margin: the items with the smallest gap between their two most likely classes.
module Waal.Strategies.Margin

open Waal.Core

/// The strategy.
let strategy =
    {
        Name = "margin"
        Description = "smallest p_(1) - p_(2)"
        Deterministic = true
        Train = Strategy.trainPlain
        Query = Strategy.bySmallest Classic.margin
        Signals = Strategy.noSignals
    }
