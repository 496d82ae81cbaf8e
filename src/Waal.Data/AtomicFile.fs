/// Every file this project writes in place of another, or where a reader may look while it is written, is written
/// here: into a temporary file beside it (`.NAME.PID.tmp`, which a run folder's clean-up removes), flushed to disk,
/// then renamed over it. A reader sees the old file or the new one, never half of one; a failure (an error from
/// the writer, an exception, a full disk) leaves the old file as it was and no temporary file behind.
module Waal.Data.AtomicFile

open System.IO
open System.Text

/// The temporary file beside `path` that this process writes it through.
let temporaryOf (path: string) =
    let full = Path.GetFullPath path
    Path.Combine(Path.GetDirectoryName full, $".{Path.GetFileName full}.{System.Environment.ProcessId}.tmp")

let private through (replace: bool) (path: string) (fill: Stream -> Result<'T, 'E>) : Result<'T, 'E> =
    let full = Path.GetFullPath path
    Directory.CreateDirectory(Path.GetDirectoryName full) |> ignore
    let tmp = temporaryOf full

    try
        let result =
            use stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None)
            let r = fill stream

            if Result.isOk r then
                stream.Flush true

            r

        match result with
        | Ok _ -> File.Move(tmp, full, replace)
        | Error _ -> File.Delete tmp

        result
    with _ ->
        (try
            File.Delete tmp
         with _ ->
             ())

        reraise ()

/// Writes `path` through `fill`: renamed over `path` when `fill` returns Ok; on Error (or an exception, which
/// propagates) the temporary file is removed and `path` is untouched.
let writeWith (path: string) (fill: Stream -> Result<'T, 'E>) = through true path fill

/// Writes bytes to `path`.
let write (path: string) (bytes: byte[]) =
    writeWith path (fun s -> Ok(s.Write(bytes, 0, bytes.Length)))
    |> Result.defaultWith id

/// Writes text (UTF-8, no BOM) to `path`.
let writeText (path: string) (text: string) =
    write path (UTF8Encoding(false).GetBytes text)

/// Writes bytes to `path`, which must not exist: an IOException when it does, even when it appeared while the
/// bytes were written (nothing is overwritten).
let createNew (path: string) (bytes: byte[]) =
    through false path (fun s -> Ok(s.Write(bytes, 0, bytes.Length)))
    |> Result.defaultWith id
