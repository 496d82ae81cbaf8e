/// Class names, checked once where they enter (a command line, a file of names, a folder's sub-folders, a model
/// or session file read back, the C# facade): a class name becomes a folder name (`waal labels --folders`), part
/// of a file's path and a CSV cell, so it may not reach outside a folder or hide a character a person cannot see.
[<RequireQualifiedAccess>]
module Waal.Core.ClassNames

open System
open System.Text

let private strictUtf8 = UTF8Encoding(false, true)

/// The name's length in UTF-8, or None when it is not valid Unicode (a lone surrogate).
let private utf8Length (name: string) =
    try
        Some(strictUtf8.GetByteCount name)
    with :? ArgumentException ->
        None

/// What is wrong with one class name, or None for a usable one.
let problem (name: string) : string option =
    if isNull name || name = "" then
        Some "is empty"
    elif name = "." || name = ".." then
        Some "is '.' or '..', which name folders, not classes"
    elif name.IndexOfAny [| '/'; '\\' |] >= 0 then
        Some "holds a path separator ('/' or '\\')"
    elif name |> Seq.exists Char.IsControl then
        Some "holds a control character (a line break, a tab, ...)"
    elif name.Trim() <> name then
        Some "starts or ends with white space"
    elif name.StartsWith "." then
        Some "starts with '.' (a hidden name: a class folder so named would not be read back)"
    else
        match utf8Length name with
        | None -> Some "is not valid Unicode (a lone surrogate)"
        | Some n when n > 255 -> Some "is longer than 255 bytes in UTF-8 (the longest folder name)"
        | Some _ -> None

/// A name for messages, with its control characters escaped so the message stays one line.
let shown (name: string) =
    if isNull name then
        "null"
    else
        let sb = StringBuilder("'")

        for c in name do
            if Char.IsControl c then
                sb.Append($"\\u{int c:x4}") |> ignore
            else
                sb.Append c |> ignore

        sb.Append("'").ToString()

/// Checks a list of class names: at least two, each usable (see `problem`), no two the same. The error names
/// the first bad name and what is wrong with it.
let check (names: string[]) : Result<string[], string> =
    match names |> Array.tryPick (fun n -> problem n |> Option.map (fun p -> n, p)) with
    | Some(name, p) -> Error $"class name {shown name} {p}"
    | None when names.Length < 2 -> Error $"at least 2 class names are needed, found {names.Length}"
    | None ->
        match names |> Array.countBy id |> Array.tryFind (fun (_, n) -> n > 1) with
        | Some(name, _) -> Error $"the names must differ: class name {shown name} is given twice"
        | None -> Ok names
