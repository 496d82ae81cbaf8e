module Waal.Core.Metrics
let x = 1
