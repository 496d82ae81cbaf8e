module Waal.Learning.Tests.Tests

open Expecto
open TorchSharp
open type TorchSharp.torch

let smoke =
    test "a forward and backward pass runs on the CPU with the patched native library" {
        use _scope = torch.NewDisposeScope()
        torch.random.manual_seed 1L |> ignore
        let w = torch.randn ([| 3L; 2L |], requires_grad = true)
        let x = torch.ones ([| 4L; 3L |])
        let y = x.matmul w
        let loss = (y * y).sum()
        loss.backward ()
        let g: Tensor = w.grad
        Expect.isNotNull g "the weight has a gradient"
        // d/dw sum((x w)^2) = 2 x^T (x w); with x all ones each row of the gradient is 2 * 4 * column sums of w.
        let expected = (x.t().matmul(x.matmul w)) * 2.0
        Expect.isTrue (g.allclose (expected.detach ())) "the gradient matches the closed form"
    }

let all = testList "Learning" [ testSequenced smoke ]
