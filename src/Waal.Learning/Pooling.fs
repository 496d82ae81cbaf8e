/// 2 x 2 max pooling with stride 2 (floor mode), the same values and the same gradient as libtorch's max_pool2d,
/// in a fraction of its time. libtorch's CPU max_pool2d kernel (and the reductions max/amax over small dims) run
/// at about 0.1 G outputs/s here: for the Fashion-MNIST net that was 60% of a forward pass (bench/: `micro`).
/// The forward is three elementwise maxima of the four strided window corners; the backward sends each
/// window's gradient to its first maximal corner in row-major order, which is max_pool2d's rule (it keeps the
/// first maximum of a row-major scan), so ties (constant background, dropped channels) route identically.
module Waal.Learning.Pooling

open TorchSharp
open type TorchSharp.torch
// torch exposes ScalarType fields named int64, float32, ...: take F#'s conversion functions back.
open Microsoft.FSharp.Core.Operators

/// The four corners of every 2 x 2 window of x (N x C x H x W, H and W even): top-left, top-right, bottom-left,
/// bottom-right, each N x C x H/2 x W/2 (strided views, no copies).
let private corners (x: Tensor) =
    let h = x.shape[2]
    let w = x.shape[3]
    let top = x.slice (2L, 0L, h, 2L)
    let bottom = x.slice (2L, 1L, h, 2L)
    top.slice (3L, 0L, w, 2L), top.slice (3L, 1L, w, 2L), bottom.slice (3L, 0L, w, 2L), bottom.slice (3L, 1L, w, 2L)

/// Floor mode: an odd last row or column belongs to no window.
let private even (x: Tensor) =
    let h = x.shape[2] / 2L * 2L
    let w = x.shape[3] / 2L * 2L

    if h = x.shape[2] && w = x.shape[3] then
        x
    else
        x.narrow(2L, 0L, h).narrow(3L, 0L, w)

let private forwardValues (x: Tensor) =
    let a, b, c, d = corners (even x)
    torch.maximum (torch.maximum (a, b), torch.maximum (c, d))

/// max_pool2d's gradient for x given its pooled values y and the gradient g of y: each window's gradient goes to
/// its first maximal corner in row-major order; each corner takes what is left where it equals the maximum and
/// passes the rest on; the last corner takes what remains (also a NaN window's, which max_pool2d routes to the
/// NaN: a NaN loss is reported as divergence before it matters). Multiplying by the boolean mask and subtracting
/// is exact (x * 1 = x, x - x = 0, x - 0 = x) and several times faster here than `where`; "+ 0" turns the -0 of
/// a negative gradient times false into +0, as max_pool2d writes.
let routeGradient (x: Tensor) (y: Tensor) (g: Tensor) =
    let a, b, c, _ = corners (even x)

    let take (corner: Tensor) (left: Tensor) =
        let mine = (left * corner.eq y).add(Scalar.op_Implicit 0.0f)
        mine, left - mine

    let ga, left = take a g
    let gb, left = take b left
    let gc, gd = take c left
    let gx = torch.zeros_like x
    let ta, tb, tc, td = corners (even gx)
    ta.copy_ ga |> ignore
    tb.copy_ gb |> ignore
    tc.copy_ gc |> ignore
    td.copy_ gd |> ignore
    gx

type private MaxPool2x2() =
    inherit autograd.SingleTensorFunction<MaxPool2x2>()
    override _.Name = "WaalMaxPool2x2"

    override _.forward(ctx: autograd.AutogradContext, vars: obj[]) =
        let x = vars[0] :?> Tensor
        let y = forwardValues x
        ctx.save_for_backward (System.Collections.Generic.List [ x; y ])
        y

    override _.backward(ctx: autograd.AutogradContext, g: Tensor) =
        let saved = ctx.get_saved_variables ()
        System.Collections.Generic.List [ routeGradient saved[0] saved[1] g ]

/// The custom function whatever the input's size (maxPool2 picks it for large inputs; tests call it directly).
let maxPool2Custom (x: Tensor) = MaxPool2x2.apply (x)

/// Below this many input elements, libtorch's own max_pool2d with its backward is faster than the custom
/// function's fixed cost (measured: `Waal.Bench micro 2 poolsizes`; 82k elements 0.14-0.16 ms against 0.29-0.32,
/// 164k 0.41 against 0.36). Both give the same values and gradient.
let smallPool = 131072L

/// max_pool2d(x, 2) for N x C x H x W input. On the CPU: the plain forward without gradients (no_grad and
/// inference scoring, step B's recomputed features); with gradients, the custom function, or libtorch's
/// max_pool2d for small inputs. Elsewhere (CUDA, not measured here) libtorch's own kernel.
let maxPool2 (x: Tensor) =
    if x.device_type <> DeviceType.CPU then
        nn.functional.max_pool2d (x, 2L)
    elif not (x.requires_grad && torch.is_grad_enabled ()) then
        forwardValues x
    elif x.numel () < smallPool then
        nn.functional.max_pool2d (x, 2L)
    else
        MaxPool2x2.apply (x)
