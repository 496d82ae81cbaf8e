/// Only regular files are read, and never past a stated cap: every kind of special file (links to devices,
/// FIFOs, sockets, link loops, a 1 GiB file, a decompression bomb) tried on every reader of this layer.
module Waal.Data.Tests.Bounded

open System
open System.IO
open Expecto
open Waal.Data
open Waal.Testing.SpecialFiles

let private temp () =
    let dir =
        Path.Combine(Path.GetTempPath(), "waal-bounded-" + Guid.NewGuid().ToString "N")

    Directory.CreateDirectory dir |> ignore
    dir

let private sample =
    lazy
        (let train, _ =
            Load.fashionMnist Waal.Testing.Environment.fashion
            |> Result.defaultWith (fun e -> failwith (DataError.line e))

         Dataset.take 200 train)

/// Expects a typed error among `codes` that names `path`.
let private refused (codes: string list) (path: string) (what: string) (r: Result<'a, DataError>) =
    match r with
    | Error e ->
        Expect.contains codes (DataError.code e) $"{what}: {DataError.line e}"
        Expect.equal (DataError.file e) path $"{what}: names the file"
    | Ok _ -> failtest $"{what}: accepted"

let all =
    testSequenced
    <| testList
        "Bounded reads"
        [
            test
                "a special file among a folder's images is refused by name; with skip-bad-images it is left out and listed" {
                for kind in all |> List.filter ((<>) LinkLoop) do
                    let dir = temp ()

                    try
                        Waal.Testing.ImageFolders.write
                            Waal.Testing.ImageFolders.GreyPng
                            sample.Value
                            [| "a"; "b" |]
                            3
                            dir
                        |> ignore

                        let bad = Path.Combine(dir, "a", "hostile.png")
                        make kind bad

                        let read options =
                            within 30.0 $"%A{kind}" (fun () -> Folder.read options None dir)

                        refused (codes kind) bad $"%A{kind}" (read Folder.defaultOptions)

                        match
                            read
                                { Folder.defaultOptions with
                                    SkipBad = true
                                }
                        with
                        | Ok r ->
                            Expect.equal r.Data.Count 6 $"%A{kind}: the six images"
                            Expect.equal (r.Skipped |> List.map DataError.file) [ bad ] $"%A{kind}: listed as skipped"
                        | Error e -> failtest $"%A{kind} with skip-bad-images: {DataError.line e}"

                        // A folder of unlabelled images reads its files the same way.
                        refused
                            (codes kind)
                            bad
                            $"%A{kind} (images)"
                            (within 30.0 $"%A{kind}" (fun () ->
                                Folder.readImages Folder.defaultOptions [| "a"; "b" |] dir))
                    finally
                        Directory.Delete(dir, true)
            }

            test "every reader of one file refuses every special file by name, in bounded time" {
                let dir = temp ()

                try
                    for kind in all do
                        let path = Path.Combine(dir, $"%A{kind}.png".ToLowerInvariant())
                        make kind path
                        let expected = codes kind

                        // The decoders read only the header of a bomb; the dataset readers read its 97 KB like any
                        // file, and a 1 GiB file is under their 4 GiB cap: they read its header and refuse it.
                        let asFile =
                            match kind with
                            | Bomb -> [ "DATA005" ]
                            | Huge -> [ "DATA005"; "DATA006"; "DATA010"; "DATA011" ]
                            | _ -> expected

                        let check what (codes: string list) (f: unit -> Result<'a, DataError>) =
                            refused codes path $"{what} %A{kind}" (within 30.0 $"{what} %A{kind}" f)

                        check "an image to predict" expected (fun () -> Folder.imageFile 0 1 28 28 path)
                        check "an IDX file" asFile (fun () -> Idx.readImages path)
                        check "a CIFAR-10 batch" (asFile @ [ "DATA006" ]) (fun () -> Cifar10.readFile path)
                        check "an SVHN file" (asFile @ [ "DATA011"; "DATA006" ]) (fun () -> SvhnMat.read path)

                        if kind <> Bomb then
                            check "a document" expected (fun () ->
                                Files.readText "a document" Files.Limits.documentBytes path)
                finally
                    Directory.Delete(dir, true)
            }

            test "a read never goes past its cap, and the message names the size and the cap" {
                let dir = temp ()

                try
                    let path = Path.Combine(dir, "x.json")
                    File.WriteAllBytes(path, Array.create 1001 (byte 'a'))
                    Expect.isOk (Files.readBytes "a test file" 1001L path) "at the cap"

                    match Files.readBytes "a test file" 1000L path with
                    | Error(TooLarge(file, what, size, limit) as e) ->
                        Expect.equal (file, what) (path, "a test file") "names the file and what it was read as"
                        Expect.equal size "1,001 bytes" "the size"
                        Expect.equal limit "1,000 bytes" "the cap"
                        Expect.equal (DataError.code e) "DATA015" "its code"
                    | other -> failtest $"expected TooLarge, found %A{other}"

                    // A cap in whole mebibytes reads as such.
                    Expect.equal (Files.limitText Files.Limits.imageBytes) "256 MiB" "the image cap in words"
                finally
                    Directory.Delete(dir, true)
            }

            test "an output is inside an input when it is, or lies below it, however the path is spelt or linked" {
                let dir = temp ()

                try
                    let data = Path.Combine(dir, "data")
                    Directory.CreateDirectory(Path.Combine(data, "a")) |> ignore
                    let link = Path.Combine(dir, "link")
                    Directory.CreateSymbolicLink(link, data) |> ignore
                    let inputs = [ data ]

                    for output, expected in
                        [
                            data, Some data
                            Path.Combine(data, "a", "new", "file.csv"), Some data
                            Path.Combine(dir, "other", "..", "data", "x"), Some data
                            Path.Combine(link, "a", "x.csv"), Some data
                            data + "-other", None
                            Path.Combine(dir, "elsewhere.csv"), None
                            dir, None
                        ] do
                        Expect.equal (Files.inside output inputs) expected output
                finally
                    Directory.Delete(dir, true)
            }
        ]
