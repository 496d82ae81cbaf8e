module Waal.Data.Load
let x = 1
