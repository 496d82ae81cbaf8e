module Waal.Label.Tests.Main

[<EntryPoint>]
let main argv =
    Waal.Testing.Summary.run
        argv
        (Expecto.Tests.testList
            "Label"
            [
                Waal.Label.Tests.Tests.all
                Waal.Label.Tests.BatchLabelsTests.all
                Waal.Label.Tests.DeskTransitions.all
            ])
