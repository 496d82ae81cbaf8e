// Marks a symbol-version requirement of ELF shared objects as weak, so the dynamic loader accepts a system
// library that lacks that version. TorchSharp's libLibTorchSharp.so is linked with GCC 13 and asks for
// GLIBCXX_3.4.32 only for std::ios_base_library_init(), which nothing calls; Debian 12's libstdc++ stops at
// 3.4.30. Setting VER_FLG_WEAK (0x2) in the matching Vernaux entry of .gnu.version_r turns the fatal
// "version not found" into a warning. One byte per entry changes; applying it twice changes nothing.
// Compiled by MSBuild's RoslynCodeTaskFactory against netstandard2.0 (see NativeCompat.targets); it only ever rewrites the copies in
// build output folders, never the NuGet package cache.
using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class WeakenVersionNeed : Task
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    /// <summary>The shared objects to patch in place (copies in an output folder).</summary>
    [Required] public ITaskItem[] Files { get; set; } = Array.Empty<ITaskItem>();

    /// <summary>The version name to weaken, e.g. GLIBCXX_3.4.32.</summary>
    [Required] public string Version { get; set; } = "";

    /// <summary>Libraries whose presence of Version makes the patch unnecessary (the system's libstdc++).</summary>
    public string[] SystemLibraries { get; set; } = Array.Empty<string>();

    public override bool Execute()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
        {
            Log.LogMessage(MessageImportance.Low, "WeakenVersionNeed: not Linux, nothing to do.");
            return true;
        }
        foreach (var lib in SystemLibraries)
        {
            if (File.Exists(lib) && Contains(File.ReadAllBytes(lib), Encoding.ASCII.GetBytes(Version + "\0")))
            {
                Log.LogMessage(MessageImportance.Low, $"WeakenVersionNeed: {lib} provides {Version}, nothing to do.");
                return true;
            }
        }
        foreach (var item in Files)
        {
            var path = item.GetMetadata("FullPath");
            try
            {
                var image = File.ReadAllBytes(path);
                var changed = MakeWeak(image, Version, path);
                if (changed > 0)
                {
                    // Write a new file and rename it over the old one: if the copy were a hard link into the
                    // package cache, the cache keeps its original bytes.
                    var tmp = path + ".weakening";
                    File.WriteAllBytes(tmp, image);
                    File.Replace(tmp, path, null);
                    Log.LogMessage(MessageImportance.Normal, $"WeakenVersionNeed: {path}: {Version} marked weak ({changed} entr{(changed == 1 ? "y" : "ies")}).");
                }
                else
                {
                    Log.LogMessage(MessageImportance.Low, $"WeakenVersionNeed: {path}: already weak or not required.");
                }
            }
            catch (InvalidDataException e)
            {
                Log.LogError(null, "WAAL0001", null, path, 0, 0, 0, 0, "cannot patch the ELF version needs: {0}", e.Message);
            }
        }
        return !Log.HasLoggedErrors;
    }

    /// <summary>Sets VER_FLG_WEAK on every Vernaux entry named <paramref name="version"/>; returns how many changed.</summary>
    public static int MakeWeak(byte[] image, string version, string name)
    {
        if (image.Length < 64 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F')
            throw new InvalidDataException($"{name}: not an ELF file (magic bytes at offset 0)");
        if (image[4] != 2 || image[5] != 1)
            throw new InvalidDataException($"{name}: expected a 64-bit little-endian ELF (class {image[4]}, data {image[5]} at offset 4)");
        var shoff = Checked(U64(image, 40), image, "e_shoff");
        var shentsize = U16(image, 58);
        var shnum = U16(image, 60);
        if (shentsize < 64 || shoff + (long)shentsize * shnum > image.Length)
            throw new InvalidDataException($"{name}: section header table (offset {shoff}, {shnum} x {shentsize} bytes) lies outside the file ({image.Length} bytes)");
        var wanted = Encoding.ASCII.GetBytes(version);
        var changed = 0;
        for (var i = 0; i < shnum; i++)
        {
            var sh = shoff + (long)i * shentsize;
            if (U32(image, sh + 4) != ShtGnuVerneed) continue;
            var start = Checked(U64(image, sh + 24), image, "sh_offset");
            var size = Checked(U64(image, sh + 32), image, "sh_size");
            var link = U32(image, sh + 40);
            if (link >= shnum) throw new InvalidDataException($"{name}: .gnu.version_r links to section {link} of {shnum}");
            var strtab = Checked(U64(image, shoff + (long)link * shentsize + 24), image, "string table offset");
            var vn = start;
            while (true)
            {
                if (vn + 16 > start + size) throw new InvalidDataException($"{name}: Verneed record at offset {vn} runs past its section");
                var count = U16(image, vn + 2);
                var vna = vn + U32(image, vn + 8);
                for (var j = 0; j < count; j++)
                {
                    if (vna + 16 > start + size) throw new InvalidDataException($"{name}: Vernaux record at offset {vna} runs past its section");
                    var nameAt = strtab + U32(image, vna + 8);
                    if (NameEquals(image, nameAt, wanted))
                    {
                        var flags = U16(image, vna + 4);
                        if ((flags & VerFlgWeak) == 0)
                        {
                            image[vna + 4] = (byte)(image[vna + 4] | VerFlgWeak);
                            changed++;
                        }
                    }
                    var next = U32(image, vna + 12);
                    if (next == 0) break;
                    vna += next;
                }
                var nextNeed = U32(image, vn + 12);
                if (nextNeed == 0) break;
                vn += nextNeed;
            }
        }
        return changed;
    }

    static long Checked(ulong value, byte[] image, string field) =>
        value <= (ulong)image.Length ? (long)value : throw new InvalidDataException($"{field} = {value} lies outside the file ({image.Length} bytes)");

    static bool NameEquals(byte[] image, long at, byte[] wanted)
    {
        if (at < 0 || at + wanted.Length >= image.Length) return false;
        for (var k = 0; k < wanted.Length; k++) if (image[at + k] != wanted[k]) return false;
        return image[at + wanted.Length] == 0;
    }

    // The task factory compiles against netstandard2.0: no spans, so a plain scan (a few MB, once per build).
    static bool Contains(byte[] haystack, byte[] needle)
    {
        for (var i = 0; i + needle.Length <= haystack.Length; i++)
        {
            var k = 0;
            while (k < needle.Length && haystack[i + k] == needle[k]) k++;
            if (k == needle.Length) return true;
        }
        return false;
    }
    static ushort U16(byte[] b, long o) => BitConverter.ToUInt16(b, checked((int)o));
    static uint U32(byte[] b, long o) => BitConverter.ToUInt32(b, checked((int)o));
    static ulong U64(byte[] b, long o) => BitConverter.ToUInt64(b, checked((int)o));
}
