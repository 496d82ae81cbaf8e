module Waal.Build.Tests.Main

[<EntryPoint>]
let main argv =
    try
        Waal.Testing.Summary.run
            argv
            (Expecto.Tests.testList
                "Build"
                [
                    Waal.Build.Tests.Tests.all
                    Waal.Build.Tests.Packages.all
                    Waal.Build.Tests.Cluster.all
                ])
    finally
        // The Slurm daemons the cluster tests started, by their pids.
        Waal.Build.Tests.Cluster.stop ()
