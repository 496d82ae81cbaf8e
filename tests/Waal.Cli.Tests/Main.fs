module Waal.Cli.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run
        argv
        (Expecto.Tests.testList "Cli" [ Waal.Cli.Tests.Tests.all; Waal.Cli.Tests.Hostile.all ])
