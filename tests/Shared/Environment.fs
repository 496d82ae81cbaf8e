/// Where the test suites find things on this machine.
module Waal.Testing.Environment

open System
open System.IO

/// The Fashion-MNIST folder: $WAAL_FASHION_MNIST, else the Debian package's.
let fashion =
    Environment.GetEnvironmentVariable "WAAL_FASHION_MNIST"
    |> Option.ofObj
    |> Option.defaultValue "/usr/share/datasets/fashion-mnist"

/// The repository root: the folder above the test assembly that holds the solution.
let repoRoot =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then
            failwith "Waal.Functional.sln not found above the test assembly"
        elif File.Exists(Path.Combine(dir.FullName, "Waal.Functional.sln")) then
            dir.FullName
        else
            up dir.Parent

    up (DirectoryInfo AppContext.BaseDirectory)
