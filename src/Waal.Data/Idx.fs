module Waal.Data.Idx
let x = 1
