module Waal.Core.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run argv Waal.Core.Tests.Tests.all
