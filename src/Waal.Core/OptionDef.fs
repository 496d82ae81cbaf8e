namespace Waal.Core

open System
open System.Globalization

/// Whether an option is part of what an experiment computes.
type OptionScope =
    /// Changes the result: part of the spec (the experiment's identity).
    | Identity
    /// Never changes a result (where the data is, threads, device, scoring batch): part of the run settings.
    | Setting

/// How an option's value is written and read.
type OptionKind =
    /// A whole number (JSON number).
    | Integer
    /// A real number (JSON number).
    | Number
    /// One of fixed names (JSON string).
    | Choice of names: string list
    /// On or off (JSON true/false; on the command line the flag alone means on).
    | Flag
    /// Free text (JSON string).
    | Text
    /// A whole number or "all" (JSON number or null).
    | IntegerOrAll

/// What an option's default depends on: the dataset, the strategy and the preset.
type DefaultsFor =
    {
        Profile: DatasetProfile
        /// The strategy's name (lower case).
        Strategy: string
        Preset: Preset
    }

/// One option: its name, its type, its default and how it reads and writes a configuration. Every value travels
/// as canonical text (invariant culture, round-trip exact), so one parser serves every front end. Core knows no
/// front end: each one spells the name its own way (the command line as it is, spec.json in camelCase, MSBuild
/// metadata and the C# facade in PascalCase) and gives its own fallbacks to `Options.build`.
type OptionDef =
    {
        /// The name in lower case, whole words joined by dashes, e.g. "gp-weight". Every front end spells it by
        /// one rule: the command line as it is, spec.json in camelCase, MSBuild and C# in PascalCase.
        Name: string
        /// Earlier names, still accepted wherever a name is read (the command line, spec.json, MSBuild metadata),
        /// so that files and projects written before a rename keep working; the help names them.
        Formerly: string list
        Scope: OptionScope
        Kind: OptionKind
        /// The accepted values in words (shown in help and errors), e.g. "a number >= 0".
        Expected: string
        Help: string
        /// False for options added after the first spec.json format: a file without them means the default.
        Required: bool
        /// The default for a dataset, a strategy and a preset, as canonical text.
        Default: DefaultsFor -> string
        /// The configuration's value, as canonical text.
        Get: Configuration -> string
        /// Sets the value from text; an error says what was expected and what was found.
        Set: string -> Configuration -> Result<Configuration, string>
        /// True for the options read before every other, because they pick the others' defaults (dataset,
        /// strategy, preset): one of them not given takes the front end's fallback, or is an error without one.
        ReadFirst: bool
        /// True for the options that apply to folder datasets only (a dataset stored in files has its own test
        /// split and image shape).
        FolderOnly: bool
    }

    /// A dashed name in camelCase (spec.json's keys): "gp-weight" is gpWeight.
    static member CamelCase(name: string) =
        let parts = name.Split '-'

        parts[0]
        + String.Join("", parts[1..] |> Array.map (fun p -> string (Char.ToUpperInvariant p[0]) + p[1..]))

    /// A dashed name in PascalCase (MSBuild metadata, C# properties): "gp-weight" is GpWeight.
    static member PascalCase(name: string) =
        String.Join(
            "",
            name.Split '-'
            |> Array.map (fun p -> string (Char.ToUpperInvariant p[0]) + p[1..])
        )

    /// The key in spec.json: the name in camelCase.
    member o.JsonName = OptionDef.CamelCase o.Name

    /// The name and the earlier names.
    member o.Names = o.Name :: o.Formerly

/// The range of a real option; its ends are shown in help and errors as written, e.g. "a number in [0, 1)".
type internal NumberEnd =
    | Unbounded
    | Closed of float
    | Open of float

/// An option being declared: its name, what it accepts and the field it sets, before its default is given
/// (`OptionDraft.defaults` and its kin finish it into an OptionDef).
type internal OptionDraft<'T> =
    {
        Name: string
        Scope: OptionScope
        Kind: OptionKind
        Expected: string
        Help: string
        Lens: Lens<Configuration, 'T>
        /// Reads a value from text; `expected` is the draft's final Expected, for the message.
        Parse: string -> string -> Result<'T, string>
        Format: 'T -> string
    }

/// The words an option table entry is written in: `integer "query" (from 1) Lens.query "help" |> defaults 1000`.
/// Each builder takes the name, what it accepts, the lens of its field and its help; modifiers then name what
/// differs from the usual (`setting`, `expects`, `only`, `later`, `folderOnly`), and the default ends it.
[<AutoOpen>]
module internal OptionWords =
    let private invariant = CultureInfo.InvariantCulture

    /// A number as canonical text (shortest round-trip form).
    let formatNumber (x: float) = x.ToString("R", invariant)

    let internal parseInt (text: string) =
        match Int64.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, invariant) with
        | true, v -> Some v
        | _ -> None

    let private parseNumber (text: string) =
        match Double.TryParse(text.Trim(), NumberStyles.Float, invariant) with
        | true, v -> Some v
        | _ -> None

    /// The integers accepted: from `lo` (up to the largest int), or between two ends, both included.
    type IntRange = { Lo: int64; Hi: int64 }

    let from (lo: int) =
        {
            Lo = int64 lo
            Hi = int64 Int32.MaxValue
        }

    let between (lo: int) (hi: int) = { Lo = int64 lo; Hi = int64 hi }

    let private wholeNumber (range: IntRange) expected (text: string) =
        match parseInt text with
        | Some v when v >= range.Lo && v <= range.Hi -> Ok v
        | Some v -> Error $"expected {expected}, found {v}"
        | None -> Error $"expected {expected}, found '{text}'"

    let private draft name kind expected help lens parse format : OptionDraft<'T> =
        {
            Name = name
            Scope = Identity
            Kind = kind
            Expected = expected
            Help = help
            Lens = lens
            Parse = parse
            Format = format
        }

    /// A whole number of a field of type int.
    let integer name (range: IntRange) (lens: Lens<Configuration, int>) help =
        let expected =
            if range.Hi = int64 Int32.MaxValue then
                $"an integer >= {range.Lo}"
            else
                $"an integer in {range.Lo}..{range.Hi}"

        draft name Integer expected help lens (fun e t -> wholeNumber range e t |> Result.map int) string

    /// Any 64-bit integer.
    let longInteger name (lens: Lens<Configuration, int64>) help =
        let range =
            {
                Lo = Int64.MinValue
                Hi = Int64.MaxValue
            }

        draft name Integer "a 64-bit integer" help lens (wholeNumber range) string

    /// A real number between two ends; always finite (a run records only finite numbers).
    let number name (lo: NumberEnd) (hi: NumberEnd) (lens: Lens<Configuration, float>) help =
        let ok v =
            (match lo with
             | Unbounded -> true
             | Closed a -> v >= a
             | Open a -> v > a)
            && (match hi with
                | Unbounded -> true
                | Closed b -> v <= b
                | Open b -> v < b)

        let expected =
            match lo, hi with
            | Unbounded, Unbounded -> "a finite number"
            | Closed a, Unbounded -> $"a number >= {formatNumber a}"
            | Open a, Unbounded -> $"a number > {formatNumber a}"
            | _ ->
                let left, a =
                    match lo with
                    | Closed a -> "[", a
                    | Open a -> "(", a
                    | Unbounded -> "(", Double.NegativeInfinity

                let right, b =
                    match hi with
                    | Closed b -> "]", b
                    | Open b -> ")", b
                    | Unbounded -> ")", Double.PositiveInfinity

                $"a number in {left}{formatNumber a}, {formatNumber b}{right}"

        let parse expected (text: string) =
            match parseNumber text with
            // spec.json, MSBuild metadata and every front end record numbers as JSON, which has no infinity or
            // NaN: a value that cannot be recorded is refused here, before anything is written.
            | Some v when not (Double.IsFinite v) ->
                Error
                    $"expected {expected}, found '{text.Trim()}', which is not a finite number (a run records only finite numbers)"
            | Some v when ok v -> Ok v
            | Some v -> Error $"expected {expected}, found {formatNumber v}"
            | None -> Error $"expected {expected}, found '{text}'"

        draft name Number expected help lens parse formatNumber

    /// One of fixed names (read case-insensitively).
    let choice name (values: ('T * string) list) (lens: Lens<Configuration, 'T>) help =
        let names = values |> List.map snd

        let parse expected (text: string) =
            match values |> List.tryFind (fun (_, n) -> n = text.Trim().ToLowerInvariant()) with
            | Some(v, _) -> Ok v
            | None -> Error $"expected {expected}, found '{text}'"

        let format v =
            values |> List.find (fun (x, _) -> x = v) |> snd

        draft name (Choice names) ("one of " + String.Join(", ", names)) help lens parse format

    /// On or off.
    let flag name (lens: Lens<Configuration, bool>) help =
        let parse _ (text: string) =
            match text.Trim().ToLowerInvariant() with
            | "true" -> Ok true
            | "false" -> Ok false
            | _ -> Error $"expected true or false, found '{text}'"

        draft name Flag "true or false" help lens parse (fun v -> if v then "true" else "false")

    /// Free text, trimmed; nothing is refused (see `required`).
    let text name expected (lens: Lens<Configuration, string>) help =
        draft name Text expected help lens (fun _ (t: string) -> Ok(t.Trim())) id

    /// Text of its own form: `parse` gives the value or the whole message.
    let custom name kind expected (lens: Lens<Configuration, 'T>) (parse: string -> Result<'T, string>) format help =
        draft name kind expected help lens (fun _ t -> parse t) format

    /// Refuses nothing-but-blanks text.
    let required (d: OptionDraft<string>) =
        { d with
            Parse =
                fun e t ->
                    if String.IsNullOrWhiteSpace t then
                        Error $"expected {e}, found nothing"
                    else
                        d.Parse e t
        }

    /// Lower-cases a text value (names read case-insensitively).
    let lowered (d: OptionDraft<string>) =
        { d with
            Parse = fun e t -> d.Parse e t |> Result.map _.ToLowerInvariant()
        }

    /// Shows these words for what is accepted, in help and errors.
    let expects (words: string) (d: OptionDraft<'T>) = { d with Expected = words }

    /// Refuses the values that fail `ok` as well.
    let only (ok: 'T -> bool) (d: OptionDraft<'T>) =
        { d with
            Parse =
                fun e t ->
                    d.Parse e t
                    |> Result.bind (fun v ->
                        if ok v then
                            Ok v
                        else
                            Error $"expected {e}, found {d.Format v}")
        }

    /// Never changes a result (where the data is, threads, device): a run setting, not part of the spec.
    let setting (d: OptionDraft<'T>) = { d with Scope = Setting }

    /// Finishes a draft with a default that depends on the dataset, the strategy and the preset.
    let defaultsBy (dflt: DefaultsFor -> 'T) (d: OptionDraft<'T>) : OptionDef =
        {
            Name = d.Name
            Formerly = []
            Scope = d.Scope
            Kind = d.Kind
            Expected = d.Expected
            Help = d.Help
            Required = true
            Default = dflt >> d.Format
            Get = d.Lens.Get >> d.Format
            Set = fun text c -> d.Parse d.Expected text |> Result.map (fun v -> d.Lens.Set v c)
            ReadFirst = false
            FolderOnly = false
        }

    /// Finishes a draft with one default.
    let defaults (value: 'T) (d: OptionDraft<'T>) = defaultsBy (fun _ -> value) d

    /// Added after the first spec.json format: a file without it means the default.
    let later (o: OptionDef) = { o with Required = false }

    /// Applies to folder datasets only (a dataset stored in files has its own test split and image shape).
    let folderOnly (o: OptionDef) = { o with FolderOnly = true }

    /// Read before every other option: it picks the others' defaults.
    let readFirst (o: OptionDef) = { o with ReadFirst = true }

    /// Was called `name` before: that name is still accepted wherever a name is read.
    let formerly (name: string) (o: OptionDef) =
        { o with
            Formerly = o.Formerly @ [ name ]
        }
