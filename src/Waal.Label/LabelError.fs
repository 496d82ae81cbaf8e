namespace Waal.Label

open Waal.Data
open Waal.Experiments

/// Why a labelling session cannot open, be exported or take an import: one type for the labelling layer, each
/// case's code beside it (`LabelError.code`).
type internal LabelError =
    /// The images, or the class folders, cannot be read (the data layer's own code).
    | Data of DataError
    /// LABEL002: a file of the session folder (label.json, spec.json, progress.json, batch.json) is missing or
    /// cannot be read.
    | SessionFile of file: string * detail: string
    /// LABEL003: the session (its networks, its state) cannot be created or loaded.
    | SessionFailed of ExperimentError
    /// LABEL003: the desk over an opened session cannot start.
    | StartFailed of detail: string
    /// LABEL004: another server or export holds the session folder.
    | Busy of folder: string * detail: string
    /// LABEL005: a line of the CSV of known labels.
    | KnownLabels of file: string * line: int * detail: string
    /// LABEL012: the session folder cannot be created or written.
    | Unwritable of folder: string * detail: string

/// The labelling layer's warnings: what went wrong and was worked around, said on the standard error.
type internal LabelWarning =
    /// LABEL006: a batch file that cannot be read was kept aside (renamed) and the batch starts again.
    | BatchFileKeptAside of file: string * detail: string * aside: string
    /// LABEL013: no images are offered while the model trains.
    | NothingOffered of file: string * detail: string

module internal LabelError =
    /// The error's code.
    let code (e: LabelError) =
        match e with
        | Data d -> DataError.code d
        | SessionFile _ -> "LABEL002"
        | SessionFailed _
        | StartFailed _ -> "LABEL003"
        | Busy _ -> "LABEL004"
        | KnownLabels _ -> "LABEL005"
        | Unwritable _ -> "LABEL012"

    /// One line per error, naming the file or option.
    let message (e: LabelError) =
        match e with
        | Data d -> DataError.line d
        | SessionFile(file, detail) -> $"error {code e}: {file}: {detail}"
        | SessionFailed s -> $"error {code e}: session: {ExperimentError.message s}"
        | StartFailed detail -> $"error {code e}: session: {detail}"
        | Busy(folder, detail) -> $"error {code e}: {folder}: {detail}"
        | KnownLabels(file, line, detail) -> $"error {code e}: {file}:{line}: {detail}"
        | Unwritable(folder, detail) ->
            $"error {code e}: {folder}: the session folder cannot be created or written: {detail}"

module internal LabelWarning =
    /// The warning's code.
    let code (w: LabelWarning) =
        match w with
        | BatchFileKeptAside _ -> "LABEL006"
        | NothingOffered _ -> "LABEL013"

    /// One line per warning, naming the file.
    let message (w: LabelWarning) =
        match w with
        | BatchFileKeptAside(file, detail, aside) ->
            let again =
                if System.IO.Path.GetFileName file = "batch.json" then
                    ", the batch starts again"
                else
                    ""

            $"warning {code w}: {file}: {detail}; kept as {aside}{again}"
        | NothingOffered(file, detail) ->
            $"warning {code w}: {file}: no images offered while the model trains: {detail}"
