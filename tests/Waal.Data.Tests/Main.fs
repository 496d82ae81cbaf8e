module Waal.Data.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run argv Waal.Data.Tests.Tests.all
