module Waal.Core.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run
        argv
        (Expecto.Tests.testList
            "Core"
            [
                Waal.Core.Tests.PoolTests.all
                Waal.Core.Tests.QueryTests.all
                Waal.Core.Tests.SelectionTests.all
                Waal.Core.Tests.OptionTests.all
                Waal.Core.Tests.RoundTests.all
                Waal.Core.Tests.TransportTests.all
                Waal.Core.Tests.TransportTests.inference
                Waal.Core.Tests.Inputs.all
            ])
