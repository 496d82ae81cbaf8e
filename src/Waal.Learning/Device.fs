/// Where TorchSharp computes: chosen at run time, never at build time.
module Waal.Learning.Device

open TorchSharp
open Waal.Core

/// The libtorch version this build of TorchSharp needs, and the packages that carry it.
let libtorchVersion = "2.10.0"

let private native =
    lazy
        // TorchSharp writes a loader trace of some 40 lines to the console when libtorch is missing, before it
        // throws: the console is silenced for that one call (once per process), and only the exception's type kept.
        (let out, err = System.Console.Out, System.Console.Error
         System.Console.SetOut System.IO.TextWriter.Null
         System.Console.SetError System.IO.TextWriter.Null

         try
             try
                 torch.InitializeDeviceType DeviceType.CPU
                 Ok()
             finally
                 System.Console.SetOut out
                 System.Console.SetError err
         with e ->
             Error
                 $"TorchSharp's native backend, libtorch {libtorchVersion}, is not in this application: add the package Waal.Cpu (CPU) or libtorch-cuda-12.8-linux-x64 version {libtorchVersion} (CUDA) (TorchSharp: {e.GetType().Name})")

/// Whether libtorch's native library loads: Error is one line naming the packages that carry it and the version,
/// instead of TorchSharp's loader trace. Checked once per process.
let nativeBackend () = native.Force()

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
                "--device cuda: no CUDA device is available to libtorch (this build carries the CPU libtorch; docs/platform.md, 'Device')"

[<System.Runtime.InteropServices.DllImport("libc", EntryPoint = "setenv")>]
extern int private setenv(string name, string value, int overwrite)

/// True on a processor whose oneDNN vector kernels were measured to go wrong with more than one thread: an AMD
/// family 26 (Zen 5) whose virtual machine hides the cache topology (/sys/devices/system/cpu/cpu0/cache is
/// missing), as on this project's CI machines. There, with oneDNN's AVX2 or AVX-512 kernels and two threads,
/// WAAL's training produced a NaN loss at a different step in most runs; with its SSE4.1 kernels, none in 12
/// runs and every run bit-identical (docs/platform.md).
let internal oneDnnNeedsBaseline () =
    try
        let info = System.IO.File.ReadAllText "/proc/cpuinfo"

        info.Contains "AuthenticAMD"
        && info.Contains "cpu family\t: 26"
        && not (System.IO.Directory.Exists "/sys/devices/system/cpu/cpu0/cache")
    with _ ->
        false

let private guarded =
    lazy
        (if
             oneDnnNeedsBaseline ()
             && isNull (System.Environment.GetEnvironmentVariable "ONEDNN_MAX_CPU_ISA")
             && isNull (System.Environment.GetEnvironmentVariable "DNNL_MAX_CPU_ISA")
         then
             try
                 setenv ("ONEDNN_MAX_CPU_ISA", "SSE41", 0) |> ignore
             with _ ->
                 ())

/// Limits oneDNN to its SSE4.1 kernels on the processors of `oneDnnNeedsBaseline` (unless the environment sets
/// ONEDNN_MAX_CPU_ISA or DNNL_MAX_CPU_ISA). oneDNN reads the variable at its first convolution, so this runs
/// before any network is built; build/env.sh exports the same for every process the scripts start.
let internal guardCpu () = guarded.Force()

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
let internal keepFreedMemory () =
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
    guardCpu ()
    setThreads threads
    keepFreedMemory () |> ignore
