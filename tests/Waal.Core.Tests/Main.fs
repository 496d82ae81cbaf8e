module Waal.Core.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run
        argv
        (Expecto.Tests.testList
            "Core"
            [
                Waal.Core.Tests.Tests.all
                Waal.Core.Tests.TransportTests.all
                Waal.Core.Tests.TransportTests.inference
                Waal.Core.Tests.Inputs.all
                Waal.Core.Tests.Desk.all
            ])
