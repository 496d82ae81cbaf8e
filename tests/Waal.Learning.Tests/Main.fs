module Waal.Learning.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run argv Waal.Learning.Tests.Tests.all
