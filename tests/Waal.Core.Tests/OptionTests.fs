/// The option table, spec.json, Options.build and the network registry.
module Waal.Core.Tests.OptionTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core
open Waal.Core.Tests.Common

/// A value of an option other than its default, valid for it.
let private otherValue (o: OptionDef) (current: string) =
    match o.Kind with
    | Choice names -> names |> List.find (fun n -> n <> current)
    | Flag -> if current = "true" then "false" else "true"
    | Text when o.Name = "dataset" -> "cifar10"
    | Text when o.Name = "stop-when" -> "labels>=5000,kappa>=0.99/2"
    | Text when o.Name = "rare-classes" -> if current = "" then "0,4,8" else ""
    | Text -> current + "x"
    | IntegerOrAll -> if current = "all" then "1234" else "all"
    | Integer -> string (int64 current + 3L)
    | Number -> Options.formatNumber (float current * 0.5 + 0.125)

let private spec =
    let d = Options.defaults fashion "waal" ReferencePreset

    testList
        "Options"
        [
            test "every option's default reads back, and setting its text again changes nothing" {
                for o in Options.all do
                    Expect.equal
                        (o.Get d)
                        (o.Default
                            {
                                Profile = fashion
                                Strategy = "waal"
                                Preset = ReferencePreset
                            })
                        $"{o.Name}: the default"

                    Expect.equal (o.Set (o.Get d) d) (Ok d) $"{o.Name}: Set (Get c) c = c"
            }

            test "every option takes another valid value and refuses garbage, naming itself" {
                for o in Options.all do
                    let v = otherValue o (o.Get d)

                    match Options.set o.Name v d with
                    | Ok c -> Expect.equal (Options.get o.Name c) v $"{o.Name}: the new value reads back"
                    | Error e -> failtestf "%s: refused %s: %s" o.Name v e.Message

                    if o.Kind <> Text then
                        match Options.set o.Name "garbage!" d with
                        | Error e -> Expect.equal e.Field o.Name $"{o.Name}: the error names the option"
                        | Ok _ -> failtestf "%s accepted garbage" o.Name
            }

            test "names: spec.json's camelCase, all distinct; unknown names get the nearest" {
                let gp = Options.tryFind "gp-weight" |> Option.get
                Expect.equal gp.JsonName "gpWeight" "derived name"
                let names = Options.all |> List.map (fun o -> o.Name)
                Expect.equal (List.distinct names) names "distinct"

                match Options.set "gp-wieght" "1" d with
                | Error e -> Expect.stringContains e.Message "gp-weight" "the nearest name"
                | Ok _ -> failtest "an unknown option was accepted"

                Expect.isTrue (Options.tryFind "seeds").IsNone "seeds is not seed"
                Expect.equal (Options.nearest (Options.all |> List.map (fun o -> o.Name)) "seeds") "seed" "nearest"
            }

            test "spec.json round-trips every field, and versions are not part of the configuration" {
                let c =
                    Options.all
                    |> List.fold (fun c o -> o.Set (otherValue o (o.Get d)) c |> Result.defaultWith failwith) d

                Expect.notEqual c d "every field changed"
                Expect.equal (SpecJson.ofJson profileOf (SpecJson.toJson [ "waal", "0.1.0" ] c)) (Ok c) "round trip"
                Expect.equal (SpecJson.ofJson profileOf (SpecJson.toJson [] d)) (Ok d) "defaults, pool = all"
            }

            test
                "a run says what it is: the recommended waal is WAAL's trainer with the margin query and the critic off" {
                let recommended = (Options.defaults fashion "waal" RecommendedPreset).Spec
                Expect.equal (Options.describe recommended) "WAAL's trainer, margin query, critic off" "recommended"
                Expect.equal (Options.describe d.Spec) "WAAL, the paper's query: bound - 10 x critic" "reference"

                let combined =
                    { recommended with
                        Method =
                            { recommended.Method with
                                Score = Combined
                                Selection = 0.1
                                ScoreScale = ZScale
                                CriticTrained = false
                            }
                    }

                Expect.equal
                    (Options.describe combined)
                    "WAAL: margin - 0.1 x critic on the z scale, frozen random critic"
                    "combined, frozen"

                Expect.equal (Options.describe { recommended with Strategy = "badge" }) "badge" "a baseline"
                let json = SpecJson.toJson [] (Options.defaults fashion "waal" RecommendedPreset)

                Expect.stringContains
                    json
                    "\"summary\": \"WAAL's trainer, margin query, critic off\""
                    "spec.json says it in words"
            }

            test
                "the reference defaults: SGD 0.01 / 0.5 (CIFAR-10 0.3), batch 64, alpha 2e-3, selection 10, GP weight 2" {
                let s = d.Spec
                Expect.equal (s.Train.LearningRate, s.Train.Momentum, s.Train.Batch) (0.01, 0.5, 64) "optimiser"
                Expect.equal (Options.defaults cifar "waal" ReferencePreset).Spec.Train.Momentum 0.3 "CIFAR-10 momentum"

                Expect.equal
                    (Options.defaults cifar "random" ReferencePreset).Spec.Train.Momentum
                    0.3
                    "CIFAR-10 momentum, baselines too"

                Expect.equal (s.Method.Alpha, s.Method.Selection, s.Method.GpWeight) (2e-3, 10.0, 2.0) "method"

                Expect.equal
                    (s.Method.Imbalance, s.Method.GpSign, s.Method.CriticOutput, s.Method.Augment)
                    (Imbalance.Reference, ReferenceSign, SigmoidOutput, false)
                    "reference choices"

                let baseline = (Options.defaults fashion "entropy" ReferencePreset).Spec.Train
                Expect.equal (s.Train.Epochs, baseline.Epochs) (2, 10) "waal 2 epochs, baselines their reference 10"

                Expect.equal
                    (Options.defaults cifar "random" ReferencePreset).Spec.Train.LearningRate
                    0.05
                    "CIFAR-10 baselines' lr"
            }

            test "a spec.json written before presets (no later fields) reads back as the reference preset" {
                use doc = System.Text.Json.JsonDocument.Parse(SpecJson.toJson [] d)

                let later =
                    Options.all
                    |> List.filter (fun o -> not o.Required)
                    |> List.map (fun o -> o.JsonName)

                Expect.contains later "preset" "preset is a later field"

                let old =
                    doc.RootElement.EnumerateObject()
                    |> Seq.filter (fun p -> not (List.contains p.Name later))
                    |> Seq.map (fun p -> $"\"{p.Name}\": {p.Value.GetRawText()}")
                    |> String.concat ", "

                Expect.equal (SpecJson.ofJson profileOf ("{" + old + "}")) (Ok d) "the reference configuration"
            }

            test "the recommended preset: one floor budget for every strategy; reference is one option away" {
                let r = Options.defaults fashion "waal" RecommendedPreset
                let b = Options.defaults fashion "entropy" RecommendedPreset
                Expect.equal r.Spec.Preset RecommendedPreset "recorded"
                Expect.equal r.Spec.Train.Budget EpochsOverFloor "the floor budget"
                Expect.equal r.Spec.Train b.Spec.Train "waal and the baselines train alike"
                Expect.equal b.Spec.Pick.Mode TopK "baselines keep top-k"

                Expect.equal
                    (SpecJson.ofJson profileOf (SpecJson.toJson [] r))
                    (Ok r)
                    "the recommended configuration round-trips"

                Expect.equal
                    (Options.set "preset" "reference" r |> Result.map (fun c -> c.Spec.Preset))
                    (Ok ReferencePreset)
                    "set"
            }

            test "a spec edited into nonsense names every bad field" {
                let text =
                    (SpecJson.toJson [] d)
                        .Replace("\"gpSign\": \"reference\"", "\"gpSign\": \"sideways\"")
                        .Replace("\"epochs\": 2", "\"epochs\": \"two\"")
                        .Replace("\"seed\": 1", "\"seeds\": 1")

                match SpecJson.ofJson profileOf text with
                | Error errors ->
                    let fields = errors |> List.map (fun e -> e.Field) |> set

                    Expect.equal
                        fields
                        (set [ "gpSign"; "epochs"; "seeds"; "seed" ])
                        $"unreadable fields named: %A{errors}"
                | Ok _ -> failtest "accepted nonsense"

                match
                    SpecJson.ofJson profileOf ((SpecJson.toJson [] d).Replace("\"query\": 1000", "\"query\": -3"))
                with
                | Error [ e ] -> Expect.equal e.Field "query" "the out-of-range field"
                | other -> failtestf "expected one error for query, found %A" other

                Expect.isError (SpecJson.ofJson profileOf "not json") "not JSON"
                Expect.isError (SpecJson.ofJson profileOf "{}") "empty object"

                match SpecJson.ofJson profileOf ((SpecJson.toJson [] d).Replace("fashion-mnist", "mnist-ish")) with
                | Error [ e ] -> Expect.equal e.Field "dataset" "an unknown dataset"
                | other -> failtestf "expected one error for dataset, found %A" other
            }
        ]

/// Options.build: the read-first options pick the others' defaults; each front end brings its own fallbacks, and
/// Core names none (a new front end is a list of fallbacks, written here, outside Core).
let private build =
    test "Options.build: a front end's own fallbacks for read-first and other options, given values win" {
        let defaultsOf d s p =
            profileOf d |> Result.map (fun prof -> Options.defaults prof s p)

        let opt name = Options.tryFind name |> Option.get

        let built fallbacks given =
            Options.build defaultsOf (Options.fallbacks fallbacks) given

        let ok =
            function
            | Ok c -> c
            | Error e -> failtestf "%A" e

        // A front end that no Core file knows: a kiosk that labels Fashion-MNIST in batches of 7 with margin.
        let kiosk =
            [
                "dataset", "fashion-mnist"
                "strategy", "margin"
                "preset", "reference"
                "query", "7"
            ]

        let c = built kiosk [] |> ok
        Expect.equal c.Spec.Dataset "fashion-mnist" "its dataset fallback"
        Expect.equal c.Spec.Strategy "margin" "its strategy fallback"
        Expect.equal c.Spec.Preset ReferencePreset "its preset fallback"
        Expect.equal c.Spec.Query 7 "its own default for an option that is not read first"
        Expect.equal c.Spec.Initial 1000 "the table's default for the rest"

        Expect.equal
            (Options.get "epochs" c)
            (Options.get
                "epochs"
                (Options.defaults (profileOf "fashion-mnist" |> Result.defaultWith failwith) "margin" ReferencePreset))
            "the read-first fallbacks pick the defaults"

        let given = built kiosk [ opt "query", "5"; opt "strategy", "random" ] |> ok
        Expect.equal (given.Spec.Query, given.Spec.Strategy) (5, "random") "given values win over fallbacks"

        // An option carries no front end's name or default: every front end keeps its own.
        Expect.equal
            (Microsoft.FSharp.Reflection.FSharpType.GetRecordFields typeof<OptionDef>
             |> Array.map _.Name
             |> Set.ofArray)
            (set
                [
                    "Name"
                    "Formerly"
                    "Scope"
                    "Kind"
                    "Expected"
                    "Help"
                    "Required"
                    "Default"
                    "Get"
                    "Set"
                    "ReadFirst"
                    "FolderOnly"
                ])
            "an option's fields"

        // Without fallbacks, the read-first options must be given: each missing one is named.
        match built [] [] with
        | Error [ e ] -> Expect.equal e.Field "dataset" "the missing option is named"
        | other -> failtestf "expected one error on dataset, found %A" other

        match built [ "preset", "reference" ] [ opt "dataset", "fashion-mnist" ] with
        | Error [ e ] -> Expect.equal e.Field "strategy" "the strategy must be given without a fallback"
        | other -> failtestf "expected one error on strategy, found %A" other

        // spec.json's one fallback: a file without a preset is the reference preset.
        let fromFile =
            built [ "preset", "reference" ] [ opt "dataset", "fashion-mnist"; opt "strategy", "margin" ]
            |> ok

        Expect.equal fromFile.Spec.Preset ReferencePreset "a spec.json without preset"

        // The read-first options pick the others' defaults wherever they stand in the list; errors are all kept.
        let cli = [ "strategy", "waal"; "preset", "recommended" ]
        let late = built cli [ opt "learning-rate", "0.2"; opt "dataset", "cifar10" ] |> ok
        Expect.equal late.Spec.Dataset "cifar10" "dataset read first"
        Expect.equal (Options.get "learning-rate" late) "0.2" "the value given before it still applies"

        match built cli [ opt "dataset", "fashion-mnist"; opt "query", "0"; opt "learning-rate", "-1" ] with
        | Error errors ->
            Expect.equal (errors |> List.map (fun e -> e.Field)) [ "query"; "learning-rate" ] "every error, in order"
        | Ok _ -> failtest "expected errors"

        Expect.equal
            (Options.all
             |> List.filter (fun o -> o.FolderOnly)
             |> List.map (fun o -> o.Name)
             |> Set.ofList)
            (set
                [
                    "test-dir"
                    "image-size"
                    "channels"
                    "skip-bad-images"
                    "holdout"
                    "backbone"
                ])
            "the folder-only options"
    }

let private architectures =
    testList
        "network and critic names"
        [
            test "--network names one architecture per dataset and shape, or says why not" {
                let reference n c h w =
                    Architecture.resolve n NetworkInputs.Reference c h w

                let folder n c h w =
                    Architecture.resolve n NetworkInputs.Folder c h w

                let embeddings n d =
                    Architecture.resolve n NetworkInputs.Embeddings d 1 1

                Expect.equal (reference "auto" 1 28 28) (Ok SmallCnn) "auto, Fashion-MNIST"
                Expect.equal (reference "auto" 3 32 32) (Ok Vgg16) "auto, CIFAR-10"
                Expect.equal (reference "auto" 3 64 48) (Ok Resnet) "auto, another shape"
                // Auto picks by dataset: a folder of one's own photos at CIFAR-10's or MNIST's shape is not
                // CIFAR-10 or MNIST.
                Expect.equal (folder "auto" 3 32 32) (Ok Resnet) "auto, a folder at 32x32"
                Expect.equal (folder "auto" 1 28 28) (Ok Resnet) "auto, a grey folder at 28x28"
                Expect.equal (folder "vgg16" 3 32 32) (Ok Vgg16) "a folder may still ask for vgg16"
                Expect.equal (embeddings "auto" 512) (Ok Head) "auto, a backbone's embeddings"
                Expect.equal (embeddings "head" 320) (Ok Head) "head, a backbone's embeddings"
                Expect.equal (reference "resnet" 1 28 28) (Ok Resnet) "resnet on any shape >= 8"
                Expect.equal (reference "vgg16" 3 32 32) (Ok Vgg16) "vgg16 on its shape"

                let refused (r: Result<Architecture, string>) (why: string) =
                    match r with
                    | Error m -> Expect.stringContains m why why
                    | Ok a -> failtest $"{why}: gave {a}"

                refused (reference "small-cnn" 3 32 32) "small-cnn takes 1x28x28 images, not 3x32x32"
                refused (reference "vgg16" 1 28 28) "vgg16 takes 3x32x32 images"
                refused (reference "auto" 1 4 4) "resnet needs both sides >= 8"
                refused (folder "auto" 3 7 40) "resnet needs both sides >= 8"
                refused (reference "resnet" 3 7 40) "resnet needs both sides >= 8"
                refused (folder "head" 3 32 32) "head classifies a backbone's embeddings: give --backbone"
                refused (embeddings "resnet" 512) "are classified by the head (--network auto or head), not by 'resnet'"

                refused
                    (reference "lenet" 1 28 28)
                    "unknown network 'lenet'; expected one of auto, small-cnn, vgg16, resnet, head"
            }

            test "the option table offers exactly the registry's networks and critics" {
                let choices name =
                    match (Options.tryFind name).Value.Kind with
                    | Choice names -> names
                    | k -> failtest $"{name} is {k}"

                Expect.equal (choices "network") Architecture.choices "networks"
                Expect.equal (choices "critic") (CriticOutput.names |> List.map snd) "critics"

                for a, n in Architecture.names do
                    Expect.equal (Architecture.name a) n "name"

                for o, n in CriticOutput.names do
                    Expect.equal (CriticOutput.tryParse n) (Some o) "critic round trip"

                Expect.equal (CriticOutput.tryParse "tanh") None "an unknown critic"
            }
        ]

let all = testList "Core" [ architectures; build; spec ]
