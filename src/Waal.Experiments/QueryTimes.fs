/// The paper's Table 1: for one trained model and one pool, how long each strategy's query takes and how much
/// memory it needs beyond what the process already held.
module Waal.Experiments.QueryTimes

open System
open System.Diagnostics
open System.IO
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Strategies

/// The pool `waal query-times` uses unless given one: the first 50,000 training images (the paper's Table 1).
let tablePool = 50000

/// One strategy's measurement.
type Timing =
    {
        Strategy: string
        Seconds: float
        /// Peak resident memory during the query minus the resident memory before it, in MB (None off Linux).
        PeakExtraMb: float option
        Picked: int
    }

/// A field of /proc/self/status in kB (VmRSS, VmHWM), when the system has it.
let processStatusKb (field: string) =
    try
        File.ReadAllLines "/proc/self/status"
        |> Array.tryFind (fun l -> l.StartsWith(field + ":"))
        |> Option.map (fun l -> float (l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]))
    with _ ->
        None

/// Resets the kernel's peak-RSS mark to the current RSS (Linux: "5" into /proc/self/clear_refs).
let private resetPeak () =
    try
        File.WriteAllText("/proc/self/clear_refs", "5")
        true
    with _ ->
        false

/// Times every strategy's query (k items) on the same trained networks and pool.
let measure (ctx: Context) (nets: Nets.Networks) (pool: Pool) (k: int) (strategies: Strategy list) =
    [
        for s in strategies ->
            GC.Collect()
            GC.WaitForPendingFinalizers()
            Device.trimHeap ()
            let canPeak = resetPeak ()
            let before = processStatusKb "VmRSS"
            let clock = Stopwatch.StartNew()
            let picked = s.Query ctx nets pool 0 k
            let seconds = clock.Elapsed.TotalSeconds
            let peak = processStatusKb "VmHWM"

            let extra =
                match canPeak, before, peak with
                | true, Some b, Some p -> Some(max 0.0 (p - b) / 1024.0)
                | _ -> None

            {
                Strategy = s.Name
                Seconds = seconds
                PeakExtraMb = extra
                Picked =
                    match picked with
                    | Ok p -> p.Length
                    | Error _ -> 0
            }
    ]

/// The table as text lines: strategy, seconds, ratio to waal, peak extra memory.
let table (timings: Timing list) =
    let waal =
        timings
        |> List.tryFind (fun t -> t.Strategy = "waal")
        |> Option.map (fun t -> t.Seconds)

    [
        yield "strategy            seconds   x waal   peak extra MB   picked"
        for t in timings ->
            let ratio =
                waal
                |> Option.map (fun w -> $"{t.Seconds / w, 7:F1}")
                |> Option.defaultValue "      -"

            let mem =
                t.PeakExtraMb
                |> Option.map (fun m -> $"{m, 13:F0}")
                |> Option.defaultValue "          n/a"

            $"{t.Strategy, -18} {t.Seconds, 8:F2}  {ratio}   {mem}   {t.Picked, 6}"
    ]

/// Loads the data of a spec, labels its initial set, trains one WAAL model (round 0) and times every
/// registered strategy's query of `spec.Query` items on it.
let run (config: Configuration) (hooks: Runner.Hooks) : Result<Timing list, ExperimentError> =
    Workbench.load config
    |> Result.bind (Workbench.openOn hooks.Sink)
    |> Result.bind (fun bench ->
        use bench = bench
        let spec = bench.Config.Spec
        let data = bench.Inputs.PoolImages

        Round.withHiddenInitial spec.Seed spec.Initial data.Labels data.Classes
        |> Result.map (fun first -> first.Pool)
        |> Result.mapError (fun e -> ExperimentError.LabelsRefused(0, e))
        |> Result.bind (fun pool ->
            let ctx = bench.Context hooks.Sink

            match Training.waal ctx.Setup 0 (min spec.Query pool.UnlabelledCount) pool with
            | Error e -> Error(RoundFailed(0, "train", e))
            | Ok(nets, _) ->
                use nets = nets

                hooks.Info
                    $"pool {data.Count}, {pool.LabelledCount} labelled, querying {spec.Query} of {pool.UnlabelledCount}"

                Ok(measure { ctx with Sink = ProgressSink.none } nets pool spec.Query Registry.all)))
