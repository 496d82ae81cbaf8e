/// The command line as a hostile but realistic user tries it: a value that cannot be recorded with --force over a
/// finished run, every numeric option of every command out of range, every writing command pointed at its own
/// inputs, special files among the images of every command that reads images. Each gets a typed error in bounded
/// time, and nothing already written changes.
module Waal.Cli.Tests.Hostile

open System
open System.IO
open System.Security.Cryptography
open Argu
open Expecto
open Microsoft.FSharp.Reflection
open Waal.Cli.Args
open Waal.Testing.SpecialFiles

let private waal = Waal.Cli.Tests.InProcess.waal

/// Every file below the folders with its SHA-256: what must not change when a command is refused.
let private snapshot (folders: string list) =
    [
        for dir in folders do
            if Directory.Exists dir then
                for f in Directory.GetFiles(dir, "*", SearchOption.AllDirectories) |> Array.sort do
                    f, Convert.ToHexString(SHA256.HashData(File.ReadAllBytes f))
    ]

/// A refused command: exit code 2 (or 1), one `error CODE: ...` line starting as expected, nothing changed.
let private refused (expected: string) (watched: string list) (args: string list) =
    let before = snapshot watched
    let code, _, err = within 60.0 (String.Join(" ", args)) (fun () -> waal args)
    Expect.isTrue (code = 2 || code = 1) $"exit code for %A{args}: {code} %A{err}"
    let errors = err |> Array.filter (fun l -> l.StartsWith "error ")
    Expect.equal errors.Length 1 $"one error line for %A{args}: %A{err}"
    Expect.stringStarts errors[0] expected $"%A{args}"
    Expect.isFalse (errors[0].StartsWith "error CLI002") "a typed error, not the catch-all"
    Expect.equal (snapshot watched) before $"nothing changed by %A{args}"

/// A small folder dataset, a finished run on it and its export, made once.
type private Fixture =
    {
        Root: string
        Data: string
        Run: string
        Model: string
    }

let private fixture =
    lazy
        (let root =
            Path.Combine(Path.GetTempPath(), "waal-cli-hostile-" + Guid.NewGuid().ToString "N")

         let data = Path.Combine(root, "photos")

         Waal.Testing.ImageFolders.writeFashion
             Waal.Testing.Environment.fashion
             Waal.Testing.ImageFolders.GreyPng
             [| "top"; "trouser" |]
             8
             data
         |> ignore

         let run = Path.Combine(root, "run")
         let model = Path.Combine(root, "model")

         let code, _, err =
             waal
                 [
                     "run"
                     "--dataset"
                     $"folder={data}"
                     "--initial"
                     "4"
                     "--query"
                     "4"
                     "--rounds"
                     "1"
                     "--epochs"
                     "1"
                     "--floor"
                     "8"
                     "--threads"
                     "2"
                     "--out"
                     run
                 ]

         if code <> 0 then
             failwith $"the fixture's run: %A{err}"

         let code, _, err = waal [ "export"; run; "--out"; model ]

         if code <> 0 then
             failwith $"the fixture's export: %A{err}"

         {
             Root = root
             Data = data
             Run = run
             Model = model
         })

/// The numeric options of the command-line grammar (command path, option), found by reflection: a new one must
/// be read through the option table (or a stated range) and appear in the test below.
let private numericOptions () =
    let rec walk (path: string list) (t: Type) =
        [
            for case in FSharpType.GetUnionCases t do
                for field in case.GetFields() do
                    let ft = field.PropertyType

                    if ft.IsGenericType && ft.GetGenericTypeDefinition() = typedefof<ParseResults<_>> then
                        yield! walk (path @ [ case.Name ]) (ft.GetGenericArguments()[0])
                    elif ft = typeof<int> || ft = typeof<int64> || ft = typeof<float> then
                        String.Join(" ", path), case.Name
        ]

    walk [] typeof<WaalArgs> |> List.distinct |> List.sort

let all =
    testSequenced
    <| testList
        "A hostile user"
        [
            test "--force with a value that cannot be recorded (infinity, 1e400) loses nothing of the finished run" {
                let f = fixture.Value

                for bad in [ "infinity"; "1e400"; "-Infinity"; "NaN" ] do
                    refused
                        "error EXP001: --beta: expected a number >= 0, found"
                        [ f.Run ]
                        [
                            "run"
                            "--dataset"
                            $"folder={f.Data}"
                            "--beta"
                            bad
                            "--out"
                            f.Run
                            "--force"
                        ]

                // Every real-number option of the table, on the same folder.
                for o in Waal.Core.Options.all |> List.filter (fun o -> o.Kind = Waal.Core.Number) do
                    refused
                        $"error EXP001: --{o.Name}: "
                        [ f.Run ]
                        [
                            "run"
                            "--dataset"
                            $"folder={f.Data}"
                            $"--{o.Name}"
                            "1e400"
                            "--out"
                            f.Run
                            "--force"
                        ]
            }

            test "every numeric option of every command is read through the option table or a stated range" {
                let f = fixture.Value
                let out = Path.Combine(f.Root, "never")
                let csv = Path.Combine(f.Root, "never.csv")

                let tried =
                    [
                        ("Predict", "Threads"),
                        [
                            for v in [ "-1"; "100000" ] ->
                                [ "predict"; f.Model; "--images"; f.Data; "--out"; csv; "--threads"; v ]
                        ],
                        "error EXP001: --threads: "
                        ("Predict", "Score_Batch"),
                        [
                            for v in [ "0"; "-5" ] ->
                                [ "predict"; f.Model; "--images"; f.Data; "--out"; csv; "--batch"; v ]
                        ],
                        "error EXP001: --score-batch: "
                        ("Label", "Port"),
                        [
                            for v in [ "70000"; "-1" ] ->
                                [
                                    "label"
                                    "--dataset"
                                    $"images={f.Data}"
                                    "--classes"
                                    "a,b"
                                    "--out"
                                    out
                                    "--port"
                                    v
                                ]
                        ],
                        "error CLI001: --port: "
                        ("Query", "Slurm"),
                        [
                            for v in [ "0"; "10001" ] ->
                                [ "query"; f.Root; "--slurm"; v; "--out"; Path.Combine(f.Root, "never.json") ]
                        ],
                        "error CLI001: --slurm: "
                        ("Query", "Cpus"),
                        [
                            for v in [ "0"; "5000" ] ->
                                [
                                    "query"
                                    f.Root
                                    "--slurm"
                                    "2"
                                    "--cpus"
                                    v
                                    "--out"
                                    Path.Combine(f.Root, "never.json")
                                ]
                        ],
                        "error CLI001: --cpus: "
                        ("Query", "Gpus"),
                        [
                            for v in [ "0"; "-1" ] ->
                                [
                                    "query"
                                    f.Root
                                    "--slurm"
                                    "2"
                                    "--gpus"
                                    v
                                    "--out"
                                    Path.Combine(f.Root, "never.json")
                                ]
                        ],
                        "error CLI001: --gpus: "
                    ]

                Expect.equal
                    (tried |> List.map (fun (o, _, _) -> o) |> List.sort)
                    (numericOptions () |> List.map (fun (c, o) -> c, o))
                    "every numeric option of the grammar is tried here"

                for _, commands, expected in tried do
                    for args in commands do
                        refused expected [ f.Root ] args

                Expect.isFalse (Directory.Exists out) "no session folder was created"

                // The options every experiment command takes from the table: out of range on run and on label.
                for name, bad in [ "threads", "100000"; "score-batch", "0"; "stop-set", "0"; "candidates", "-1" ] do
                    refused
                        $"error EXP001: --{name}: "
                        [ f.Root ]
                        [ "run"; "--dataset"; $"folder={f.Data}"; $"--{name}"; bad; "--out"; out ]

                    refused
                        $"error EXP001: --{name}: "
                        [ f.Root ]
                        [
                            "label"
                            "--dataset"
                            $"images={f.Data}"
                            "--classes"
                            "a,b"
                            $"--{name}"
                            bad
                            "--out"
                            out
                        ]
            }

            test "every command that writes is refused an output on what it reads, and nothing changes" {
                let f = fixture.Value
                let image = Directory.GetFiles(Path.Combine(f.Data, "top"))[0]
                let watched = [ f.Data; f.Run; f.Model ]

                let cases =
                    [
                        // A run or a labelling session never writes into the images it reads.
                        "error CLI004: --out: ", [ "run"; "--dataset"; $"folder={f.Data}"; "--out"; f.Data ]
                        "error CLI004: --out: ",
                        [
                            "run"
                            "--dataset"
                            $"folder={f.Data}"
                            "--out"
                            Path.Combine(f.Data, "top", "run")
                        ]
                        "error CLI004: --out: ",
                        [
                            "label"
                            "--dataset"
                            $"images={f.Data}"
                            "--classes"
                            "a,b"
                            "--out"
                            Path.Combine(f.Data, "session")
                        ]
                        // Predictions never land on the model or on an image.
                        "error CLI004: --out: ",
                        [
                            "predict"
                            f.Model
                            "--images"
                            f.Data
                            "--out"
                            Path.Combine(f.Model, "model.json")
                        ]
                        "error CLI004: --out: ",
                        [
                            "predict"
                            f.Model
                            "--images"
                            f.Data
                            "--out"
                            Path.Combine(f.Model, "features.dat")
                        ]
                        "error CLI004: --out: ", [ "predict"; f.Model; "--images"; f.Data; "--out"; image ]
                        "error CLI004: --out: ",
                        [
                            "predict"
                            f.Run
                            "--images"
                            image
                            "--out"
                            Path.Combine(f.Run, "spec.json")
                        ]
                        "error MODEL002: --out: ", [ "predict"; f.Model; "--images"; image; "--out"; f.Root ]
                        // An export never writes into the run it reads, nor over a folder of other files.
                        "error MODEL002: ", [ "export"; f.Run; "--out"; f.Run ]
                        "error CLI004: --out: ", [ "export"; f.Run; "--out"; Path.Combine(f.Run, "checkpoint", "m") ]
                        "error MODEL002: ", [ "export"; f.Run; "--out"; f.Data ]
                        // A report needs a folder.
                        "error EXP008: --out: ", [ "report"; f.Run; "--out"; image ]
                        // A query's batch and shard files never land in the run, nor on a shard it merges.
                        "error CLI004: --out: ", [ "query"; f.Run; "--out"; Path.Combine(f.Run, "spec.json") ]
                        "error CLI004: --out: ",
                        [ "query"; f.Run; "--shard"; "0/2"; "--out"; Path.Combine(f.Run, "s.bin") ]
                        "error CLI004: --out: ", [ "query"; f.Run; "--merge"; image; "--out"; image ]
                    ]

                for expected, args in cases do
                    refused expected watched args
            }

            test
                "special files among the images: every command that reads images answers with a typed error in bounded time" {
                let f = fixture.Value

                for kind in all do
                    let bad = Path.Combine(f.Data, "top", $"%A{kind}.png".ToLowerInvariant())
                    make kind bad

                    try
                        let codes = codes kind |> List.map (fun c -> $"error {c}: ")
                        let out = Path.Combine(f.Root, "never")

                        let check (args: string list) =
                            let code, _, err = within 60.0 $"%A{kind}: %A{args}" (fun () -> waal args)
                            Expect.equal code 2 $"%A{kind}: %A{args}: %A{err}"

                            Expect.isTrue
                                (codes
                                 |> List.exists (fun c -> err[0].StartsWith(c + bad) || err[0].StartsWith c))
                                $"%A{kind}: %A{args}: %A{err}"

                        check [ "run"; "--dataset"; $"folder={f.Data}"; "--out"; out ]
                        check [ "label"; "--dataset"; $"images={f.Data}"; "--classes"; "a,b"; "--out"; out ]
                        check [ "label"; "--dataset"; $"folder={f.Data}"; "--out"; out ]

                        check
                            [
                                "predict"
                                f.Model
                                "--images"
                                f.Data
                                "--out"
                                Path.Combine(f.Root, "p.csv")
                            ]

                        check [ "predict"; f.Model; "--images"; bad; "--out"; Path.Combine(f.Root, "p.csv") ]
                        Expect.isFalse (Directory.Exists out) $"%A{kind}: nothing created"

                        // Left out and listed, when asked.
                        let code, lines, err =
                            within 60.0 $"%A{kind} skipped" (fun () ->
                                waal
                                    [
                                        "predict"
                                        f.Model
                                        "--images"
                                        f.Data
                                        "--out"
                                        Path.Combine(f.Root, "p.csv")
                                        "--skip-bad-images"
                                    ])

                        Expect.equal code 0 $"%A{kind} skipped: %A{err}"
                        Expect.stringContains lines[0] "(16 images, 1 skipped)" $"%A{kind}"
                    finally
                        if File.Exists bad || Directory.Exists bad || (FileInfo bad).LinkTarget <> null then
                            File.Delete bad
            }

            test "bad addresses, an empty folder, a file for a folder: typed errors, and no session folder is created" {
                let f = fixture.Value
                let session = Path.Combine(f.Root, "session")

                let images =
                    [
                        "label"
                        "--dataset"
                        $"images={f.Data}"
                        "--classes"
                        "a,b"
                        "--out"
                        session
                    ]

                refused
                    "error CLI001: --port: expected an integer in 0..65535, found 70000"
                    [ f.Root ]
                    (images @ [ "--port"; "70000" ])

                refused
                    "error LABEL009: --host 8.8.8.8 --port 0: cannot listen there"
                    [ f.Root ]
                    (images @ [ "--host"; "8.8.8.8" ])

                refused "error CLI001: --host: expected an IP address" [ f.Root ] (images @ [ "--host"; "example.org" ])
                Expect.isFalse (Directory.Exists session) "no session folder"

                refused
                    "error LABEL012: /proc/waal-session: the session folder cannot be created"
                    [ f.Root ]
                    [
                        "label"
                        "--dataset"
                        $"images={f.Data}"
                        "--classes"
                        "a,b"
                        "--out"
                        "/proc/waal-session"
                    ]

                refused
                    "error CLI001: --classes: class name '../../../escaped' holds a path separator"
                    [ f.Root ]
                    [
                        "label"
                        "--dataset"
                        $"images={f.Data}"
                        "--classes"
                        "../../../escaped,/absolute/elsewhere"
                        "--out"
                        session
                    ]

                let empty = Path.Combine(f.Root, "empty")
                Directory.CreateDirectory empty |> ignore

                refused
                    "error DATA012: "
                    [ f.Root ]
                    [
                        "predict"
                        f.Model
                        "--images"
                        empty
                        "--out"
                        Path.Combine(f.Root, "p.csv")
                    ]

                // Listening on every interface: said on stderr before anything else happens.
                let code, _, err =
                    waal
                        [
                            "label"
                            "--dataset"
                            $"images={empty}"
                            "--classes"
                            "a,b"
                            "--out"
                            session
                            "--host"
                            "0.0.0.0"
                        ]

                Expect.equal code 2 "the empty folder is refused"

                Expect.stringStarts
                    err[0]
                    "warning LABEL011: --host 0.0.0.0: the page is open to other machines"
                    "the warning"

                Expect.stringStarts err[1] "error DATA012: " "then the error"
            }
        ]
