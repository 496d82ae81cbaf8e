module Waal.Build.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run argv Waal.Build.Tests.Tests.all
