module Waal.Data.Dataset
let x = 1
