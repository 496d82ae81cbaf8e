/// WAAL's three networks (docs/method.md): the feature extractor f, the classifier h (whose 50-d ReLU layer is the
/// embedding), and the critic g. Default PyTorch (kaiming-uniform) initialisation everywhere.
module Waal.Learning.Nets

open System
open TorchSharp
open type TorchSharp.torch
open type TorchSharp.torch.nn
// torch exposes ScalarType fields named int64, float32, ...: take F#'s conversion functions back.
open Microsoft.FSharp.Core.Operators
open Waal.Core

/// f for 1 x 28 x 28 inputs: conv 1->10 k5, maxpool 2, ReLU; conv 10->20 k5, Dropout2d(0.5), maxpool 2, ReLU;
/// flatten -> 320.
type MnistFeatures() as this =
    inherit Module<Tensor, Tensor>("MnistFeatures")
    let conv1 = Conv2d(1L, 10L, 5L)
    let conv2 = Conv2d(10L, 20L, 5L)
    let drop = Dropout2d(0.5)
    do this.RegisterComponents()

    override _.forward(x: Tensor) =
        let x = functional.relu (Pooling.maxPool2 (conv1.forward x))
        let x = functional.relu (Pooling.maxPool2 (drop.forward (conv2.forward x)))
        x.flatten 1L

/// f for 3 x 32 x 32 inputs: VGG16 with BatchNorm, each number a 3x3 conv (pad 1) + BN + ReLU, M a 2x2
/// maxpool: [64,64,M,128,128,M,256,256,256,M,512,512,512,M,512,512,512,M] -> 512.
type VggFeatures() as this =
    inherit Module<Tensor, Tensor>("VggFeatures")

    static let plan =
        [ 64; 64; 0; 128; 128; 0; 256; 256; 256; 0; 512; 512; 512; 0; 512; 512; 512; 0 ]

    let layers =
        let mutable channels = 3L

        let modules =
            [|
                for i, width in List.indexed plan do
                    if width = 0 then
                        yield struct ($"pool{i}", MaxPool2d(2L) :> Module<Tensor, Tensor>)
                    else
                        yield
                            struct ($"conv{i}",
                                    Conv2d(channels, int64 width, 3L, padding = 1L) :> Module<Tensor, Tensor>)

                        yield struct ($"bn{i}", BatchNorm2d(int64 width) :> Module<Tensor, Tensor>)
                        yield struct ($"relu{i}", ReLU() :> Module<Tensor, Tensor>)
                        channels <- int64 width
            |]

        Sequential(modules)

    do this.RegisterComponents()

    override _.forward(x: Tensor) = (layers.forward x).flatten 1L

/// A residual block: conv3x3 (stride s) + BN + ReLU, conv3x3 + BN, plus the input (through a 1x1 conv + BN when
/// the shape changes), then ReLU.
type ResidualBlock(inputs: int64, outputs: int64, stride: int64) as this =
    inherit Module<Tensor, Tensor>("ResidualBlock")
    let conv1 = Conv2d(inputs, outputs, 3L, stride = stride, padding = 1L, bias = false)
    let bn1 = BatchNorm2d(outputs)
    let conv2 = Conv2d(outputs, outputs, 3L, padding = 1L, bias = false)
    let bn2 = BatchNorm2d(outputs)
    let down = Conv2d(inputs, outputs, 1L, stride = stride, bias = false)
    let bnDown = BatchNorm2d(outputs)
    let projects = stride <> 1L || inputs <> outputs
    do this.RegisterComponents()

    override _.forward(x: Tensor) =
        use _scope = torch.NewDisposeScope()
        let y = functional.relu (bn1.forward (conv1.forward x))
        let y = bn2.forward (conv2.forward y)
        let skip = if projects then bnDown.forward (down.forward x) else x
        functional.relu(y + skip).MoveToOuterDisposeScope()

/// f for any C x H x W (H, W >= 8): a 3x3 stem of 32 channels (BN, ReLU), then one residual block per halving
/// while the smaller side stays >= 8 after it (64x64: 3 blocks, 32x32: 2, 28x28: 1), widths doubling to at
/// most 256, then global average pooling -> the last width.
type ResidualFeatures(channels: int64, height: int, width: int) as this =
    inherit Module<Tensor, Tensor>("ResidualFeatures")

    static let plan (height: int) (width: int) =
        let rec go side width acc =
            if side / 2 >= 8 then
                let next = min 256L (width * 2L)
                go (side / 2) next ((width, next) :: acc)
            else
                List.rev acc

        go (min height width) 32L []

    let stemConv = Conv2d(channels, 32L, 3L, padding = 1L, bias = false)
    let stemBn = BatchNorm2d(32L)

    let blocks =
        Sequential(
            [|
                for i, (inputs, outputs) in List.indexed (plan height width) do
                    yield struct ($"block{i}", new ResidualBlock(inputs, outputs, 2L) :> Module<Tensor, Tensor>)
            |]
        )

    do this.RegisterComponents()

    /// The width of the features (the last block's channels).
    static member Width(height: int, width: int) =
        match plan height width with
        | [] -> 32L
        | p -> snd (List.last p)

    override _.forward(x: Tensor) =
        use _scope = torch.NewDisposeScope()
        let y = blocks.forward (functional.relu (stemBn.forward (stemConv.forward x)))
        y.mean([| 2L; 3L |]).MoveToOuterDisposeScope()

/// The head's f: a backbone's D x 1 x 1 embeddings as N x D rows (no parameters).
type Flatten() =
    inherit Module<Tensor, Tensor>("Flatten")
    override _.forward(x: Tensor) = x.flatten 1L

/// h: Linear inputs->50, ReLU (the embedding), Dropout(0.5), Linear 50->classes (logits).
type Classifier(inputs: int64, classes: int64) as this =
    inherit Module<Tensor, Tensor>("Classifier")
    let fc1 = Linear(inputs, Classifier.EmbeddingDim)
    let drop = Dropout(0.5)
    let fc2 = Linear(Classifier.EmbeddingDim, classes)
    do this.RegisterComponents()

    /// The width of the embedding layer.
    static member EmbeddingDim = 50L

    /// The 50-d embedding of features z.
    member _.Embed(z: Tensor) = functional.relu (fc1.forward z)

    /// Logits from an embedding.
    member _.Logits(embedding: Tensor) = fc2.forward (drop.forward embedding)

    override this.forward(z: Tensor) = this.Logits(this.Embed z)

/// g: Linear inputs->hidden, ReLU, Dropout(p), Linear hidden->1, then sigmoid (or nothing); one value per row.
type Critic(inputs: int64, hidden: int64, dropout: float, output: CriticOutput) as this =
    inherit Module<Tensor, Tensor>("Critic")
    let fc1 = Linear(inputs, hidden)
    let drop = Dropout(dropout)
    let fc2 = Linear(hidden, 1L)
    do this.RegisterComponents()

    /// The reference critic: 50 hidden units, dropout 0.5.
    new(inputs: int64, output: CriticOutput) = new Critic(inputs, 50L, 0.5, output)

    override _.forward(z: Tensor) =
        let o = fc2.forward(drop.forward (functional.relu (fc1.forward z))).view(-1L)

        match output with
        | SigmoidOutput -> o.sigmoid ()
        | LinearOutput -> o

/// The networks of one round. BatchNorm (VGG) makes a forward pass depend on what else is in the batch, so
/// labelled and unlabelled inputs are only fused into one pass when there is none.
type Networks =
    {
        Features: Module<Tensor, Tensor>
        Classifier: Classifier
        Critic: Critic
        HasBatchNorm: bool
        /// What the training that produced these networks measured about itself, by name (WAAL: the critic's
        /// gap over the round, how far its weights moved, ...); read by the strategy's signals. Not saved.
        Trace: Collections.Generic.Dictionary<string, float>
    }

    /// Train mode (dropout, batch statistics) or eval mode for all three.
    member n.Train(on: bool) =
        n.Features.train on
        n.Classifier.train on
        n.Critic.train on

    interface IDisposable with
        member n.Dispose() =
            n.Features.Dispose()
            n.Classifier.Dispose()
            n.Critic.Dispose()

/// Fresh networks of the registry's `network` for inputs of `channels` x `height` x `width`, initialised from
/// libtorch's generator (seed it first), moved to the device. Inputs of 1 x 1 are a backbone's embeddings (the
/// head); "auto" here picks by shape as for a reference dataset: the workbench resolves "auto" by the dataset
/// before training, so a folder's networks arrive named.
let createNamed
    (network: string)
    (device: Device)
    (channels: int)
    (height: int)
    (width: int)
    (classes: int)
    (critic: CriticOutput)
    =
    Device.guardCpu ()
    // Building the layers leaves temporary tensor handles (TorchSharp's initialisers return new handles onto the
    // weights) that keep every weight alive until the .NET finaliser runs, even after the networks are disposed:
    // measured, 56 MB per VGG network with no collection in between. Built inside a dispose scope, the handles go
    // when the scope ends; the parameters and buffers move out of it (Experiments suite: "native memory stays
    // flat").
    use _scope = torch.NewDisposeScope()

    let features, size, bn =
        let inputs =
            if height = 1 && width = 1 then
                NetworkInputs.Embeddings
            else
                NetworkInputs.Reference

        match Architecture.resolve network inputs channels height width with
        | Ok SmallCnn -> new MnistFeatures() :> Module<Tensor, Tensor>, 320L, false
        | Ok Vgg16 -> new VggFeatures() :> Module<Tensor, Tensor>, 512L, true
        | Ok Resnet ->
            new ResidualFeatures(int64 channels, height, width) :> Module<Tensor, Tensor>,
            ResidualFeatures.Width(height, width),
            true
        | Ok Head -> new Flatten() :> Module<Tensor, Tensor>, int64 channels, false
        | Error message -> invalidArg (nameof network) message

    let h = new Classifier(size, int64 classes)
    let g = new Critic(size, critic)
    features.``to`` device |> ignore
    h.``to`` device |> ignore
    g.``to`` device |> ignore

    for m in [ features; h :> Module<Tensor, Tensor>; g ] do
        for p in m.parameters () do
            p.MoveToOuterDisposeScope() |> ignore

        for b in m.buffers () do
            b.MoveToOuterDisposeScope() |> ignore

    {
        Features = features
        Classifier = h
        Critic = g
        HasBatchNorm = bn
        Trace = Collections.Generic.Dictionary()
    }

/// Fresh networks chosen by shape ("auto": 1x28x28 the small net, 3x32x32 VGG16-BN, any other the residual net).
let create (device: Device) (channels: int) (height: int) (width: int) (classes: int) (critic: CriticOutput) =
    createNamed "auto" device channels height width classes critic
