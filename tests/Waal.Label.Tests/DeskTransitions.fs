/// The labelling desk's pure core (`LabellingDesk.step`) driven by FsCheck scripts: a person labelling, skipping,
/// undoing and sending bad requests, the model training and failing, and the process killed at any point and
/// restarted from what its files hold. The session around the desk is the pure round (`Round.label`,
/// `Round.accept`, `Round.propose` with a learner that trains nothing and queries a seeded draw); the files are
/// the JSON text the shell would write.
module Waal.Label.Tests.DeskTransitions

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open Waal.Core
open Waal.Label

let private poolSize = 14
let private classes = 3
let private query = 4

let private settings: DeskSettings =
    {
        Seed = 5L
        Initial = 3
        Classes = classes
    }

/// A learner without a network: "training" counts, the query is a seeded draw, nothing is measured.
let private learner: Learner<unit, string> =
    {
        Train = fun _ _ _ -> Ok((), 1L)
        Evaluate = fun () -> Ok nan
        Validate = fun () -> Ok nan
        Query = fun () pool round k -> Ok(Pool.draw (Rng.key 9L round (Rng.Named "test")) k pool)
        Signals = fun () _ _ _ -> Ok []
        StopSet = fun () -> Ok([||], 0.0)
        Release = ignore
    }

/// The session, the files and the desk, as the shell holds them.
type private World =
    {
        /// The session's progress in memory.
        Progress: Progress
        /// progress.json and labels.json as last saved.
        Saved: Progress
        BatchFile: string option
        PrefetchFile: string option
        Desk: DeskState
        /// A proposal runs in the background (StartTraining was carried out, Proposed not yet sent).
        Training: bool
        /// Its images offered meanwhile were chosen.
        Offered: bool
        Refusals: int
        /// How many processes have run the desk (versions count from 0 again in each).
        Processes: int
    }

/// The labels a desk rebuilt from the files would hold: what the shell's restart and the offline export read.
let private persisted (w: World) =
    let read (text: string option) =
        text
        |> Option.map (BatchLabels.ofJson poolSize classes >> Result.toOption >> Option.get)

    let pairs = Option.map BatchLabels.pairs >> Option.defaultValue [||]
    let batch = read w.BatchFile |> Option.filter (LabellingDesk.isCurrent w.Saved)

    let held =
        pairs (read w.PrefetchFile)
        |> Array.filter (fun (i, _) -> not (Pool.isLabelled w.Saved.Pool i))

    LabellingDesk.givenLabels (LabellingDesk.storedLabels w.Saved.Pool) (pairs batch) held

/// Carries out one event and the events its effects answer with, as the shell does.
let rec private run (w: World) (event: DeskEvent) : World =
    let desk, effects = LabellingDesk.step settings w.Progress w.Desk event
    perform { w with Desk = desk } effects []

and private perform (w: World) (effects: DeskEffect list) (answers: DeskEvent list) =
    match effects with
    | [] -> List.rev answers |> List.fold run w
    | effect :: rest ->
        match effect with
        | DeskEffect.WriteBatch b ->
            perform
                { w with
                    BatchFile = Some(BatchLabels.toJson b)
                }
                rest
                answers
        | DeskEffect.WritePrefetch f ->
            perform
                { w with
                    PrefetchFile = f |> Option.map BatchLabels.toJson
                }
                rest
                answers
        | DeskEffect.Store(batch, extras) ->
            let stored =
                match batch with
                | Some b when b.Kind = InitialBatch -> Round.label (BatchLabels.pairs b) w.Progress
                | Some b when b.Kind = QueryBatch -> Round.accept (BatchLabels.pairs b) w.Progress |> Result.map fst
                | _ -> Ok w.Progress
                |> Result.bind (fun p -> if extras.Length = 0 then Ok p else Round.label extras p)

            match stored with
            | Ok p -> perform { w with Progress = p; Saved = p } rest (DeskEvent.Stored(Ok()) :: answers)
            | Error e -> perform w rest (DeskEvent.Stored(Error $"%A{e}") :: answers)
        | DeskEffect.Save -> perform { w with Saved = w.Progress } rest (DeskEvent.Saved(Ok()) :: answers)
        | DeskEffect.StartTraining ->
            perform
                { w with
                    Training = true
                    Offered = false
                }
                rest
                answers
        | DeskEffect.Refuse _ -> { w with Refusals = w.Refusals + 1 }

/// A process started on the files (a new desk over the saved progress).
let private restart (w: World) =
    let read (text: string option) =
        text
        |> Option.map (BatchLabels.ofJson poolSize classes >> Result.toOption >> Option.get)

    run
        { w with
            Progress = w.Saved
            Desk = LabellingDesk.initial
            Training = false
            Offered = false
            Processes = w.Processes + 1
        }
        (DeskEvent.Opened(read w.BatchFile, read w.PrefetchFile))

/// One action of a script: (kind, a, b), read against the batch the page shows.
let private act (w: World) (kind: int, a: int, b: int) =
    let shown = LabellingDesk.shown w.Desk

    let item =
        match shown with
        | Some s -> s.Order[a % s.Order.Length]
        | None -> a

    match kind with
    | 0
    | 1
    | 2 -> run w (DeskEvent.Edited(Edit.Give(item, b % classes)))
    | 3 ->
        let items =
            shown
            |> Option.map (fun s -> s.Order |> List.truncate (1 + a % 4) |> List.map (fun i -> i, b % classes))
            |> Option.defaultValue [ a, 0 ]

        run w (DeskEvent.Edited(Edit.GiveAll(Array.ofList items)))
    | 4 -> run w (DeskEvent.Edited Edit.Undo)
    | 5 -> run w (DeskEvent.Edited(Edit.Skip item))
    // A bad request: an index outside the batch, or a class that does not exist.
    | 6 -> run w (DeskEvent.Edited(Edit.Give((if b % 2 = 0 then poolSize + a else item), classes + b % 3)))
    // The training thread: the images offered, then the proposal's end (in order, each at most once).
    | 7 when w.Training && not w.Offered ->
        let offered = Pool.draw (Rng.key 3L a (Rng.Named "offer")) query w.Progress.Pool
        run { w with Offered = true } (DeskEvent.Offered offered)
    | 7 when w.Training ->
        match Round.propose learner (fun () -> 0.0) [] query Int32.MaxValue w.Progress with
        | Ok(p, ()) ->
            run
                { w with
                    Progress = p
                    Training = false
                }
                (DeskEvent.Proposed(Ok()))
        | Error e -> run { w with Training = false } (DeskEvent.Proposed(Error $"%A{e}"))
    | 8 when w.Training -> run { w with Training = false } (DeskEvent.Proposed(Error "out of memory"))
    | 9 -> restart w
    | _ -> w

/// A script of 0..120 actions.
let private script =
    Gen.listOf (Gen.zip3 (Gen.choose (0, 9)) (Gen.choose (0, 40)) (Gen.choose (0, 40)))
    |> Gen.resize 120
    |> Arb.fromGen

let private empty () =
    let pool = Pool.create poolSize classes |> Result.toOption |> Option.get

    let progress =
        {
            Pool = pool
            Records = []
            Pending = None
        }

    restart
        {
            Progress = progress
            Saved = progress
            BatchFile = None
            PrefetchFile = None
            Desk = LabellingDesk.initial
            Training = false
            Offered = false
            Refusals = 0
            Processes = 0
        }

let private sorted (pairs: (int * int)[]) = Array.sort pairs

/// The person gives the next item of the batch shown `label` (as a script's give action).
let private labelNext (label: int) (w: World) =
    let b = (LabellingDesk.shown w.Desk).Value
    act w (0, b.Order |> List.findIndex ((=) (BatchLabels.next b).Value), label)

/// A new desk whose initial batch of 3 the person labelled `label`.
let private afterInitial (label: int) =
    [ 0..2 ] |> List.fold (fun w _ -> labelNext label w) (empty ())


/// What must hold after every action; the first violation is thrown with the state.
let private check (step: int) (before: World) (w: World) =
    let fail why =
        failwithf
            "after action %d: %s\nstate %A\nprogress pending %A, labelled %d"
            step
            why
            w.Desk
            w.Progress.Pending
            w.Progress.Pool.LabelledCount

    let live = LabellingDesk.labels w.Progress w.Desk

    if sorted live <> sorted (persisted w) then
        fail $"the labels given (%A{sorted live}) are not what the files hold (%A{sorted (persisted w)})"

    if (Array.map fst live |> Array.distinct).Length <> live.Length then
        fail "an image has two labels"

    if
        LabellingDesk.storedLabels w.Progress.Pool
        <> LabellingDesk.storedLabels w.Saved.Pool
    then
        fail "the session's labels are not saved"

    if w.Processes = before.Processes && w.Desk.Version < before.Desk.Version then
        fail "the version went back"

    match w.Desk.Status with
    | DeskStatus.Labelling ->
        match w.Desk.Batch with
        | None -> fail "labelling without a batch"
        | Some b when not (LabellingDesk.isCurrent w.Progress b) -> fail "the batch shown is not the session's"
        | Some b when BatchLabels.isComplete b -> fail "a complete batch was not stored"
        | Some _ -> ()
    | DeskStatus.Training ->
        if w.Desk.Batch.IsSome || not w.Training then
            fail "training without a proposal running, or with a batch"
    | DeskStatus.Finished _ ->
        if w.Progress.Pool.UnlabelledCount > 0 then
            fail "finished with images unlabelled"

        if w.Desk.Prefetch.IsSome then
            fail "finished with labels held"
    | DeskStatus.Failed _ -> ()

let all =
    testList
        "labelling desk (pure core)"
        [
            testPropertyWithConfig
                { FsCheckConfig.defaultConfig with
                    maxTest = 300
                }
                "no label is lost or doubled, the files always hold what the page shows, a restart changes nothing"
                (Prop.forAll script (fun actions ->
                    let final =
                        actions
                        |> List.indexed
                        |> List.fold
                            (fun w (n, a) ->
                                let next = act w a
                                check n w next

                                // A process killed now and started again holds the same labels.
                                let again = restart next

                                if
                                    sorted (LabellingDesk.labels again.Progress again.Desk)
                                    <> sorted (LabellingDesk.labels next.Progress next.Desk)
                                then
                                    failwithf "after action %d: a restart changed the labels" n

                                next)
                            (empty ())

                    final.Progress.Pool.LabelledCount <= poolSize))

            test "a person labelling every batch, with training in between, labels the whole pool" {
                let label (w: World) =
                    match LabellingDesk.shown w.Desk with
                    | Some b when w.Desk.Status = DeskStatus.Labelling ->
                        let i = (BatchLabels.next b).Value
                        act w (0, b.Order |> List.findIndex ((=) i), i)
                    | _ when w.Training -> act (act w (7, 0, 0)) (7, 0, 0)
                    | _ -> w

                let rec go (w: World) n =
                    match w.Desk.Status with
                    | DeskStatus.Finished why -> w, why
                    | DeskStatus.Failed why -> failtest $"failed: {why}"
                    | _ when n > 200 -> failtest "did not finish"
                    | _ -> go (label w) (n + 1)

                let w, why = go (empty ()) 0
                Expect.equal w.Progress.Pool.LabelledCount poolSize "every image labelled"
                Expect.equal why "every image of the pool is labelled" "why it finished"
                // The initial 3, then rounds 0, 1 and 2 queried 4, 4 and the last 3.
                Expect.equal (w.Progress.Records |> List.map (fun r -> r.Labelled)) [ 3; 7; 11 ] "the rounds"
            }

            test "labels given while the model trains are kept: the next batch takes its own, the rest go in with it" {
                let w = afterInitial 1

                Expect.equal w.Desk.Status DeskStatus.Training "training"
                let w = act w (7, 0, 0)
                let offered = (LabellingDesk.shown w.Desk).Value
                Expect.equal offered.Kind PrefetchBatch "images offered meanwhile"
                // Every offered image labelled 2 while the model trains.
                let w =
                    offered.Order
                    |> List.fold (fun w i -> run w (DeskEvent.Edited(Edit.Give(i, 2)))) w

                let w = act w (7, 0, 0)
                let batch = w.Desk.Batch.Value

                let common =
                    offered.Indices |> Array.filter (fun i -> Array.contains i batch.Indices)

                Expect.equal
                    (batch.Labels |> Map.toList |> List.map fst |> List.sort)
                    (List.sort (List.ofArray common))
                    "the batch took the labels of its own images"

                Expect.equal (LabellingDesk.held w.Desk) (offered.Indices.Length - common.Length) "the others are held"

                Expect.equal (sorted (LabellingDesk.labels w.Progress w.Desk)) (sorted (persisted w)) "and written"
            }

            test "a failed training refuses labels with why, keeps every label, and a restart trains again" {
                let w = afterInitial 0

                let failed = act w (8, 0, 0)
                Expect.equal failed.Desk.Status (DeskStatus.Failed "out of memory") "failed"
                let refused = act failed (0, 0, 0)
                Expect.equal refused.Refusals (failed.Refusals + 1) "a label is refused"
                Expect.equal failed.Saved.Pool.LabelledCount 3 "the initial labels are saved"
                let again = restart failed
                Expect.equal again.Desk.Status DeskStatus.Training "a restart trains again"
            }
        ]
