/// `result { ... }`: a chain of steps that each may fail, written top to bottom instead of nested
/// `Result.bind`s. `let!` and `do!` stop at the first error; `return!` hands over another step's result.
[<AutoOpen>]
module Waal.Core.ResultExpression

open System

/// The builder behind `result { }`.
type ResultBuilder() =
    member _.Return(x: 'a) : Result<'a, 'e> = Ok x
    member _.ReturnFrom(r: Result<'a, 'e>) = r
    member _.Bind(r: Result<'a, 'e>, f: 'a -> Result<'b, 'e>) = Result.bind f r
    member _.Zero() : Result<unit, 'e> = Ok()
    member _.Delay(f: unit -> Result<'a, 'e>) = f
    member _.Run(f: unit -> Result<'a, 'e>) = f ()

    member _.Combine(r: Result<unit, 'e>, f: unit -> Result<'a, 'e>) = Result.bind f r

    member _.TryWith(f: unit -> Result<'a, 'e>, handler: exn -> Result<'a, 'e>) =
        try
            f ()
        with e ->
            handler e

    member _.TryFinally(f: unit -> Result<'a, 'e>, last: unit -> unit) =
        try
            f ()
        finally
            last ()

    member _.Using(resource: 'd :> IDisposable, f: 'd -> Result<'a, 'e>) =
        try
            f resource
        finally
            if not (isNull (box resource)) then
                resource.Dispose()

/// `result { let! x = step1; do! step2 x; return x }`.
let result = ResultBuilder()
