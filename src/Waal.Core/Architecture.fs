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
    /// No feature extractor: the classifier h (and WAAL's critic) on a pretrained backbone's embeddings, which
    /// arrive as D x 1 x 1 inputs (`--backbone`).
    | Head

/// What a network's inputs are. For "auto" the dataset decides, not the shape alone: a folder of the user's own
/// photos at 32x32 is not CIFAR-10.
[<RequireQualifiedAccess>]
type NetworkInputs =
    /// A reference dataset's images (fashion-mnist, cifar10, svhn): the paper's network for its shape.
    | Reference
    /// A folder of the user's own images.
    | Folder
    /// A pretrained backbone's embeddings (D x 1 x 1).
    | Embeddings

/// The one list of network and critic names: the option table's choices, spec.json, model.json and the
/// network registry all read them from here.
module Architecture =
    /// Each architecture with its name.
    let names =
        [ SmallCnn, "small-cnn"; Vgg16, "vgg16"; Resnet, "resnet"; Head, "head" ]

    /// The name of an architecture.
    let name (a: Architecture) =
        names |> List.find (fun (x, _) -> x = a) |> snd

    /// The names `--network` accepts: "auto" (chosen by the dataset), then each architecture's.
    let choices = "auto" :: List.map snd names

    /// Which architecture a `--network` name means for `inputs` of `channels` x `height` x `width`, or why none.
    /// "auto": a reference dataset's network by its shape (1x28x28 small-cnn, 3x32x32 vgg16, any other resnet),
    /// resnet for a folder of images at any size >= 8, head for a backbone's embeddings.
    let resolve
        (network: string)
        (inputs: NetworkInputs)
        (channels: int)
        (height: int)
        (width: int)
        : Result<Architecture, string> =
        let shape = $"{channels}x{height}x{width}"
        let auto = network = "auto" || network = ""
        let named = List.tryFind (fun (_, n) -> n = network) names |> Option.map fst
        let resnetFits = height >= 8 && width >= 8

        let noResnet () =
            Error $"no network for {shape} images: resnet needs both sides >= 8 (give --image-size)"

        match named, inputs with
        | None, _ when not auto ->
            let known = String.Join(", ", choices)
            Error $"unknown network '{network}'; expected one of {known}"
        | (None | Some Head), NetworkInputs.Embeddings when height = 1 && width = 1 -> Ok Head
        | _, NetworkInputs.Embeddings ->
            Error
                $"a backbone's embeddings (D x 1 x 1) are classified by the head (--network auto or head), not by '{network}' on {shape}"
        | Some Head, _ -> Error "head classifies a backbone's embeddings: give --backbone (or another --network)"
        | Some SmallCnn, _ when (channels, height, width) = (1, 28, 28) -> Ok SmallCnn
        | None, NetworkInputs.Reference when (channels, height, width) = (1, 28, 28) -> Ok SmallCnn
        | Some Vgg16, _ when (channels, height, width) = (3, 32, 32) -> Ok Vgg16
        | None, NetworkInputs.Reference when (channels, height, width) = (3, 32, 32) -> Ok Vgg16
        | Some SmallCnn, _ -> Error $"small-cnn takes 1x28x28 images, not {shape}"
        | Some Vgg16, _ -> Error $"vgg16 takes 3x32x32 images, not {shape}"
        | (None | Some Resnet), _ -> if resnetFits then Ok Resnet else noResnet ()

    /// Why "auto" picked `a` for `inputs`, in words (the first lines of `waal run`).
    let why (inputs: NetworkInputs) (a: Architecture) =
        match inputs, a with
        | NetworkInputs.Embeddings, _ -> "the head on the backbone's embeddings"
        | NetworkInputs.Folder, _ -> "a folder of your own images gets the residual net at any size"
        | NetworkInputs.Reference, SmallCnn -> "the paper's network for 1x28x28 images"
        | NetworkInputs.Reference, Vgg16 -> "the paper's network for 3x32x32 images"
        | NetworkInputs.Reference, _ -> "the residual net for images of this shape"

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
