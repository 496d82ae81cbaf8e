namespace Waal.Experiments

open System
open Waal.Core
open Waal.Data
open Waal.Learning
open Waal.Strategies

/// Why an experiment could not be opened, run, continued or asked something: the one error type of the
/// experiments layer, for the runner, the session (and the C# facade over it), query-times and the desk. Each
/// case carries its stable code beside it; the data layer's errors keep their own (DATA0xx).
type ExperimentError =
    /// Spec fields out of range (bad options).
    | [<Code "EXP001">] SpecInvalid of SpecError list
    /// The strategy is not registered.
    | [<Code "EXP002">] UnknownStrategy of name: string
    /// The data could not be read; the code is the data error's own.
    | DataFailed of DataError
    /// The spec asks for more than the dataset holds (field, message).
    | [<Code "EXP003">] DoesNotFit of field: string * message: string
    /// The output folder already holds an experiment.
    | [<Code "EXP004">] OutputExists of folder: string
    /// A folder or file that is not (or no longer) a readable experiment.
    | [<Code "EXP005">] NotAnExperiment of path: string * detail: string
    /// The requested device is not there.
    | [<Code "EXP006">] DeviceFailed of detail: string
    /// Training, evaluation or the query failed in a round (diverged, scores not finite, a broken query, ...).
    | [<Code "EXP007">] RoundFailed of round: int * stage: string * error: LearnError
    /// Writing results failed.
    | [<Code "EXP008">] WriteFailed of path: string * detail: string
    /// Another process is writing the folder.
    | [<Code "EXP009">] FolderBusy of folder: string * detail: string
    /// Labels refused: not exactly the pending batch, or refused by the pool (out of range, already labelled,
    /// repeated); nothing changed.
    | [<Code "EXP010">] LabelsRefused of round: int * error: PoolError
    /// A call that does not fit the round's state: labels with no batch pending, a proposal while one waits,
    /// nothing left to label.
    | [<Code "EXP011">] OutOfTurn of round: int * detail: string
    /// An operation that needs a trained model before any training.
    | [<Code "EXP012">] NotTrained of operation: string
    /// An evaluation without test data.
    | [<Code "EXP013">] NoTestData
    /// A stopping rule fired: the round trained and evaluated, and proposed nothing.
    | [<Code "EXP014">] Stopped of rule: string
    /// The backbone (`--backbone`) or its preparation file was refused, or embedding the images with it failed.
    | [<Code "EXP015">] BackboneFailed of file: string * detail: string
    /// The run was stopped by a signal (SIGTERM: a scheduler preempting or requeueing it; SIGINT) at its next safe
    /// point: the folder holds every half-round completed before it, and `waal resume` continues.
    | [<Code "EXP016">] Interrupted of folder: string * signal: string
    /// A query shard file (`waal query --merge`) that is not one, comes from another state of the run, or a set
    /// of them that does not cover the pool exactly once.
    | [<Code "EXP017">] ShardRefused of file: string * detail: string
    /// Slurm refused or lost work this command submitted (`waal query --slurm`): sbatch or squeue failed, or the
    /// jobs ended without their result and without an error line of their own.
    | [<Code "EXP018">] SlurmFailed of what: string * detail: string
    /// libtorch's native library does not load: the application lacks the package that carries it (Waal.Cpu, or
    /// libtorch-cuda-12.8-linux-x64), or the library found cannot be loaded.
    | [<Code "EXP019">] NoNativeBackend of detail: string

/// Codes and one-line messages.
[<RequireQualifiedAccess>]
module ExperimentError =
    let private codeOf = ErrorCodes.reader<ExperimentError>()

    /// Every case's code, by case name (DataFailed's is the data error's own, so it has none here).
    let table = ErrorCodes.table<ExperimentError>()

    /// The stable code.
    let code (e: ExperimentError) =
        match e with
        | DataFailed d -> DataError.code d
        | _ -> (codeOf e).Value

    /// Where it happened (an option, a file, a round) and what happened.
    let describe (e: ExperimentError) =
        match e with
        | SpecInvalid errors ->
            let first = List.head errors

            let more =
                if errors.Length > 1 then
                    $" (and {errors.Length - 1} more)"
                else
                    ""

            $"--{first.Field}", first.Message + more
        | UnknownStrategy name ->
            "--strategy", $"""unknown strategy '{name}'; expected one of {String.Join(", ", Registry.names)}"""
        | DataFailed d -> DataError.file d, DataError.message d
        | DoesNotFit(field, message) -> $"--{field}", message
        | OutputExists folder ->
            folder,
            "already holds an experiment (spec.json); continue it with 'waal resume', or pass --force to start over"
        | NotAnExperiment(path, detail) -> path, detail
        | DeviceFailed detail -> "--device", detail
        | RoundFailed(round, stage, err) -> $"round {round}", $"{stage}: {LearnError.message err}"
        | WriteFailed(path, detail) -> path, detail
        | FolderBusy(folder, detail) -> folder, detail
        | LabelsRefused(round, err) -> $"round {round}", $"labels: {Errors.poolMessage err}"
        | OutOfTurn(round, detail) -> $"round {round}", detail
        | NotTrained operation -> operation, "needs a trained model: propose a batch first"
        | NoTestData -> "evaluation", "no test data was given, so there is nothing to evaluate on"
        | Stopped rule -> "stopping", $"a stopping rule fired: {rule}"
        | BackboneFailed(file, detail) -> file, detail
        | ShardRefused(file, detail) -> file, detail
        | SlurmFailed(what, detail) -> what, detail
        | NoNativeBackend detail -> "libtorch", detail
        | Interrupted(folder, signal) ->
            folder,
            $"stopped by {signal} at a safe point; every completed half-round is saved: 'waal resume {folder}' continues"

    /// `where: message`, without the code.
    let message (e: ExperimentError) =
        let where, message = describe e
        $"{where}: {message}"

    /// `error CODE: where: message`.
    let line (e: ExperimentError) = $"error {code e}: {message e}"

    /// A round's error in these terms.
    let ofRound (e: RoundError<LearnError>) =
        match e with
        | LearnerFailed(round, stage, err) -> RoundFailed(round, stage, err)
        | InvalidQuery(round, detail) -> RoundFailed(round, "query", BadInput detail)
        | RoundError.LabelsRefused(round, err) -> LabelsRefused(round, err)
        | RoundError.OutOfTurn(round, detail) -> OutOfTurn(round, detail)
