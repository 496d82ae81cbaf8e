module Waal.Experiments.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run argv Waal.Experiments.Tests.Tests.all
