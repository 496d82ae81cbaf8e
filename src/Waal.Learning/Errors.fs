namespace Waal.Learning

open System

open Waal.Core

/// Why training or scoring failed.
type LearnError =
    /// A loss became NaN or infinite: training diverged (or the inputs hold NaN/Inf).
    | Diverged of round: int * epoch: int * step: int * what: string * value: float
    /// Scores that cannot be ranked (NaN or infinite): no query is made from them.
    | BadScores of round: int * error: QueryError
    /// The requested device is not there.
    | DeviceUnavailable of detail: string
    /// Inputs that the networks cannot take (shape, NaN pixels).
    | BadInput of detail: string

/// Messages for learning errors.
module LearnError =
    /// One line.
    let message (e: LearnError) =
        match e with
        | Diverged(round, epoch, step, what, value) ->
            $"round {round}, epoch {epoch + 1}, step {step + 1}: {what} is {value}; training diverged (or the inputs hold NaN/Inf)"
        | BadScores(round, error) -> $"round {round}: {Errors.queryMessage error}; no query was made"
        | DeviceUnavailable detail -> detail
        | BadInput detail -> detail

/// Reports progress of long work: a phase with a total, steps done, the end of the phase.
type ProgressSink =
    {
        Start: string -> int -> unit
        Advance: int -> unit
        Finish: unit -> unit
    }

/// Progress sinks.
module ProgressSink =
    /// Reports nothing.
    let none =
        {
            Start = fun _ _ -> ()
            Advance = ignore
            Finish = ignore
        }

    /// A sink from .NET delegates (for the C# facade).
    let ofDelegates (start: Action<string, int>) (advance: Action<int>) (finish: Action) =
        {
            Start = fun name total -> start.Invoke(name, total)
            Advance = fun n -> advance.Invoke n
            Finish = fun () -> finish.Invoke()
        }
