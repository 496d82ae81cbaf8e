/// What a run folder or a model folder refuses, and what it never loses: a replaced experiment killed at any step
/// of its replacement, progress.json and model.json edited into values no run writes, weights cut short or
/// replaced, checkpoint/latest pointing elsewhere, exports that fail.
module Waal.Experiments.Tests.Refusals

open System
open System.IO
open System.Security.Cryptography
open Expecto
open Waal.Core
open Waal.Data
open Waal.Experiments

let private temp () =
    let dir =
        Path.Combine(Path.GetTempPath(), "waal-refusals-" + Guid.NewGuid().ToString "N")

    Directory.CreateDirectory dir |> ignore
    dir

/// Every file below a folder with its SHA-256, to show that nothing changed.
let private snapshot (dir: string) =
    if Directory.Exists dir then
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
        |> Array.sort
        |> Array.map (fun f -> Path.GetRelativePath(dir, f), Convert.ToHexString(SHA256.HashData(File.ReadAllBytes f)))
    else
        [||]

/// One small trained run (round 0 only), shared by the tests that read it; each works on a copy.
let private trained =
    lazy
        (let c = Datasets.reference "fashion-mnist" "waal" |> Result.defaultWith failwith

         let c =
             { c with
                 Settings =
                     { c.Settings with
                         DataDir = Waal.Testing.Environment.fashion
                         Threads = 2
                     }
                 Spec =
                     { c.Spec with
                         PoolSize = Some 600
                         Initial = 60
                         Query = 20
                         Rounds = 1
                         Train = { c.Spec.Train with Epochs = 1 }
                     }
             }

         let dir = temp ()

         match Runner.run c dir false Runner.quiet with
         | Ok() -> dir
         | Error e -> failwith (ExperimentError.line e))

let rec private copy (source: string) (target: string) =
    Directory.CreateDirectory target |> ignore

    for f in Directory.GetFiles source do
        File.Copy(f, Path.Combine(target, Path.GetFileName f))

    for d in Directory.GetDirectories source do
        copy d (Path.Combine(target, Path.GetFileName d))

/// A copy of the trained run to spoil.
let private runCopy () =
    let dir = Path.Combine(temp (), "run")
    copy trained.Value dir
    dir

let private weights (run: string) =
    let latest = File.ReadAllText(Path.Combine(run, "checkpoint", "latest")).Trim()
    Path.Combine(run, "checkpoint", latest)

let private modelError (code: string) (path: string) (what: string) (r: Result<'a, Model.ModelError>) =
    match r with
    | Error e ->
        let line = Model.ModelError.line e
        Expect.stringStarts line $"error {code}: {path}" $"{what}: {line}"
    | Ok _ -> failtest $"{what}: accepted"

let all =
    testSequenced
    <| testList
        "Refusals"
        [
            test
                "a replacement killed at any step leaves the old experiment whole, or the new one once it has its first files" {
                let files =
                    [ "progress.json"; "spec.json"; "dataset.json"; "rounds.csv"; "labels.json" ]

                let old = files |> List.map (fun f -> f, $"old {f}")

                let make (dir: string) (contents: (string * string) list) =
                    for f, text in contents do
                        File.WriteAllText(Path.Combine(dir, f), text)

                let read (dir: string) =
                    files
                    |> List.choose (fun f ->
                        let p = Path.Combine(dir, f)
                        if File.Exists p then Some(f, File.ReadAllText p) else None)

                // Where a kill can fall: before a first move, after each move, after the marker, after each first
                // file of the new experiment (spec.json, dataset.json, then progress.json: its set-up is whole).
                let moved = ({ Folder = "" }: RunFolder.Layout).ExperimentFiles.Length
                let newFiles = [ "spec.json"; "dataset.json"; "progress.json" ]
                let steps = [ 0 .. moved + 1 + newFiles.Length ]
                let mutable newStayed = 0

                for killedAt in steps do
                    let dir = temp ()
                    let layout: RunFolder.Layout = { Folder = dir }
                    make dir old

                    Directory.CreateDirectory(Path.Combine(dir, "checkpoint", "round-000"))
                    |> ignore

                    File.WriteAllText(Path.Combine(dir, "checkpoint", "latest"), "round-000")

                    // The replacement, done step by step as RunFolder.setAside and the runner do it.
                    let moves = layout.ExperimentFiles
                    Directory.CreateDirectory layout.Replaced |> ignore

                    for i, f in List.indexed moves do
                        if i < killedAt then
                            if File.Exists f then
                                File.Move(f, Path.Combine(layout.Replaced, Path.GetFileName f))
                            elif Directory.Exists f then
                                Directory.Move(f, Path.Combine(layout.Replaced, Path.GetFileName f))

                    let afterMoves = killedAt - moves.Length

                    if afterMoves >= 1 then
                        File.WriteAllText(Path.Combine(layout.Replaced, "whole"), "")

                    for f in newFiles |> List.truncate (max 0 (afterMoves - 1)) do
                        File.WriteAllText(Path.Combine(dir, f), $"new {f}")

                    RunFolder.recoverReplaced layout
                    Expect.isFalse (Directory.Exists layout.Replaced) $"killed at {killedAt}: nothing left aside"

                    if afterMoves - 1 >= newFiles.Length then
                        newStayed <- newStayed + 1

                        Expect.equal
                            (read dir |> List.filter (fun (f, _) -> List.contains f newFiles))
                            (newFiles
                             |> List.map (fun f -> f, $"new {f}")
                             |> List.sortBy (fun (f, _) -> List.findIndex ((=) f) files))
                            $"killed at {killedAt}: the new experiment stays"
                    else
                        Expect.equal (read dir) old $"killed at {killedAt}: the old experiment is back, whole"

                        Expect.isTrue
                            (File.Exists(Path.Combine(dir, "checkpoint", "latest")))
                            $"killed at {killedAt}: with its checkpoint"

                    Directory.Delete(dir, true)

                Expect.equal newStayed 1 "one kill point falls after the new experiment's set-up"
            }

            test "progress.json values no run writes are refused by resume, naming the field" {
                let dir = runCopy ()
                let path = Path.Combine(dir, "progress.json")
                let good = File.ReadAllText path

                let refused (edit: string -> string) (field: string) =
                    let edited = edit good
                    Expect.notEqual edited good $"the edit for {field} changes the file"
                    File.WriteAllText(path, edited)

                    match Runner.resume dir Runner.quiet with
                    | Error(NotAnExperiment(p, detail) as e) ->
                        Expect.equal p path "the file is named"
                        Expect.stringContains detail field $"the field is named: {ExperimentError.line e}"
                    | other -> failtestf "expected EXP005 for %s, found %A" field other

                let replace (pattern: string) (by: string) (t: string) =
                    Text.RegularExpressions.Regex(pattern).Replace(t, by, 1)

                refused (replace "\"testAccuracy\":[0-9.eE-]+" "\"testAccuracy\":5.0") "records[0].testAccuracy"
                refused (replace "\"testAccuracy\":[0-9.eE-]+" "\"testAccuracy\":1e999") "testAccuracy"
                refused (replace "\"trainSeconds\":[0-9.eE-]+" "\"trainSeconds\":-3") "records[0].trainSeconds"
                refused (replace "\"evalSeconds\":[0-9.eE-]+" "\"evalSeconds\":1e999") "evalSeconds"
                refused (replace "\"trainIterations\":[0-9]+" "\"trainIterations\":-1") "records[0].trainIterations"
                refused (replace "\"stopPredictions\":\\[[0-9]+," "\"stopPredictions\":[") "stopPredictions"
                refused (replace "\"stopPredictions\":\\[[0-9]+" "\"stopPredictions\":[77") "stopPredictions"
                File.WriteAllText(path, good)

                Runner.resume dir Runner.quiet
                |> Result.mapError ExperimentError.line
                |> Expect.isOk
                <| "the file as written resumes"
            }

            test
                "weights cut short, replaced or listed wrongly, and checkpoint/latest pointing elsewhere: refused, nothing exported" {
                let out = Path.Combine(temp (), "model")

                let spoilt (what: string) (spoil: string -> unit) (path: string -> string) =
                    let run = runCopy ()
                    spoil run
                    modelError "MODEL001" (path run) $"export of {what}" (ModelExport.export run out)
                    modelError "MODEL001" (path run) $"load of {what}" (Model.load run)
                    Expect.isFalse (Directory.Exists out) $"{what}: nothing written"

                    Expect.isEmpty
                        (Directory.GetFileSystemEntries(Path.GetDirectoryName out))
                        $"{what}: no staging left"

                let features run =
                    Path.Combine(weights run, "features.dat")

                let cut (f: string) =
                    let bytes = File.ReadAllBytes f
                    File.WriteAllBytes(f, bytes[.. bytes.Length / 2])

                let noise (f: string) =
                    File.WriteAllBytes(f, RandomNumberGenerator.GetBytes(int (FileInfo(f).Length)))

                let unlisted run =
                    File.Delete(Path.Combine(weights run, "weights.sha256"))

                spoilt "weights cut in half" (features >> cut) features
                spoilt "weights replaced by noise of the same size" (features >> noise) features

                spoilt
                    "weights cut, no manifest"
                    (fun run ->
                        cut (features run)
                        unlisted run)
                    features

                spoilt
                    "weights of noise, no manifest"
                    (fun run ->
                        noise (features run)
                        unlisted run)
                    features

                spoilt
                    "a manifest that lists another sum"
                    (fun run ->
                        let m = Path.Combine(weights run, "weights.sha256")
                        File.WriteAllText(m, (File.ReadAllText m).Replace("  features.dat", "  other.dat")))
                    features

                for target in [ "../../../tmp"; "/etc"; "round-000/../../.." ] do
                    spoilt
                        $"latest -> {target}"
                        (fun run -> File.WriteAllText(Path.Combine(run, "checkpoint", "latest"), target))
                        (fun run -> Path.Combine(run, "checkpoint", "latest"))
            }

            test "an export is whole or absent: it replaces an earlier export, never a folder of other files" {
                let run = runCopy ()
                let root = temp ()
                let out = Path.Combine(root, "model")

                ModelExport.export run out
                |> Result.mapError Model.ModelError.line
                |> Expect.isOk
                <| "first export"

                let first = snapshot out

                Expect.equal
                    (first |> Array.map fst)
                    [|
                        "classifier.dat"
                        "critic.dat"
                        "features.dat"
                        "model.json"
                        "weights.sha256"
                    |]
                    "the model's files"

                ModelExport.export run out
                |> Result.mapError Model.ModelError.line
                |> Expect.isOk
                <| "again, over it"

                Expect.equal (snapshot out) first "the same model"
                Expect.equal (Directory.GetFileSystemEntries root).Length 1 "nothing left beside it"

                let other = Path.Combine(root, "other")
                Directory.CreateDirectory other |> ignore
                File.WriteAllText(Path.Combine(other, "notes.txt"), "mine")
                modelError "MODEL002" other "export over a folder of other files" (ModelExport.export run other)
                Expect.equal (snapshot other |> Array.map fst) [| "notes.txt" |] "left as it was"

                // model.json edited: a deviation of 0 (every probability would be NaN), a mean JSON cannot hold, one
                // class name twice.
                let json = Path.Combine(out, "model.json")
                let good = File.ReadAllText json

                let replace (pattern: string) (by: string) =
                    Text.RegularExpressions.Regex(pattern).Replace(good, by, 1)

                for edit, field in
                    [
                        replace "\"std\": \\[\\s*[0-9.eE-]+" "\"std\": [ 0", "normalisation.std"
                        replace "\"mean\": \\[\\s*[0-9.eE-]+" "\"mean\": [ 1e999", "normalisation.mean"
                        replace "\"Trouser\"" "\"T-shirt/top\"", "classNames"
                    ] do
                    File.WriteAllText(json, edit)

                    match Model.load out with
                    | Error(Model.NotAModel(p, detail)) ->
                        Expect.equal p json "model.json is named"
                        Expect.stringStarts detail field $"the field is named: {detail}"
                    | Error e -> failtest (Model.ModelError.line e)
                    | Ok m ->
                        (m :> IDisposable).Dispose()
                        failtest $"{field}: loaded"

                File.WriteAllText(json, good)
            }
        ]
