module Waal.Core.Errors
let x = 1
