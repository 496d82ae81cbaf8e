module Waal.Data.SvhnMat
let x = 1
