module Waal.Data.Cifar10
let x = 1
