module Waal.Learning.Tests.Tests

open System
open System.Diagnostics
open System.IO
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

/// The repository root: the folder above this assembly that holds the solution.
let private repoRoot =
    let rec up (dir: DirectoryInfo) =
        if isNull dir then
            failwith "Waal.Functional.sln not found above the test assembly"
        elif File.Exists(Path.Combine(dir.FullName, "Waal.Functional.sln")) then
            dir.FullName
        else
            up dir.Parent

    up (DirectoryInfo AppContext.BaseDirectory)

/// TorchSharp's own copy of the native library, in the NuGet package cache.
let private cachedNative =
    let packages =
        Environment.GetEnvironmentVariable "NUGET_PACKAGES"
        |> Option.ofObj
        |> Option.defaultValue (
            Path.Combine(Environment.GetFolderPath Environment.SpecialFolder.UserProfile, ".nuget", "packages")
        )

    Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so")

let private outputNative =
    Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so")

/// The positions where two equally long files differ.
let private differences (a: byte[]) (b: byte[]) =
    Expect.equal a.Length b.Length "same length"

    [
        for i in 0 .. a.Length - 1 do
            if a[i] <> b[i] then
                yield i
    ]

/// Runs the build's WeakenVersionNeed task through a real `dotnet msbuild` on a one-target project.
let private weaken (dir: string) (library: string) (systemLibraries: string) =
    let proj = Path.Combine(dir, "weaken.proj")

    let targets =
        Path.Combine(repoRoot, "build", "NativeCompat", "NativeCompat.targets")

    File.WriteAllText(
        proj,
        $"""<Project>
  <Import Project="{targets}" />
  <Target Name="Weaken">
    <WeakenVersionNeed Files="{library}" Version="GLIBCXX_3.4.32" SystemLibraries="{systemLibraries}" />
  </Target>
</Project>"""
    )

    let info =
        ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true)

    for a in [ "msbuild"; proj; "-t:Weaken"; "-nologo"; "-v:minimal"; "-nodeReuse:false" ] do
        info.ArgumentList.Add a

    use p = Process.Start info
    let out = p.StandardOutput.ReadToEndAsync()
    let err = p.StandardError.ReadToEnd()
    p.WaitForExit()
    p.ExitCode, out.Result + err

let private libstdcxxHas32 =
    [
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
        "/lib/x86_64-linux-gnu/libstdc++.so.6"
        "/usr/lib64/libstdc++.so.6"
    ]
    |> List.exists (fun f -> File.Exists f && (File.ReadAllText f).Contains "GLIBCXX_3.4.32\000")

let private nativeCompat =
    testList
        "NativeCompat"
        [
            test "the output copy differs from the package cache's in one byte, the weak flag; the cache is untouched" {
                let cached = File.ReadAllBytes cachedNative
                let output = File.ReadAllBytes outputNative

                if libstdcxxHas32 then
                    Expect.equal (differences cached output) [] "this system's libstdc++ has the version: no patch"
                else
                    match differences cached output with
                    | [ i ] -> Expect.equal output[i] (cached[i] ||| 2uy) "VER_FLG_WEAK (0x2) set in vna_flags"
                    | other -> failtestf "expected exactly one changed byte, found %d" other.Length

                Expect.equal (cached[0..3]) [| 0x7fuy; byte 'E'; byte 'L'; byte 'F' |] "the cache still holds an ELF"
            }

            test
                "the MSBuild task changes one byte, is idempotent, skips when the system has the version, and fails on a non-ELF file" {
                let dir =
                    Path.Combine(Path.GetTempPath(), "waal-native-" + Guid.NewGuid().ToString "N")

                Directory.CreateDirectory dir |> ignore

                try
                    let lib = Path.Combine(dir, "libLibTorchSharp.so")
                    File.Copy(cachedNative, lib)
                    let original = File.ReadAllBytes lib
                    let code, log = weaken dir lib ""
                    Expect.equal code 0 $"first run: {log}"
                    let once = File.ReadAllBytes lib
                    Expect.equal (differences original once).Length 1 "one byte changed"
                    let code, log = weaken dir lib ""
                    Expect.equal code 0 $"second run: {log}"
                    Expect.equal (File.ReadAllBytes lib) once "a second run changes nothing"

                    let fresh = Path.Combine(dir, "fresh", "libLibTorchSharp.so")
                    Directory.CreateDirectory(Path.GetDirectoryName fresh) |> ignore
                    File.Copy(cachedNative, fresh)
                    let modern = Path.Combine(dir, "libstdc++.so.6")
                    File.WriteAllBytes(modern, Text.Encoding.ASCII.GetBytes "....GLIBCXX_3.4.32\000....")
                    let code, log = weaken dir fresh modern
                    Expect.equal code 0 $"with a modern libstdc++: {log}"
                    Expect.equal (File.ReadAllBytes fresh) original "left alone when the system provides the version"

                    let junk = Path.Combine(dir, "junk.so")

                    File.WriteAllText(
                        junk,
                        "not an ELF file at all, but long enough to have a header of sixty-four bytes"
                    )

                    let code, log = weaken dir junk ""
                    Expect.notEqual code 0 "the build fails"
                    Expect.stringContains log "WAAL0001" "with the task's error code"
                    Expect.stringContains log "not an ELF file" "and what was wrong"
                finally
                    Directory.Delete(dir, true)
            }
        ]

let all = testList "Learning" [ testSequenced smoke; testSequenced nativeCompat ]
