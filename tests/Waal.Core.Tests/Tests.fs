module Waal.Core.Tests.Tests
open Expecto
let all = testList "Core" []
