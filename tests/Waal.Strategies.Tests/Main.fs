module Waal.Strategies.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run argv Waal.Strategies.Tests.Tests.all
