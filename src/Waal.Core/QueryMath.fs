module Waal.Core.QueryMath
let x = 1
