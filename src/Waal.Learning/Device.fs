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

[<System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mallopt")>]
extern int private mallopt(int param, int value)

/// glibc's M_TRIM_THRESHOLD and M_MMAP_THRESHOLD.
let private trimThreshold, mmapThreshold = -1, -3

/// Keeps freed native memory in the C heap for reuse instead of returning it to the system and faulting the
/// same pages in again on the next batch (libtorch allocates every CPU tensor with malloc). Measured on the plain
/// trainer (`Waal.Bench micro 2 plain`, 520 steps): 183,000 minor page faults without, 46,000 with, the step
/// about 7-11 % faster, peak RSS unchanged. Blocks up to 32 MB come from the heap (glibc's largest mmap
/// threshold), and up to 256 MB of free heap is kept. A no-op where the C library has no mallopt (musl, macOS,
/// Windows). Returns whether both settings were taken.
let keepFreedMemory () =
    try
        mallopt (mmapThreshold, 32 * 1024 * 1024) = 1
        && mallopt (trimThreshold, 256 * 1024 * 1024) = 1
    with _ ->
        false

[<System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")>]
extern int private mallocTrim(unativeint pad)

/// Returns the C heap's free memory to the system (glibc), so that memory freed by earlier work and kept by the
/// allocator does not hide what the next piece of work allocates (query-times measures peaks this way). A no-op
/// where the C library has no malloc_trim.
let trimHeap () =
    try
        mallocTrim 0un |> ignore
    with _ ->
        ()

/// The process settings a run uses: libtorch's threads and the C heap's reuse of freed memory.
let configure (threads: int) =
    setThreads threads
    keepFreedMemory () |> ignore
