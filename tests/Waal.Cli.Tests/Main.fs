module Waal.Cli.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run argv Waal.Cli.Tests.Tests.all
