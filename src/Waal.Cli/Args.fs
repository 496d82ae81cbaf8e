module Waal.Cli.Args
let x = 1
