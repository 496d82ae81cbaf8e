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

/// The class names of `--classes`: a comma-separated list, or a file with one name per line.
let private classNames (given: string) : Result<string[], string> =
    let names (xs: string seq) =
        xs
        |> Seq.map (fun s -> s.Trim())
        |> Seq.filter (fun s -> s <> "")
        |> Array.ofSeq

    if File.Exists given then
        Ok(names (File.ReadAllLines given))
    else
        Ok(names (given.Split ','))
    |> Result.bind (fun classes ->
        if classes.Length < 2 then
            Error $"error CLI001: --classes: at least 2 class names are needed, found {classes.Length} in '{given}'"
        elif (Array.distinct classes).Length <> classes.Length then
            Error $"error CLI001: --classes: the names must differ, found '{given}'"
        else
            Ok classes)

/// The option tokens with `--dataset images=DIR` (or folder=DIR) read: the source and the tokens for the option
/// table (a folder of images is read like a class folder's options; its classes come from --classes). Without
/// --initial and --query a person labels batches of 20.
let private tokensOf (tokens: string list) (classes: string option) : Result<Desk.Source * string list, string> =
    let rec find (rest: string list) =
        match rest with
        | "--dataset" :: v :: _ -> Some v
        | _ :: more -> find more
        | [] -> None

    let rewrite (value: string) =
        tokens
        |> List.mapi (fun i t -> if i > 0 && tokens[i - 1] = "--dataset" then value else t)

    let defaults =
        [
            if not (List.contains "--initial" tokens) then
                yield! [ "--initial"; "20" ]
            if not (List.contains "--query" tokens) then
                yield! [ "--query"; "20" ]
        ]

    match find tokens with
    | None -> Error "error EXP001: --dataset: missing; expected images=DIR (with --classes) or folder=DIR"
    | Some v when v.StartsWith "images=" ->
        match classes with
        | None -> Error "error CLI001: --classes: missing; --dataset images=DIR needs the class names (a,b,c or a file)"
        | Some c ->
            classNames c
            |> Result.map (fun names ->
                Desk.Images names, defaults @ rewrite ("folder=" + v.Substring "images=".Length))
    | Some v when v.StartsWith "folder=" ->
        match classes with
        | Some _ -> Error "error CLI001: --classes: a class-folder dataset names its classes by its folders"
        | None -> Ok(Desk.ClassFolders, defaults @ tokens)
    | Some v -> Error $"error EXP001: --dataset: 'waal label' reads images=DIR or folder=DIR, found '{v}'"

/// `waal label`: opens the session, serves the page until Ctrl+C or SIGTERM.
let label (out: TextWriter) (err: TextWriter) (args: ParseResults<LabelArgs>) =
    let folder = args.GetResult LabelArgs.Out
    let resuming = File.Exists(Path.Combine(folder, "label.json"))

    let spec = Path.Combine(folder, "spec.json")

    let prepared =
        if resuming && File.Exists spec then
            // A session reopens with what it was started with; no option is needed again.
            Desk.readSession folder
            |> Result.map (fun (config, source) -> source, config)
            |> Result.mapError Desk.message
        else
            tokensOf (args.GetResults LabelArgs.Option_Text) (args.TryGetResult LabelArgs.Classes)
            |> Result.bind (fun (source, tokens) ->
                Experiment.configOf tokens |> Result.map (fun config -> source, config))

    match prepared with
    | Error line ->
        err.WriteLine line
        2
    | Ok(source, config) ->
        let binding: Server.Binding =
            {
                Host = args.GetResult(LabelArgs.Host, "127.0.0.1")
                Port = args.GetResult(LabelArgs.Port, 0)
            }

        match Net.IPAddress.TryParse binding.Host with
        | false, _ ->
            err.WriteLine $"error CLI001: --host: expected an IP address such as 127.0.0.1, found '{binding.Host}'"
            2
        | _ ->
            out.WriteLine $"reading the images of {config.Settings.DataDir}"

            match Desk.openDesk folder config source (args.TryGetResult LabelArgs.Known_Labels) with
            | Error e ->
                err.WriteLine(Desk.message e)
                2
            | Ok(desk, folderLock, notes) ->
                use _ = folderLock
                use desk = desk

                for n in notes do
                    out.WriteLine n

                match
                    (try
                        Ok((Server.start desk binding).GetAwaiter().GetResult())
                     with :? IOException as e ->
                         Error e.Message)
                with
                | Error why ->
                    err.WriteLine
                        $"error LABEL009: --host {binding.Host} --port {binding.Port}: cannot listen there: {why}"

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
        err.WriteLine
            "error CLI001: waal labels: nothing to do; give --csv, --folders, --label-studio or --import-label-studio"

        2
    else
        match Desk.openOffline folder with
        | Error e ->
            err.WriteLine(Desk.message e)
            2
        | Ok o ->
            use _ = o
            // An import changes the batch the exports after it read.
            let current = ref o

            let steps =
                [
                    match args.TryGetResult LabelsArgs.Import_Label_Studio with
                    | Some file ->
                        fun () ->
                            let text =
                                try
                                    Ok(File.ReadAllText file)
                                with :? IOException as e ->
                                    Error e.Message

                            text
                            |> Result.bind (Exports.ofLabelStudio o.Pool.ClassNames)
                            |> Result.bind (Desk.importInto current.Value)
                            |> Result.map (fun (next, n) ->
                                current.Value <- next
                                $"imported {n} labels from {file} into the batch being labelled")
                            |> Result.mapError (fun m -> $"error LABEL007: {file}: {m}")
                    | None -> ()
                    match args.TryGetResult LabelsArgs.Csv with
                    | Some file ->
                        fun () ->
                            let o = current.Value
                            Results.writeTextAtomic file (Exports.labelsCsv o.Pool o.Labels)
                            Ok $"{o.Labels.Length} labels: {file}"
                    | None -> ()
                    match args.TryGetResult LabelsArgs.Folders with
                    | Some dir ->
                        fun () ->
                            let o = current.Value
                            let n = Exports.classFolders o.Root o.Pool o.Labels dir
                            Ok $"{n} images copied into class folders under {dir}"
                    | None -> ()
                    match args.TryGetResult LabelsArgs.Label_Studio with
                    | Some file ->
                        fun () ->
                            let o = current.Value

                            match o.Batch with
                            | None -> Error $"error LABEL008: {folder}: no batch is being labelled"
                            | Some b ->
                                let root = Uri(Path.GetFullPath o.Root + "/")

                                Results.writeTextAtomic
                                    file
                                    (Exports.labelStudioTasks o.Pool b None $"waal round {b.Round}" (fun i ->
                                        Uri(root, o.Pool.Files[i]).AbsoluteUri))

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
