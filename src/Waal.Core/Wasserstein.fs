module Waal.Core.Wasserstein
let x = 1
