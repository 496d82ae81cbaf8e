namespace Waal.Core

open System

/// The feature extractors of the network registry (Waal.Learning.Nets builds them).
type Architecture =
    /// The reference's small CNN for 1x28x28 images.
    | SmallCnn
    /// VGG16 with batch norm for 3x32x32 images.
    | Vgg16
    /// A residual network for any shape with both sides >= 8.
    | Resnet

/// The one list of network and critic names: the option table's choices, spec.json, model.json and the
/// network registry all read them from here.
module Architecture =
    /// Each architecture with its name.
    let names = [ SmallCnn, "small-cnn"; Vgg16, "vgg16"; Resnet, "resnet" ]

    /// The name of an architecture.
    let name (a: Architecture) =
        names |> List.find (fun (x, _) -> x = a) |> snd

    /// The names `--network` accepts: "auto" (chosen by shape), then each architecture's.
    let choices = "auto" :: List.map snd names

    /// Which architecture a `--network` name means for images of `channels` x `height` x `width`, or why none.
    /// "auto": 1x28x28 small-cnn, 3x32x32 vgg16, any other shape resnet.
    let resolve (network: string) (channels: int) (height: int) (width: int) : Result<Architecture, string> =
        let shape = $"{channels}x{height}x{width}"
        let auto = network = "auto" || network = ""

        match List.tryFind (fun (_, n) -> n = network) names |> Option.map fst, channels, height, width with
        | Some SmallCnn, 1, 28, 28 -> Ok SmallCnn
        | None, 1, 28, 28 when auto -> Ok SmallCnn
        | Some Vgg16, 3, 32, 32 -> Ok Vgg16
        | None, 3, 32, 32 when auto -> Ok Vgg16
        | Some SmallCnn, _, _, _ -> Error $"small-cnn takes 1x28x28 images, not {shape}"
        | Some Vgg16, _, _, _ -> Error $"vgg16 takes 3x32x32 images, not {shape}"
        | Some Resnet, _, h, w
        | None, _, h, w when (auto || network = "resnet") && h >= 8 && w >= 8 -> Ok Resnet
        | Some Resnet, _, _, _ ->
            Error $"no network for {shape} images: resnet needs both sides >= 8 (give --image-size)"
        | None, _, _, _ when auto ->
            Error $"no network for {shape} images: resnet needs both sides >= 8 (give --image-size)"
        | None, _, _, _ ->
            let known = String.Join(", ", choices)
            Error $"unknown network '{network}'; expected one of {known}"

/// The critic's last activation by name.
[<CompilationRepresentation(CompilationRepresentationFlags.ModuleSuffix)>]
module CriticOutput =
    /// Each output with its name.
    let names = [ SigmoidOutput, "sigmoid"; LinearOutput, "linear" ]

    /// The name of an output.
    let name (o: CriticOutput) =
        names |> List.find (fun (x, _) -> x = o) |> snd

    /// The output of a name, if it is one.
    let tryParse (text: string) =
        names |> List.tryFind (fun (_, n) -> n = text) |> Option.map fst
