/// The smallest training the suites run where they need a run folder, not an accuracy: one epoch of at least
/// `floor` steps on two threads, `initial` labels and `query` more a round. One list, so that a change to what
/// "tiny" means (an option renamed, a cheaper setting) is made once.
module Waal.Testing.TinyRun

/// `waal run`'s options for a tiny run (the dataset's own network).
let training (initial: int) (query: int) (floor: int) =
    [
        "--initial"
        string initial
        "--query"
        string query
        "--epochs"
        "1"
        "--floor"
        string floor
        "--threads"
        "2"
    ]

/// The same with the small CNN (a folder's "auto" network is the residual net, slower to train).
let smallCnn (initial: int) (query: int) (floor: int) =
    [ "--network"; "small-cnn" ] @ training initial query floor
