/// What enters from outside, tried as a whole class of input: class names of every kind (separators, dots,
/// control characters, lone surrogates), CSV cells that a spreadsheet would run, and numbers a run cannot record.
module Waal.Core.Tests.Inputs

open System
open System.IO
open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core

let private config =
    { FsCheckConfig.defaultConfig with
        maxTest = 500
    }

let private fashion =
    {
        Name = "fashion-mnist"
        Momentum = 0.5
        BaselineEpochs = 10
        BaselineLearningRate = 0.01
    }

/// Strings built from the characters that make trouble in paths and cells, mixed with ordinary ones.
let private hostileText =
    let pieces =
        [
            "a"
            "Cat"
            "zebra crossing"
            "é"
            "猫"
            "🐱"
            "."
            ".."
            "/"
            "\\"
            "../"
            "/etc/passwd"
            " "
            "\t"
            "\n"
            "\r"
            "\u0000"
            "\u007f"
            "\u0085"
            "="
            "+"
            "-"
            "@"
            ","
            "\""
            "'"
            "%41"
            "#"
            "?"
            "\ud800"
            "x"
        ]

    gen {
        let! n = Gen.choose (0, 6)
        let! parts = Gen.listOfLength n (Gen.elements pieces)
        return String.Concat parts
    }
    |> Arb.fromGen

/// Whether a string holds a surrogate without its pair (text that is not valid Unicode).
let private loneSurrogate (s: string) =
    let mutable lone = false
    let mutable i = 0

    while i < s.Length do
        if Char.IsHighSurrogate s[i] && i + 1 < s.Length && Char.IsLowSurrogate s[i + 1] then
            i <- i + 2
        else
            lone <- lone || Char.IsSurrogate s[i]
            i <- i + 1

    lone

/// A CSV line's cells, unquoted as RFC 4180 reads them (the test's own reader).
let private cells (line: string) =
    let out = ResizeArray<string>()
    let cell = Text.StringBuilder()
    let mutable quoted = false
    let mutable i = 0

    while i < line.Length do
        let c = line[i]

        if quoted then
            if c = '"' && i + 1 < line.Length && line[i + 1] = '"' then
                cell.Append '"' |> ignore
                i <- i + 1
            elif c = '"' then
                quoted <- false
            else
                cell.Append c |> ignore
        elif c = '"' then
            quoted <- true
        elif c = ',' then
            out.Add(cell.ToString())
            cell.Clear() |> ignore
        else
            cell.Append c |> ignore

        i <- i + 1

    out.Add(cell.ToString())
    List.ofSeq out

let all =
    testList
        "What enters from outside"
        [
            testPropertyWithConfig config "a class name that is accepted names one folder directly inside its parent"
            <| Prop.forAll hostileText (fun name ->
                match ClassNames.problem name with
                | Some _ -> true
                | None ->
                    let root = Path.Combine(Path.GetTempPath(), "root")
                    let folder = Path.GetFullPath(Path.Combine(root, name))

                    Path.GetDirectoryName folder = root
                    && Path.GetFileName folder = name
                    && not (name |> Seq.exists Char.IsControl)
                    && not (name.StartsWith "."))

            testPropertyWithConfig
                config
                "a name with a separator, a control character, '.', '..' or a leading dot is refused, saying why"
            <| Prop.forAll hostileText (fun name ->
                let bad =
                    name = ""
                    || name.Contains '/'
                    || name.Contains '\\'
                    || name |> Seq.exists Char.IsControl
                    || name.StartsWith "."
                    || name.Trim() <> name
                    || loneSurrogate name

                match ClassNames.problem name with
                | Some why -> bad && why <> ""
                | None -> not bad)

            test "a list of class names: the first bad one is named with its control characters shown" {
                Expect.equal (ClassNames.check [| "cat"; "dog" |]) (Ok [| "cat"; "dog" |]) "two good names"

                for names, expected in
                    [
                        [| "cat" |], "at least 2 class names"
                        [| "cat"; "cat" |], "the names must differ: class name 'cat' is given twice"
                        [| "cat"; "../../../escaped" |], "class name '../../../escaped' holds a path separator"
                        [| "/absolute/elsewhere"; "dog" |], "class name '/absolute/elsewhere' holds a path separator"
                        [| "cat"; "a\nb" |], "class name 'a\\u000ab' holds a control character"
                        [| ".."; "dog" |], "is '.' or '..'"
                        [| ".hidden"; "dog" |], "starts with '.'"
                        [| "cat"; String('x', 256) |], "longer than 255 bytes"
                    ] do
                    match ClassNames.check names with
                    | Error m -> Expect.stringContains m expected $"%A{names}"
                    | Ok _ -> failtest $"%A{names} accepted"
            }

            testPropertyWithConfig
                config
                "a CSV text cell reads back as the text, and never starts as a formula a spreadsheet would run"
            <| Prop.forAll hostileText (fun s ->
                // Line breaks inside a cell are quoted; the test's reader takes one line, so keep them out here.
                let s = s.Replace("\n", " ").Replace("\r", " ")
                let cell = Csv.text s

                match cells cell with
                | [ read ] ->
                    Csv.ofText read = s
                    && not (read.Length > 0 && "=+-@\t\r".Contains read[0])
                    && (cell = s || cell.StartsWith "\"")
                | _ -> false)

            test
                "an AUC's 95% interval follows Hanley and McNeil (hand-computed), narrows with more items, stays in [0, 1]" {
                // A = 0.5, 100 and 100: Q1 = Q2 = 1/3, variance (0.25 + 2 x 99 x (1/3 - 0.25)) / 10^4 = 0.001675.
                let low, high = Metrics.aucInterval 0.5 100 100
                Expect.floatClose Accuracy.high low (0.5 - 1.96 * sqrt 0.001675) "low end"
                Expect.floatClose Accuracy.high high (0.5 + 1.96 * sqrt 0.001675) "high end"
                let low', high' = Metrics.aucInterval 0.5 1000 1000
                Expect.isLessThan (high' - low') (high - low) "more items, a narrower interval"
                Expect.equal (Metrics.aucInterval 1.0 3 3) (1.0, 1.0) "a perfect AUC on few items: [1, 1]"
                let low, _ = Metrics.aucInterval 0.02 5 5
                Expect.equal low 0.0 "clipped at 0"
            }

            test "every real-number option refuses what spec.json cannot record, before anything is written" {
                let c = Options.defaults fashion "waal" RecommendedPreset

                for o in Options.all |> List.filter (fun o -> o.Kind = Number) do
                    for bad in [ "infinity"; "-Infinity"; "NaN"; "1e400"; "-1e999" ] do
                        match o.Set bad c with
                        | Error m -> Expect.stringContains m "not a finite number" $"--{o.Name} {bad}: {m}"
                        | Ok _ -> failtest $"--{o.Name} {bad} accepted"
            }

            testPropertyWithConfig config "any value an option accepts is recorded in spec.json and read back as it was"
            <| Prop.forAll
                (Arb.fromGen (
                    gen {
                        let! o = Gen.elements (Options.all |> List.filter (fun o -> o.Kind = Number))
                        let! v = Gen.elements [ 0.0; 1e-300; 0.5; 2.0; 1e300; Double.MaxValue; -1.0; 1e308 ]
                        return o, v
                    }
                ))
                (fun (o, v) ->
                    let c = Options.defaults fashion "waal" RecommendedPreset

                    match o.Set (Options.formatNumber v) c with
                    | Error _ -> true
                    | Ok c ->
                        let json = SpecJson.toJson [] c

                        match SpecJson.ofJson (fun _ -> Ok fashion) json with
                        | Ok back -> o.Get back = o.Get c
                        | Error _ -> false)
        ]
