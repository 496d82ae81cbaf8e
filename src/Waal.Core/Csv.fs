/// CSV cells as this project writes and reads them. A cell is quoted when it holds a comma, a quote or a line
/// break; a text cell that a spreadsheet would run as a formula (one starting with =, +, -, @, a tab or a carriage
/// return) is written as text, as OWASP's guidance on CSV injection says: a ' before it, the whole cell quoted. A
/// text that itself starts with ' gets one more, so every text reads back as it was (ofText).
[<RequireQualifiedAccess>]
module Waal.Core.Csv

let private formulaStart = [| '='; '+'; '-'; '@'; '\t'; '\r' |]

/// The first characters that get a ' before them: a formula's, and ' itself.
let private guarded = Array.append formulaStart [| '\'' |]

let private quoted (s: string) = "\"" + s.Replace("\"", "\"\"") + "\""

/// A text cell (a path, a class name, a message): never read as a formula.
let text (s: string) =
    if s.Length > 0 && Array.contains s[0] guarded then
        quoted ("'" + s)
    elif s.IndexOfAny [| ','; '"'; '\n'; '\r' |] >= 0 then
        quoted s
    else
        s

/// A text cell read back (already unquoted): the ' that `text` put before a guarded character is taken off.
let ofText (s: string) =
    if s.Length > 1 && s[0] = '\'' && Array.contains s[1] guarded then
        s.Substring 1
    else
        s
