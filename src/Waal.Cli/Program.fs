module Waal.Cli.Program

[<EntryPoint>]
let main argv = Waal.Cli.Cli.run stdout stderr argv
