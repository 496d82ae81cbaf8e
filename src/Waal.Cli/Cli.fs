module Waal.Cli.Cli
let x = 1
