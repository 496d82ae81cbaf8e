module Waal.Data.Tests.Tests
open Expecto
let all = testList "Data" []
