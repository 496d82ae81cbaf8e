/// The one line a waal command ends a failure with, `error CODE: message` (CODE: letters then digits, e.g.
/// EXP001 or WAALB012). Every front end writes it; the MSBuild tasks and the Slurm client read it back here.
module Waal.Jobs.ErrorLine

open System.IO
open System.Text.RegularExpressions

let private pattern =
    Regex(@"^error (?<code>[A-Z]+[0-9]+): (?<text>.*)$", RegexOptions.Compiled)

/// The code and the message of an error line (leading and trailing blanks ignored), or None.
let tryParse (line: string) : (string * string) option =
    let m = pattern.Match(line.Trim())

    if m.Success then
        Some(m.Groups["code"].Value, m.Groups["text"].Value)
    else
        None

/// True for an error line.
let isError (line: string) = (tryParse line).IsSome

/// Every error line of a log file, trimmed, in order (none when the file does not exist).
let allIn (file: string) : string list =
    if File.Exists file then
        File.ReadLines file |> Seq.map _.Trim() |> Seq.filter isError |> List.ofSeq
    else
        []

/// The last error line of a log file, as code and message, or None.
let lastIn (file: string) : (string * string) option =
    allIn file |> List.tryLast |> Option.bind tryParse
