/// The two terms of WAAL's min-max game: the critic gap (a Kantorovich-Rubinstein estimate of W1 between the
/// unlabelled and labelled feature distributions) and the gradient penalty on the critic.
module Waal.Learning.Adversarial

open TorchSharp
open type TorchSharp.torch
// torch exposes ScalarType fields named int64, float32, ...: take F#'s conversion functions back.
open Microsoft.FSharp.Core.Operators
open Waal.Core

/// mean g(zu) - c x mean g(zl), from critic outputs over the unlabelled and labelled rows.
let gap (criticUnlabelled: Tensor) (criticLabelled: Tensor) (c: float) =
    criticUnlabelled.mean () - criticLabelled.mean () * c

/// GP(g, zu, zl): with t ~ U(0,1) per row, mix = zu + t (zl - zu); P = rows of [mix; zu; zl];
/// G = d(sum g(P))/dP (kept in the graph so the penalty can be trained through);
/// GP = mean over rows of (||G_row||_2 - 1)^2. zu and zl have the same number of rows.
let gradientPenalty (critic: Tensor -> Tensor) (zu: Tensor) (zl: Tensor) =
    let t = torch.rand ([| zu.shape[0]; 1L |], dtype = zu.dtype, device = zu.device)
    let mix = zu + t * (zl - zu)
    let points = torch.cat([| mix; zu; zl |], 0L).detach().requires_grad_ true
    let out = critic points
    // TorchSharp: retain_graph does not follow create_graph as in PyTorch; both are needed.
    let grads =
        torch.autograd.grad ([| out.sum () |], [| points |], retain_graph = true, create_graph = true)

    let norms = grads[0].norm(1, false, 2.0f)
    let d = norms - 1.0
    (d * d).mean()

/// The penalty's sign in the critic loss: -1 (the reference maximises it) or +1 (WGAN-GP).
let sign (s: GpSign) =
    match s with
    | ReferenceSign -> -1.0
    | WganGpSign -> 1.0

/// The critic step's loss: -alpha x gap + sign x weight x alpha x GP.
let criticLoss (alpha: float) (gapValue: Tensor) (gp: Tensor) (gpSign: GpSign) (weight: float) =
    gapValue * -alpha + gp * (sign gpSign * weight * alpha)
