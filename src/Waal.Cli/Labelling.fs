/// `waal label` (the labelling page) and `waal labels` (exports and imports of a labelling session).
module Waal.Cli.Labelling

open System
open System.IO
open System.Runtime.InteropServices
open System.Threading
open Argu
open Waal.Cli.Args
open Waal.Core
open Waal.Data
open Waal.Experiments
open Waal.Label

/// The class names of `--classes`: a comma-separated list, or a file with one name per line (a regular file of at
/// most Files.Limits.shortTextBytes); each is checked where it enters (ClassNames.check).
let private classNames (given: string) : Result<string[], string> =
    let names (xs: string seq) =
        xs
        |> Seq.map (fun s -> s.Trim())
        |> Seq.filter (fun s -> s <> "")
        |> Array.ofSeq

    match Files.kind given with
    | Ok Files.Absent -> Ok(names (given.Split ','))
    | _ ->
        Files.readLines "a file of class names" Files.Limits.shortTextBytes given
        |> Result.map names
        |> Result.mapError (fun e -> CliError.usage "--classes" $"{DataError.file e}: {DataError.message e}")
    |> Result.bind (fun classes ->
        ClassNames.check classes
        |> Result.mapError (fun m -> CliError.usage "--classes" $"{m} (in '{given}')"))

/// The option tokens with `--dataset images=DIR` (or folder=DIR) read: the source and the tokens for the option
/// table (a folder of images is read like a class folder's options; its classes come from --classes).
/// The labelling page's fallbacks: the command line's, and a person labels in small batches (20 to start with,
/// then 20 a round) unless --initial or --query says otherwise.
let fallbacks = CommandLine.fallbacks @ [ "initial", "20"; "query", "20" ]

let private tokensOf
    (tokens: string list)
    (classes: string option)
    : Result<SessionFolder.Source * string list, string> =
    let rec find (rest: string list) =
        match rest with
        | "--dataset" :: v :: _ -> Some v
        | _ :: more -> find more
        | [] -> None

    let rewrite (value: string) =
        tokens
        |> List.mapi (fun i t -> if i > 0 && tokens[i - 1] = "--dataset" then value else t)

    match find tokens with
    | None -> Error "error EXP001: --dataset: missing; expected images=DIR (with --classes) or folder=DIR"
    | Some v when v.StartsWith "images=" ->
        match classes with
        | None ->
            Error(CliError.usage "--classes" "missing; --dataset images=DIR needs the class names (a,b,c or a file)")
        | Some c ->
            classNames c
            |> Result.map (fun names -> SessionFolder.Images names, rewrite ("folder=" + v.Substring "images=".Length))
    | Some v when v.StartsWith "folder=" ->
        match classes with
        | Some _ -> Error(CliError.usage "--classes" "a class-folder dataset names its classes by its folders")
        | None -> Ok(SessionFolder.ClassFolders, tokens)
    | Some v -> Error $"error EXP001: --dataset: 'waal label' reads images=DIR or folder=DIR, found '{v}'"

/// The address `--host` and `--port` name, checked before anything is created: an IP address, a port in
/// 0..65535, and one this machine can listen on (a socket is bound there and closed again).
let private bindingOf (args: ParseResults<LabelArgs>) : Result<Server.Binding * Net.IPAddress, string> =
    let host = args.GetResult(LabelArgs.Host, "127.0.0.1")
    let port = args.GetResult(LabelArgs.Port, 0)

    match Net.IPAddress.TryParse host with
    | false, _ -> Error(CliError.usage "--host" $"expected an IP address such as 127.0.0.1, found '{host}'")
    | _ when port < 0 || port > 65535 -> Error(CliError.usage "--port" $"expected an integer in 0..65535, found {port}")
    | true, address ->
        try
            use socket =
                new Net.Sockets.Socket(
                    address.AddressFamily,
                    Net.Sockets.SocketType.Stream,
                    Net.Sockets.ProtocolType.Tcp
                )

            socket.Bind(Net.IPEndPoint(address, port))
            Ok({ Host = host; Port = port }, address)
        with :? Net.Sockets.SocketException as e ->
            Error $"error LABEL009: --host {host} --port {port}: cannot listen there: {e.Message}"

/// `waal label`: opens the session, serves the page until Ctrl+C or SIGTERM. Every option is checked before the
/// session folder is created.
let label (out: TextWriter) (err: TextWriter) (args: ParseResults<LabelArgs>) =
    let folder = args.GetResult LabelArgs.Out
    let resuming = File.Exists(Path.Combine(folder, "label.json"))

    let spec = Path.Combine(folder, "spec.json")

    let prepared =
        bindingOf args
        |> Result.bind (fun binding ->
            if resuming && File.Exists spec then
                // A session reopens with what it was started with; no option is needed again.
                SessionFolder.readSession folder
                |> Result.map (fun (config, source) -> source, config)
                |> Result.mapError LabelError.message
            else
                tokensOf (args.GetResults LabelArgs.Option_Text) (args.TryGetResult LabelArgs.Classes)
                |> Result.bind (fun (source, tokens) ->
                    CommandLine.ofCommandLineFor fallbacks tokens
                    |> Result.map (fun config -> source, config))
            |> Result.bind (fun (source, config) ->
                // The session never writes into the images it reads.
                Outputs.refuse
                    "--out"
                    folder
                    [
                        "the images' folder", config.Settings.DataDir
                        "the test folder", config.Settings.TestDir
                    ]
                |> Result.map (fun () -> source, config, binding)))

    match prepared with
    | Error line ->
        err.WriteLine line
        2
    | Ok(source, config, (binding, address)) ->
        if not (Net.IPAddress.IsLoopback address) then
            err.WriteLine
                $"warning LABEL011: --host {binding.Host}: the page is open to other machines; only the token (in the address printed below) guards it, and the Host-header check against DNS rebinding applies to loopback addresses only"

        out.WriteLine $"reading the images of {config.Settings.DataDir}"

        match Desk.openDesk folder config source (args.TryGetResult LabelArgs.Known_Labels) with
        | Error e ->
            err.WriteLine(LabelError.message e)
            2
        | Ok(desk, folderLock, notes) ->
            use _ = folderLock
            use desk = desk

            for n in notes do
                out.WriteLine n

            match
                (try
                    Ok((Server.start desk binding).GetAwaiter().GetResult())
                 with e ->
                     Error e.Message)
            with
            | Error why ->
                err.WriteLine $"error LABEL009: --host {binding.Host} --port {binding.Port}: cannot listen there: {why}"

                2
            | Ok running ->
                use stop = new ManualResetEventSlim(false)

                let onSignal (ctx: PosixSignalContext) =
                    ctx.Cancel <- true
                    stop.Set()

                use _ = PosixSignalRegistration.Create(PosixSignal.SIGINT, onSignal)
                use _ = PosixSignalRegistration.Create(PosixSignal.SIGTERM, onSignal)
                out.WriteLine $"session: {Path.GetFullPath folder}"
                out.WriteLine $"open: {running.Url}"
                out.WriteLine "every label is saved as it is given; Ctrl+C stops (labels are kept)"
                out.Flush()
                stop.Wait()
                running.Stop().GetAwaiter().GetResult()
                out.WriteLine "stopped; run the same command again to go on"
                0

/// `waal labels`: exports and imports while no server runs.
let labels (out: TextWriter) (err: TextWriter) (args: ParseResults<LabelsArgs>) =
    let folder = args.GetResult LabelsArgs.Session

    if
        not (
            args.Contains LabelsArgs.Csv
            || args.Contains LabelsArgs.Folders
            || args.Contains LabelsArgs.Label_Studio
            || args.Contains LabelsArgs.Import_Label_Studio
        )
    then
        err.WriteLine(
            CliError.usage "waal labels" "nothing to do; give --csv, --folders, --label-studio or --import-label-studio"
        )

        2
    else
        match Offline.openOffline folder with
        | Error e ->
            err.WriteLine(LabelError.message e)
            2
        | Ok o ->
            use _ = o

            // No export writes into the session or the images it reads, nor over the file being imported.
            let inputs =
                [
                    "the session", o.Files.Folder
                    "the session's images", o.Root
                    match args.TryGetResult LabelsArgs.Import_Label_Studio with
                    | Some f -> "--import-label-studio", f
                    | None -> ()
                ]

            let outputs =
                [
                    "--csv", args.TryGetResult LabelsArgs.Csv
                    "--folders", args.TryGetResult LabelsArgs.Folders
                    "--label-studio", args.TryGetResult LabelsArgs.Label_Studio
                ]
                |> List.choose (fun (name, path) -> path |> Option.map (fun p -> name, p))

            match
                outputs
                |> List.tryPick (fun (name, path) ->
                    match Outputs.refuse name path inputs with
                    | Error line -> Some line
                    | Ok() -> None)
            with
            | Some line ->
                err.WriteLine line
                2
            | None ->

                // An import changes the batch the exports after it read.
                let current = ref o

                let steps =
                    [
                        match args.TryGetResult LabelsArgs.Import_Label_Studio with
                        | Some file ->
                            fun () ->
                                Files.readText "a Label Studio export" Files.Limits.documentBytes file
                                |> Result.mapError DataError.message
                                |> Result.bind (Exports.ofLabelStudio o.PoolImages.ClassNames)
                                |> Result.bind (Offline.importInto current.Value)
                                |> Result.map (fun (next, n) ->
                                    current.Value <- next
                                    $"imported {n} labels from {file} into the batch being labelled")
                                |> Result.mapError (fun m -> $"error LABEL007: {file}: {m}")
                        | None -> ()
                        match args.TryGetResult LabelsArgs.Csv with
                        | Some file ->
                            fun () ->
                                let o = current.Value
                                AtomicFile.writeText file (Exports.labelsCsv o.PoolImages o.Labels)
                                Ok $"{o.Labels.Length} labels: {file}"
                        | None -> ()
                        match args.TryGetResult LabelsArgs.Folders with
                        | Some dir ->
                            fun () ->
                                let o = current.Value

                                Exports.classFolders o.Root o.PoolImages o.Labels dir
                                |> Result.map (fun e ->
                                    let already =
                                        if e.AlreadyThere > 0 then
                                            $" ({e.AlreadyThere} already there)"
                                        else
                                            ""

                                    $"{e.Copied} images copied into class folders under {dir}{already}")
                                |> Result.mapError (fun m -> $"error LABEL010: {m}")
                        | None -> ()
                        match args.TryGetResult LabelsArgs.Label_Studio with
                        | Some file ->
                            fun () ->
                                let o = current.Value

                                match o.Batch with
                                | None -> Error $"error LABEL008: {folder}: no batch is being labelled"
                                | Some b ->
                                    AtomicFile.writeText
                                        file
                                        (Exports.labelStudioTasks o.PoolImages b None $"waal round {b.Round}" (fun i ->
                                            Exports.fileUri o.Root o.PoolImages.Files[i]))

                                    Ok $"{b.Indices.Length} tasks: {file}"
                        | None -> ()
                    ]

                let rec go (steps: (unit -> Result<string, string>) list) =
                    match steps with
                    | [] -> 0
                    | step :: more ->
                        match step () with
                        | Ok line ->
                            out.WriteLine line
                            go more
                        | Error line ->
                            err.WriteLine line
                            2

                go steps
