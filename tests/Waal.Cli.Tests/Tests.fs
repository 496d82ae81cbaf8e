module Waal.Cli.Tests.Tests
open Expecto
let all = testList "Cli" []
