/// Random sampling: k distinct unlabelled indices, uniformly, without replacement (an early DeepAL drew with
/// replacement), from the key (seed, round, "random").
module Waal.Strategies.Random

open Waal.Core

/// The strategy.
let strategy =
    {
        Name = "random"
        Description = "uniform sampling without replacement"
        Deterministic = false
        Train = Strategy.trainPlain
        Query = fun ctx _ pool round k -> Ok(Pool.draw (Rng.key ctx.Spec.Seed round Rng.RandomQuery) k pool)
        Signals = Strategy.noSignals
    }
