/// AtomicFile, the one writer of files that replace others: a reader sees the old file or the new one, and a
/// failure at any point leaves the old one and nothing else.
module Waal.Data.Tests.AtomicFileTests

open System
open System.IO
open Expecto
open FsCheck
open Waal.Data

let private folder () =
    let dir =
        Path.Combine(Path.GetTempPath(), "waal-atomic-" + Guid.NewGuid().ToString "N")

    Directory.CreateDirectory dir |> ignore
    dir

/// What is in the folder besides `file`: nothing, after any write.
let private leftovers (dir: string) (file: string) =
    Directory.GetFiles dir |> Array.filter (fun f -> Path.GetFileName f <> file)

/// How a write ends: whole, refused by the writer after `at` bytes, or an exception after `at` bytes.
type private Ending =
    | Whole
    | Refused of at: int
    | Thrown of at: int

let all =
    testList
        "AtomicFile"
        [
            testPropertyWithConfig
                { FsCheckConfig.defaultConfig with
                    maxTest = 40
                }
                "a write that ends at any byte leaves the old file or the whole new one, and no temporary file"
                (fun (old: byte[]) (fresh: NonEmptyArray<byte>) (cut: PositiveInt) (how: int) ->
                    let fresh = fresh.Get
                    let at = cut.Get % fresh.Length

                    let ending =
                        match abs how % 3 with
                        | 0 -> Whole
                        | 1 -> Refused at
                        | _ -> Thrown at

                    let dir = folder ()
                    let path = Path.Combine(dir, "labels.json")
                    File.WriteAllBytes(path, old)

                    let fill (s: Stream) =
                        match ending with
                        | Whole ->
                            s.Write(fresh, 0, fresh.Length)
                            Ok()
                        | Refused n ->
                            s.Write(fresh, 0, n)
                            Error "refused"
                        | Thrown n ->
                            s.Write(fresh, 0, n)
                            raise (IOException "the disk is full")

                    let outcome =
                        try
                            AtomicFile.writeWith path fill |> Result.mapError Some
                        with :? IOException ->
                            Error None

                    let now = File.ReadAllBytes path
                    let left = leftovers dir "labels.json"
                    Directory.Delete(dir, true)

                    match ending, outcome with
                    | Whole, Ok() -> now = fresh && left.Length = 0
                    | Refused _, Error(Some "refused")
                    | Thrown _, Error None -> now = old && left.Length = 0
                    | _ -> false)

            test "createNew never overwrites, and leaves nothing behind when it refuses" {
                let dir = folder ()
                let path = Path.Combine(dir, "a.png")
                AtomicFile.createNew path [| 1uy; 2uy |]
                Expect.equal (File.ReadAllBytes path) [| 1uy; 2uy |] "written"
                Expect.throwsT<IOException> (fun () -> AtomicFile.createNew path [| 3uy |]) "refused: it exists"
                Expect.equal (File.ReadAllBytes path) [| 1uy; 2uy |] "unchanged"
                Expect.isEmpty (leftovers dir "a.png") "no temporary file"
                Directory.Delete(dir, true)
            }

            test "writeText creates the folder, writes UTF-8 without a byte-order mark, and replaces" {
                let dir = folder ()
                let path = Path.Combine(dir, "deeper", "rounds.csv")
                AtomicFile.writeText path "é,1\n"

                Expect.equal
                    (File.ReadAllBytes path)
                    [| 0xC3uy; 0xA9uy; byte ','; byte '1'; byte '\n' |]
                    "UTF-8, no BOM"

                AtomicFile.writeText path "x"
                Expect.equal (File.ReadAllText path) "x" "replaced"
                Expect.isEmpty (leftovers (Path.GetDirectoryName path) "rounds.csv") "no temporary file"
                Directory.Delete(dir, true)
            }
        ]
