module Waal.Data.Binary
let x = 1
