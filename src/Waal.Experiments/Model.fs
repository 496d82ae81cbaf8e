/// The model after the run: `export` writes a run's last networks with everything needed to use them (network,
/// image shape and preparation, normalisation, class names, versions) into a folder; `load` opens such a folder
/// (or a run folder directly); `predict` gives class probabilities for image files or encoded bytes.
module Waal.Experiments.Model

open System
open System.IO
open System.Text
open System.Text.Json
open TorchSharp
open Waal.Core
open Waal.Data
open Waal.Learning

/// What a model is: enough to rebuild its networks and prepare an image for them.
type ModelInfo =
    {
        /// The registry's network name, resolved (small-cnn, vgg16, resnet).
        Network: string
        Channels: int
        Height: int
        Width: int
        /// The folder dataset's --image-size (0: images are used at their stored size, which must be H x W).
        ImageSize: int
        ClassNames: string[]
        Normalisation: Normalisation
        CriticOutput: CriticOutput
        /// Where it came from: the dataset, the run folder, the round, its test accuracy (a fraction; NaN unknown).
        Dataset: string
        Run: string
        Round: int
        TestAccuracy: float
        Versions: (string * string) list
        /// With a backbone: the network (head) classifies its embeddings of the prepared images; its file is a
        /// name inside a model folder, a path for a run folder.
        Backbone: Backbone.Recorded option
    }

    member m.Classes = m.ClassNames.Length

    /// The networks' input shape: the images', or the backbone's D x 1 x 1 embeddings.
    member m.InputShape =
        match m.Backbone with
        | Some b -> b.Dim, 1, 1
        | None -> m.Channels, m.Height, m.Width

/// Why a model could not be exported, loaded or used.
type ModelError =
    /// Not a run folder with a trained round, nor a model folder.
    | [<Code "MODEL001">] NotAModel of path: string * detail: string
    /// Writing the model failed.
    | [<Code "MODEL002">] ExportFailed of path: string * detail: string
    /// An image could not be read (the data error's own code).
    | BadImage of DataError

/// Codes and one-line messages.
module ModelError =
    let private codeOf = ErrorCodes.reader<ModelError>()

    let code (e: ModelError) =
        match e with
        | BadImage d -> DataError.code d
        | _ -> (codeOf e).Value

    let line (e: ModelError) =
        match e with
        | NotAModel(path, detail)
        | ExportFailed(path, detail) -> $"error {code e}: {path}: {detail}"
        | BadImage d -> DataError.line d

let private floatsOf (e: JsonElement) =
    e.EnumerateArray() |> Seq.map (fun v -> v.GetDouble()) |> Array.ofSeq

let private stringsOf (e: JsonElement) =
    e.EnumerateArray() |> Seq.map (fun v -> v.GetString()) |> Array.ofSeq

let private normalisationOf (e: JsonElement) =
    {
        Mean = floatsOf (e.GetProperty "mean")
        Std = floatsOf (e.GetProperty "std")
    }

/// model.json's format name (a reader refuses others).
let format = "waal-model/1"

/// model.json: the model's description, indented.
let internal toJson (m: ModelInfo) =
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
        w.WriteStartObject()
        w.WriteString("format", format)
        w.WriteString("network", m.Network)
        w.WriteNumber("channels", m.Channels)
        w.WriteNumber("height", m.Height)
        w.WriteNumber("width", m.Width)
        w.WriteNumber("imageSize", m.ImageSize)
        w.WriteStartArray "classNames"

        for c in m.ClassNames do
            w.WriteStringValue c

        w.WriteEndArray()
        w.WriteStartObject "normalisation"
        w.WriteStartArray "mean"

        for v in m.Normalisation.Mean do
            w.WriteNumberValue v

        w.WriteEndArray()
        w.WriteStartArray "std"

        for v in m.Normalisation.Std do
            w.WriteNumberValue v

        w.WriteEndArray()
        w.WriteEndObject()
        w.WriteString("critic", CriticOutput.name m.CriticOutput)
        w.WriteString("dataset", m.Dataset)
        w.WriteString("run", m.Run)
        w.WriteNumber("round", m.Round)
        // Unknown (a round whose record is still pending, a session without test data): null.
        if Double.IsFinite m.TestAccuracy then
            w.WriteNumber("testAccuracy", m.TestAccuracy)
        else
            w.WriteNull "testAccuracy"

        w.WriteStartObject "versions"

        for name, v in m.Versions do
            w.WriteString(name, v)

        w.WriteEndObject()

        match m.Backbone with
        | None -> w.WriteNull "backbone"
        | Some b ->
            w.WritePropertyName "backbone"
            Backbone.writeRecorded w b

        w.WriteEndObject()

    stream.ToArray()

/// A description read back from model.json or a run's dataset.json, checked before it is used: the normalisation
/// (one positive, finite deviation per channel: a deviation of 0 would make every probability NaN), at least two
/// distinct class names (a model's names are labels of its outputs, never paths: Fashion-MNIST's "T-shirt/top"
/// is one), the network for the shape.
let private validated (path: string) (info: ModelInfo) : Result<ModelInfo, ModelError> =
    let norm = info.Normalisation

    if norm.Mean.Length <> info.Channels || norm.Std.Length <> info.Channels then
        Error(NotAModel(path, $"normalisation: expected {info.Channels} values per list"))
    elif not (Array.forall Double.IsFinite norm.Mean) then
        Error(NotAModel(path, $"""normalisation.mean: expected finite numbers, found {String.Join(", ", norm.Mean)}"""))
    elif not (norm.Std |> Array.forall (fun v -> Double.IsFinite v && v > 0.0)) then
        Error(
            NotAModel(path, $"""normalisation.std: expected finite numbers > 0, found {String.Join(", ", norm.Std)}""")
        )
    elif info.ImageSize < 0 then
        Error(NotAModel(path, $"imageSize: expected 0 or a size in pixels, found {info.ImageSize}"))
    elif
        info.ClassNames.Length < 2
        || (Array.distinct info.ClassNames).Length < info.ClassNames.Length
    then
        Error(NotAModel(path, "classNames: expected at least 2 distinct class names"))
    else
        // model.json names its network (never "auto"), so the inputs only tell the head from the others.
        let inputs =
            if info.Network = Architecture.name Head then
                NetworkInputs.Embeddings
            else
                NetworkInputs.Reference

        let c, h, w = info.InputShape

        match Architecture.resolve info.Network inputs c h w with
        | Ok Head when info.Backbone.IsNone -> Error(NotAModel(path, "network: head needs a backbone"))
        | Ok a when a <> Head && info.Backbone.IsSome ->
            Error(NotAModel(path, $"network: a model with a backbone is a head, not {Architecture.name a}"))
        | Error m -> Error(NotAModel(path, $"network: {m}"))
        | Ok _ -> Ok info

/// Reads model.json; a missing or mistyped field is named.
let internal ofJson (path: string) (text: string) : Result<ModelInfo, ModelError> =
    try
        use doc = JsonDocument.Parse text
        let r = doc.RootElement
        let get (name: string) = r.GetProperty name


        match get("format").GetString() with
        | f when f <> format -> Error(NotAModel(path, $"format: expected {format}, found '{f}'"))
        | _ ->
            let critic = get("critic").GetString()

            match CriticOutput.tryParse critic with
            | None ->
                let known = String.Join(", ", CriticOutput.names |> List.map snd)
                Error(NotAModel(path, $"critic: expected one of {known}, found '{critic}'"))
            | Some output ->
                let info =
                    {
                        Network = get("network").GetString()
                        Channels = get("channels").GetInt32()
                        Height = get("height").GetInt32()
                        Width = get("width").GetInt32()
                        ImageSize = get("imageSize").GetInt32()
                        ClassNames = stringsOf (get "classNames")
                        Normalisation = normalisationOf (get "normalisation")
                        CriticOutput = output
                        Dataset = get("dataset").GetString()
                        Run = get("run").GetString()
                        Round = get("round").GetInt32()
                        TestAccuracy =
                            match get "testAccuracy" with
                            | a when a.ValueKind = JsonValueKind.Null -> Double.NaN
                            | a -> a.GetDouble()
                        Versions =
                            get("versions").EnumerateObject()
                            |> Seq.map (fun p -> p.Name, p.Value.GetString())
                            |> List.ofSeq
                        Backbone = None
                    }

                // Models exported before backbones have no "backbone" field.
                match r.TryGetProperty "backbone" with
                | true, b when b.ValueKind = JsonValueKind.Object ->
                    match Backbone.readRecorded b with
                    | Error detail -> Error(NotAModel(path, detail))
                    | Ok recorded when recorded.File <> Path.GetFileName recorded.File || recorded.File.StartsWith "." ->
                        Error(
                            NotAModel(
                                path,
                                $"backbone.file: expected a file name inside the model folder, found '{recorded.File}'"
                            )
                        )
                    | Ok recorded -> validated path { info with Backbone = Some recorded }
                | _ -> validated path info
    with
    | :? JsonException as e -> Error(NotAModel(path, $"not valid JSON ({e.Message})"))
    | :? Collections.Generic.KeyNotFoundException as e -> Error(NotAModel(path, $"a field is missing ({e.Message})"))
    | :? InvalidOperationException as e -> Error(NotAModel(path, $"a field has the wrong type ({e.Message})"))
    | :? FormatException as e -> Error(NotAModel(path, $"a number is out of range ({e.Message})"))

let internal notAModel (e: DataError) =
    NotAModel(DataError.file e, DataError.message e)

/// The round folder that checkpoint/latest names, and its round: the name must be a round folder of the same
/// checkpoint (round-NNN), never a path that leads elsewhere.
let internal latestRound (layout: RunFolder.Layout) : Result<string * int, ModelError> =
    let latest = Path.Combine(layout.Checkpoint, "latest")

    Files.readText "checkpoint/latest" Files.Limits.shortTextBytes latest
    |> Result.mapError notAModel
    |> Result.bind (fun text ->
        let name = text.Trim()
        let digits = if name.StartsWith "round-" then name.Substring 6 else ""

        if digits.Length >= 3 && digits.Length <= 9 && Seq.forall Char.IsAsciiDigit digits then
            Ok(Path.Combine(layout.Checkpoint, name), int digits)
        else
            let shown =
                ClassNames.shown (
                    if name.Length > 80 then
                        name.Substring(0, 80) + "..."
                    else
                        name
                )

            Error(NotAModel(latest, $"expected the name of a round folder beside it (round-NNN), found {shown}")))

/// The description of a run folder's last trained networks and the folder holding their weights.
let internal ofRun (run: string) : Result<ModelInfo * string, ModelError> =
    let layout = { RunFolder.Layout.Folder = run }
    let latest = Path.Combine(layout.Checkpoint, "latest")

    let document (path: string) =
        Files.readText (Path.GetFileName path) Files.Limits.documentBytes path

    // dataset.json's shape and normalisation, with the spec and the round: the model's description.
    let described (config: Configuration) (round: int) (weights: string) (datasetText: string) =
        try
            use doc = JsonDocument.Parse datasetText
            let d = doc.RootElement

            let channels, height, width =
                d.GetProperty("channels").GetInt32(),
                d.GetProperty("height").GetInt32(),
                d.GetProperty("width").GetInt32()

            let accuracy =
                match
                    (if File.Exists layout.Rounds then
                         RunCsv.readRoundsCsv layout.Rounds
                     else
                         Error "no rounds.csv")
                with
                | Ok rows ->
                    rows
                    |> List.tryFind (fun r -> r.Round = round)
                    |> Option.map (fun r -> r.TestAccuracy)
                    |> Option.defaultValue Double.NaN
                | Error _ -> Double.NaN

            let versions = RunFolder.readVersions layout

            let inputs =
                match Datasets.find config.Spec.Dataset with
                | Ok entry when entry.IsFolder -> NetworkInputs.Folder
                | _ -> NetworkInputs.Reference

            // With a backbone: what the run recorded about it, and its preparation (the image size).
            let backbone =
                if config.Spec.Backbone = "" then
                    Ok None
                else
                    RunFolder.readBackbone layout
                    |> Result.mapError NotAModel
                    |> Result.bind (fun r ->
                        Backbone.readPreprocessing r.File
                        |> Result.mapError (fun e -> NotAModel(e.File, e.Detail))
                        |> Result.map (fun p -> Some(r, p)))

            let resolved =
                match backbone with
                | Ok(Some(r, _)) -> Architecture.resolve config.Spec.Network NetworkInputs.Embeddings r.Dim 1 1
                | _ -> Architecture.resolve config.Spec.Network inputs channels height width

            match backbone, resolved with
            | Error e, _ -> Error e
            | _, Error m -> Error(NotAModel(layout.Spec, $"network: {m}"))
            | Ok backbone, Ok network ->
                validated
                    layout.Dataset
                    {
                        Network = Architecture.name network
                        Channels = channels
                        Height = height
                        Width = width
                        ImageSize =
                            match backbone with
                            | Some(_, p) -> p.Resize
                            | None -> config.Spec.Images.Size
                        ClassNames = stringsOf (d.GetProperty "classNames")
                        Normalisation = normalisationOf (d.GetProperty "normalisation")
                        CriticOutput = config.Spec.Method.CriticOutput
                        Dataset = config.Spec.Dataset
                        Run = Path.GetFullPath run
                        Round = round
                        TestAccuracy = accuracy
                        Versions = versions
                        Backbone = backbone |> Option.map fst
                    }
                |> Result.map (fun info -> info, weights)
        with
        | :? JsonException as e -> Error(NotAModel(layout.Dataset, $"not valid JSON ({e.Message})"))
        | :? Collections.Generic.KeyNotFoundException as e ->
            Error(NotAModel(layout.Dataset, $"a field is missing ({e.Message})"))
        | :? InvalidOperationException as e ->
            Error(NotAModel(layout.Dataset, $"a field has the wrong type ({e.Message})"))
        | :? FormatException as e -> Error(NotAModel(layout.Dataset, $"a number is out of range ({e.Message})"))

    if not (File.Exists layout.Spec) then
        Error(NotAModel(run, "neither a model folder (model.json) nor a run folder (spec.json)"))
    elif not (File.Exists latest) then
        Error(NotAModel(run, "the run has no trained round yet (no checkpoint/latest)"))
    elif not (File.Exists layout.Dataset) then
        Error(
            NotAModel(
                layout.Dataset,
                "missing: the run was made by a version without dataset.json; resume or run it again"
            )
        )
    else
        result {
            let! config =
                RunFolder.readSpecResolved layout
                |> Result.mapError (fun detail -> NotAModel(layout.Spec, detail))

            let! weights, round = latestRound layout
            let! datasetText = document layout.Dataset |> Result.mapError notAModel
            return! described config round weights datasetText
        }

/// The description and weight folder of a model folder or a run folder.
let private locate (dir: string) : Result<ModelInfo * string, ModelError> =
    let modelJson = Path.Combine(dir, "model.json")

    if not (Directory.Exists dir) then
        Error(NotAModel(dir, "no such folder"))
    elif File.Exists modelJson then
        Files.readText "model.json" Files.Limits.documentBytes modelJson
        |> Result.mapError notAModel
        |> Result.bind (ofJson modelJson)
        |> Result.map (fun info -> info, dir)
    else
        ofRun dir

/// A loaded model: its description and networks (in eval mode, on the CPU). Dispose it.
type Loaded =
    {
        Info: ModelInfo
        Networks: Nets.Networks
        /// The backbone the networks classify the embeddings of (loaded, its hash checked).
        Backbone: Backbone.Backbone option
    }

    interface IDisposable with
        member m.Dispose() =
            (m.Networks :> IDisposable).Dispose()
            m.Backbone |> Option.iter (fun b -> (b :> IDisposable).Dispose())

/// The networks a description names, with the weights of `weights` loaded and checked (Checkpoint.load: each a
/// regular file, its sum as listed, of the network's shape, every weight finite), in eval mode.
let internal networks (info: ModelInfo) (weights: string) : Result<Nets.Networks, ModelError> =
    let c, h, w = info.InputShape

    let nets =
        Nets.createNamed info.Network torch.CPU c h w info.Classes info.CriticOutput

    match Checkpoint.load weights nets with
    | Ok() ->
        nets.Train false
        Ok nets
    | Error(file, why) ->
        (nets :> IDisposable).Dispose()
        Error(NotAModel(file, why))

/// Where a model's backbone is: a name inside a model folder, a path in a run.
let internal backboneFile (dir: string) (r: Backbone.Recorded) =
    if Path.IsPathRooted r.File then
        r.File
    else
        Path.Combine(dir, r.File)

/// A model's backbone, loaded on the CPU, if it is the one the model was trained on (the same SHA-256 of the
/// file and its preparation); a missing or changed one is refused by name.
let internal loadBackbone (dir: string) (r: Backbone.Recorded) : Result<Backbone.Backbone, ModelError> =
    let file = backboneFile dir r

    if not (File.Exists file) then
        Error(
            NotAModel(
                file,
                $"the model's backbone is missing: expected the file whose SHA-256 (with its preparation) is {r.Hash}"
            )
        )
    else
        match Backbone.load torch.CPU file with
        | Error e -> Error(NotAModel(e.File, e.Detail))
        | Ok b when b.Hash <> r.Hash || b.Dim <> r.Dim ->
            (b :> IDisposable).Dispose()

            Error(
                NotAModel(
                    file,
                    $"not the backbone the model was trained on: its SHA-256 (with its preparation) is {b.Hash}, expected {r.Hash}"
                )
            )
        | Ok b -> Ok b

/// Opens a model folder or a run folder's last trained networks (and its backbone, if it has one).
let load (dir: string) : Result<Loaded, ModelError> =
    locate dir
    |> Result.bind (fun (info, weights) ->
        match info.Backbone with
        | None -> Ok None
        | Some r -> loadBackbone dir r |> Result.map Some
        |> Result.bind (fun backbone ->
            match networks info weights with
            | Ok nets ->
                Ok
                    {
                        Info = info
                        Networks = nets
                        Backbone = backbone
                    }
            | Error e ->
                backbone |> Option.iter (fun b -> (b :> IDisposable).Dispose())
                Error e))

/// The files the model of a model or run folder is read from: what no command may write over.
let inputsOf (dir: string) : string list =
    let layout = { RunFolder.Layout.Folder = dir }

    match locate dir with
    | Ok(_, weights) ->
        [
            Path.Combine(dir, "model.json")
            layout.Spec
            layout.Dataset
            layout.Rounds
            Path.Combine(layout.Checkpoint, "latest")
        ]
        @ [ for f in Checkpoint.manifest :: Checkpoint.files -> Path.Combine(weights, f) ]
        @ [
            layout.Backbone
            Path.Combine(dir, "backbone.pt")
            Path.Combine(dir, "backbone.json")
        ]
    | Error _ -> []

/// One image's prediction.
type Prediction =
    {
        /// The most probable class.
        Class: int
        /// Softmax probabilities, one per class.
        Probabilities: float32[]
        /// p(best) - p(second).
        Margin: float
        /// -sum p log p (nats).
        Entropy: float
    }

/// Predictions for images already prepared as `Channels` x H x W bytes each, in one tensor batch of at most
/// `batch` images at a time.
let predictPrepared (model: Loaded) (images: byte[][]) (batch: int) : Prediction[] =
    let info = model.Info
    let size = info.Channels * info.Height * info.Width
    let all = Array.zeroCreate<byte>(images.Length * size)
    images |> Array.iteri (fun i b -> Array.blit b 0 all (i * size) size)

    let data =
        Dataset.create "images" all (Array.zeroCreate images.Length) info.Channels info.Height info.Width info.Classes
        |> Result.defaultWith (fun e -> failwith (DataError.line e))

    use tensors =
        match model.Backbone, info.Backbone with
        | Some b, Some r ->
            let embedded =
                Backbone.embedInMemory b data
                |> Result.defaultWith (fun d -> failwith $"{b.File}: {d}")

            Tensors.ofResidentEmbeddings torch.CPU r.Normalisation embedded info.Classes
        | _ -> Tensors.ofDataset torch.CPU info.Normalisation data

    let p =
        Scoring.probabilities model.Networks tensors (Array.init images.Length id) batch ProgressSink.none

    let k = info.Classes
    // The first of the largest in each row (as the evaluation's argmax).
    let classes, _ = Stopping.summarise k p

    Array.init images.Length (fun i ->
        let row = p[i * k .. i * k + k - 1]
        let sorted = row |> Array.map float |> Array.sortDescending

        {
            Class = classes[i]
            Probabilities = row
            Margin = if k > 1 then sorted[0] - sorted[1] else 1.0
            Entropy = -(row |> Array.sumBy (fun v -> if v > 0.0f then float v * log (float v) else 0.0))
        })

/// The image files of `paths` (files, or folders searched recursively, hidden entries skipped), in the order
/// given, each folder's files in ordinal order; (display name, full path).
let internal imageFiles (paths: string list) : Result<(string * string) list, ModelError> =
    let rec expand (path: string) =
        if File.Exists path then
            Ok [ path, Path.GetFullPath path ]
        elif Directory.Exists path then
            let root = Path.GetFullPath path

            try
                match
                    Directory.GetFiles(root, "*", SearchOption.AllDirectories)
                    |> Array.filter (fun f ->
                        Path.GetRelativePath(root, f).Split(Path.DirectorySeparatorChar)
                        |> Array.forall (fun part -> not (part.StartsWith ".")))
                    |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))
                    |> Array.map (fun f -> Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'), f)
                    |> List.ofArray
                with
                | [] -> Error(BadImage(NoImages(path, Folder.formats)))
                | files -> Ok files
            with
            | :? IOException as e -> Error(BadImage(Unreadable(path, e.Message)))
            | :? UnauthorizedAccessException as e -> Error(BadImage(Unreadable(path, e.Message)))
        else
            Error(BadImage(Missing path))

    paths
    |> List.fold (fun acc p -> acc |> Result.bind (fun xs -> expand p |> Result.map (fun ys -> xs @ ys))) (Ok [])

/// Prepares image files for a model, as its training images were (decode, resize/crop, channels).
let prepare (info: ModelInfo) (file: string) =
    Folder.imageFile info.ImageSize info.Channels info.Height info.Width file

/// Prepares encoded image bytes for a model.
let prepareBytes (info: ModelInfo) (name: string) (bytes: byte[]) =
    Folder.imageBytes info.ImageSize info.Channels info.Height info.Width name bytes

let private number (v: float) =
    v.ToString("R", Globalization.CultureInfo.InvariantCulture)

/// predictions.csv: `path,class,probability`, one column per class's probability (named by the class), then
/// margin and entropy; one row per image, in order.
let predictionsCsv (info: ModelInfo) (rows: (string * Prediction) list) =
    let sb = StringBuilder()
    sb.Append("path,class,probability") |> ignore

    for c in info.ClassNames do
        sb.Append(',').Append(Csv.text c) |> ignore

    sb.Append(",margin,entropy\n") |> ignore

    for name, p in rows do
        sb
            .Append(Csv.text name)
            .Append(',')
            .Append(Csv.text info.ClassNames[p.Class])
            .Append(',')
            .Append(number (float p.Probabilities[p.Class]))
        |> ignore

        for v in p.Probabilities do
            sb.Append(',').Append(number (float v)) |> ignore

        sb.Append(',').Append(number p.Margin).Append(',').Append(number p.Entropy).Append('\n')
        |> ignore

    sb.ToString()

/// Predicts every image of `paths` (files or folders) with the model in `dir` (a model or a run folder);
/// with `skipBad`, files that cannot be decoded are left out and returned with their errors.
let predictFiles (dir: string) (paths: string list) (skipBad: bool) (batch: int) =
    load dir
    |> Result.bind (fun model ->
        use model = model

        imageFiles paths
        |> Result.bind (fun files ->
            let prepared = files |> List.map (fun (name, full) -> name, prepare model.Info full)

            match
                prepared
                |> List.tryPick (fun (_, r) ->
                    match r with
                    | Error e -> Some e
                    | Ok _ -> None)
            with
            | Some e when not skipBad -> Error(BadImage e)
            | _ ->
                let good =
                    prepared
                    |> List.choose (fun (name, r) ->
                        match r with
                        | Ok b -> Some(name, b)
                        | Error _ -> None)

                let skipped =
                    prepared
                    |> List.choose (fun (_, r) ->
                        match r with
                        | Error e -> Some e
                        | Ok _ -> None)

                let predictions = predictPrepared model (good |> List.map snd |> Array.ofList) batch
                Ok(model.Info, List.zip (good |> List.map fst) (List.ofArray predictions), skipped)))
