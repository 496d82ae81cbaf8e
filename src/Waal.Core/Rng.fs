module Waal.Core.Rng
let x = 1
