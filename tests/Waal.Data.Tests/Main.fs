module Waal.Data.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run
        argv
        (Expecto.Tests.testList
            "Data"
            [
                Waal.Data.Tests.Tests.all
                Waal.Data.Tests.Bounded.all
                Waal.Data.Tests.AtomicFileTests.all
            ])
