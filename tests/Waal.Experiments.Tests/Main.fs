module Waal.Experiments.Tests.Main

[<EntryPoint>]
let main argv =
    // Before any tensor work: oneDNN reads its instruction-set limit once (docs/platform.md).
    Waal.Learning.Device.guardCpu ()

    Waal.Testing.Summary.run
        argv
        (Expecto.Tests.testList
            "Experiments"
            [
                Waal.Experiments.Tests.Tests.all
                Waal.Experiments.Tests.Refusals.all
                Waal.Experiments.Tests.Backbones.all
                Waal.Experiments.Tests.Shards.all
            ])
