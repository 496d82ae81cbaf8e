module Waal.Core.Pool
let x = 1
