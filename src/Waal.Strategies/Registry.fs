/// The strategies by name, for the command line and the facade. A new strategy joins by being listed here,
/// and the shared property suite then checks it.
module Waal.Strategies.Registry

/// Every registered strategy.
let all: Strategy list =
    [
        Random.strategy
        LeastConfidence.strategy
        Margin.strategy
        Entropy.strategy
        Bald.strategy
        KMeans.strategy
        KCenter.strategy
        Badge.strategy
        DeepFool.strategy
        Waal.strategy
        Transport.strategy
        Transport.mmd
    ]

/// The names, in registration order.
let names = all |> List.map (fun s -> s.Name)

/// The strategy of that name (case-insensitive).
let tryFind (name: string) =
    all |> List.tryFind (fun s -> s.Name = name.ToLowerInvariant())
