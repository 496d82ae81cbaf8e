module Waal.Cli.Program
[<EntryPoint>]
let main _ = 0
