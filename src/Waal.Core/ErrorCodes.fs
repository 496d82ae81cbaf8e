namespace Waal.Core

open System
open Microsoft.FSharp.Reflection

/// The stable code of an error case, written beside the case: `| [<Code "EXP001">] SpecInvalid of ...`. Every
/// error type of the project with codes of its own (ExperimentError, ModelError, ReportError, CliError) says
/// them this way, and reads them with `ErrorCodes.reader`.
[<Sealed; AttributeUsage(AttributeTargets.All, AllowMultiple = false)>]
type CodeAttribute(code: string) =
    inherit Attribute()
    /// The code, e.g. EXP001.
    member _.Code = code

/// Reading the codes written beside a union's cases.
[<RequireQualifiedAccess>]
module ErrorCodes =
    let private codeOfCase (case: UnionCaseInfo) =
        case.GetCustomAttributes typeof<CodeAttribute>
        |> Array.tryHead
        |> Option.map (fun a -> (a :?> CodeAttribute).Code)

    /// Every case of the union 'T with its code, by case name (cases without one are left out: they carry
    /// another layer's error, whose code is its own).
    let table<'T> () =
        FSharpType.GetUnionCases typeof<'T>
        |> Array.choose (fun case -> codeOfCase case |> Option.map (fun code -> case.Name, code))

    /// A function from a value of the union 'T to its case's code (None for a case without one); the reflection
    /// runs once, when the function is made.
    let reader<'T> () : 'T -> string option =
        let codes =
            FSharpType.GetUnionCases typeof<'T>
            |> Array.map (fun case -> case.Tag, codeOfCase case)
            |> Map.ofArray

        let tagOf = FSharpValue.PreComputeUnionTagReader typeof<'T>
        fun value -> codes[tagOf (box value)]
