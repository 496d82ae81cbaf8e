/// Where TorchSharp computes: chosen at run time, never at build time.
module Waal.Learning.Device

open TorchSharp
open Waal.Core

/// Resolves a choice to a TorchSharp device; CUDA without a usable GPU is an error naming the option.
let resolve (choice: DeviceChoice) : Result<torch.Device, string> =
    match choice with
    | CpuDevice -> Ok torch.CPU
    | AutoDevice -> Ok(if torch.cuda.is_available () then torch.CUDA else torch.CPU)
    | CudaDevice ->
        if torch.cuda.is_available () then
            Ok torch.CUDA
        else
            Error
                "--device cuda: no CUDA device is available to libtorch (this build carries the CPU libtorch; see README, 'Device')"

/// Sets libtorch's intra-op thread count (0 keeps libtorch's default of one per core).
let setThreads (threads: int) =
    if threads > 0 then
        torch.set_num_threads threads
