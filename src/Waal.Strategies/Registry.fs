/// The strategies by name, for the command line and the facade. A new strategy joins by being listed here.
module Waal.Strategies.Registry

/// Every registered strategy.
let all: Strategy list = [ Waal.strategy ]

/// The names, in registration order.
let names = all |> List.map (fun s -> s.Name)

/// The strategy of that name (case-insensitive).
let tryFind (name: string) =
    all |> List.tryFind (fun s -> s.Name = name.ToLowerInvariant())
