module Waal.Build.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run
        argv
        (Expecto.Tests.testList "Build" [ Waal.Build.Tests.Tests.all; Waal.Build.Tests.Packages.all ])
