/// Where TorchSharp computes: chosen at run time, never at build time.
module Waal.Learning.Device

open TorchSharp

/// The requested device: automatic picks CUDA when libtorch sees a GPU, else the CPU.
type DeviceChoice =
    | Auto
    | Cpu
    | Cuda

/// Resolves a choice to a TorchSharp device; Cuda without a usable GPU is an error naming the option.
let resolve (choice: DeviceChoice) : Result<torch.Device, string> =
    match choice with
    | Cpu -> Ok torch.CPU
    | Auto -> Ok(if torch.cuda.is_available () then torch.CUDA else torch.CPU)
    | Cuda ->
        if torch.cuda.is_available () then
            Ok torch.CUDA
        else
            Error
                "--device cuda: no CUDA device is available to libtorch (this build carries the CPU libtorch; see README, 'Using a GPU')"

/// Sets libtorch's intra-op thread count (the default is one per core).
let setThreads (threads: int) =
    if threads > 0 then
        torch.set_num_threads threads
