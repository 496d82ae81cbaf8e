module Waal.Label.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run argv Waal.Label.Tests.Tests.all
