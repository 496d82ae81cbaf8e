namespace Waal.Core

/// Why a pool transition or a label log was refused. Every case names what was found and what was expected.
type PoolError =
    /// The pool was asked for with a size or class count that cannot hold labels.
    | InvalidPool of size: int * classes: int
    /// A label batch with no items.
    | EmptyBatch of round: int
    /// An index outside 0 .. size-1.
    | IndexOutOfRange of index: int * size: int
    /// An index that already has a label.
    | AlreadyLabelled of index: int
    /// An index given twice in one batch.
    | DuplicateInBatch of index: int
    /// A label outside 0 .. classes-1.
    | LabelOutOfRange of index: int * label: int * classes: int
    /// A label log (usually read from a file) that is not well formed; field names the offending part.
    | MalformedLog of field: string * detail: string

/// Why the query math refused its input.
type QueryError =
    /// A score that is NaN or infinite where a finite number is needed; no batch is chosen from garbage.
    | NonFiniteScore of position: int * value: float
    /// Inputs whose lengths disagree (what, expected, found).
    | LengthMismatch of what: string * expected: int * found: int
    /// A batch size below zero.
    | NegativeCount of what: string * value: int
    /// A predicted class outside 0 .. classes-1.
    | ClassOutOfRange of position: int * found: int * classes: int

/// Messages for the core's errors, one line each.
module Errors =
    /// A one-line description of a pool error.
    let poolMessage (error: PoolError) =
        match error with
        | InvalidPool(size, classes) ->
            $"a pool needs size >= 0 and classes >= 1, found size {size} and classes {classes}"
        | EmptyBatch round -> $"round {round}: a label batch needs at least one item, found none"
        | IndexOutOfRange(index, size) -> $"index {index} is outside the pool (expected 0..{size - 1})"
        | AlreadyLabelled index -> $"index {index} is already labelled"
        | DuplicateInBatch index -> $"index {index} appears twice in one batch"
        | LabelOutOfRange(index, label, classes) -> $"index {index}: label {label} is outside 0..{classes - 1}"
        | MalformedLog(field, detail) -> $"label log, {field}: {detail}"

    /// A one-line description of a query error.
    let queryMessage (error: QueryError) =
        match error with
        | NonFiniteScore(position, value) -> $"score at position {position} is {value}, expected a finite number"
        | LengthMismatch(what, expected, found) -> $"{what}: expected length {expected}, found {found}"
        | NegativeCount(what, value) -> $"{what} must be >= 0, found {value}"
        | ClassOutOfRange(position, found, classes) ->
            $"predicted class of candidate {position} is {found}, expected 0..{classes - 1}"
