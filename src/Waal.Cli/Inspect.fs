module Waal.Cli.Inspect
let x = 1
