module Waal.Learning.Tests.Main

[<EntryPoint>]
let main argv =
    // Before any tensor work: oneDNN reads its instruction-set limit once (docs/platform.md).
    Waal.Learning.Device.guardCpu ()
    Waal.Testing.Summary.run argv Waal.Learning.Tests.Tests.all
