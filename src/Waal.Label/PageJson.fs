/// The state the labelling page shows, as JSON: a pure function of one snapshot of the desk (taken under its
/// lock), written outside the lock.
module internal Waal.Label.PageJson

open System
open System.IO
open System.Text
open System.Text.Json
open Waal.Core
open Waal.Data
open Waal.Label.SessionFolder

/// What the page is drawn from: immutable values copied out of the desk.
type Snapshot =
    {
        /// This process's desk: versions count from 0 again after a restart.
        Instance: string
        Desk: DeskState
        Progress: Progress
        PoolImages: Dataset
        Source: Source
        HasTest: bool
        /// The training phase and its steps done of total.
        Training: string * int * int
    }

/// The page's state document.
let write (s: Snapshot) : string =
    let pool = s.PoolImages
    let all = LabellingDesk.labels s.Progress s.Desk
    use stream = new MemoryStream()

    do
        use w = new Utf8JsonWriter(stream)
        w.WriteStartObject()
        w.WriteNumber("version", s.Desk.Version)
        w.WriteString("instance", s.Instance)
        w.WriteNumber("round", s.Progress.Round)
        w.WriteNumber("pool", pool.Count)
        // Stored in the session (what the next training uses) and given in all (the batch's and the ones given
        // while the model trained included).
        w.WriteNumber("labelled", s.Progress.Pool.LabelledCount)
        w.WriteNumber("given", all.Length)
        w.WriteBoolean("knownLabels", (s.Source = ClassFolders))
        w.WriteBoolean("hasTest", s.HasTest)
        w.WriteStartArray "classes"

        for c in pool.ClassNames do
            w.WriteStringValue c

        w.WriteEndArray()

        let statusName, why =
            match s.Desk.Status with
            | DeskStatus.Labelling -> "labelling", ""
            | DeskStatus.Training -> "training", ""
            | DeskStatus.Finished why -> "finished", why
            | DeskStatus.Failed why -> "failed", why

        w.WriteString("status", statusName)
        w.WriteString("message", why)
        let phase, doneSteps, total = s.Training
        w.WriteStartObject "training"
        w.WriteString("phase", phase)
        w.WriteNumber("done", doneSteps)
        w.WriteNumber("total", total)
        w.WriteEndObject()
        w.WriteNumber("held", LabellingDesk.held s.Desk)

        match LabellingDesk.shown s.Desk with
        | Some b ->
            w.WriteStartObject "batch"
            w.WriteNumber("round", b.Round)
            w.WriteString("kind", BatchLabels.kindName b.Kind)
            w.WriteNumber("size", b.Indices.Length)
            w.WriteNumber("given", b.Labels.Count)

            match BatchLabels.next b with
            | Some i -> w.WriteNumber("next", i)
            | None -> w.WriteNull "next"

            w.WriteBoolean("canUndo", not b.History.IsEmpty)
            w.WriteStartArray "items"

            for i in b.Order do
                w.WriteStartObject()
                w.WriteNumber("index", i)
                w.WriteString("file", (if i < pool.Files.Length then pool.Files[i] else ""))

                match Map.tryFind i b.Labels with
                | Some l -> w.WriteNumber("label", l)
                | None -> w.WriteNull "label"

                w.WriteEndObject()

            w.WriteEndArray()
            w.WriteEndObject()
        | None -> w.WriteNull "batch"

        // How often the person's labels agree with the folders' (class-folder sources only).
        if s.Source = ClassFolders then
            let agreed = all |> Array.filter (fun (i, l) -> pool.Labels[i] = l) |> Array.length
            w.WriteStartObject "agreement"
            w.WriteNumber("given", all.Length)
            w.WriteNumber("agreed", agreed)
            w.WriteEndObject()

        w.WriteStartArray "curve"

        let number (name: string) (v: float) =
            if Double.IsFinite v then
                w.WriteNumber(name, v)
            else
                w.WriteNull name

        let records =
            s.Progress.Records
            @ (s.Progress.Pending |> Option.map (fun p -> p.Record) |> Option.toList)

        for r in records do
            w.WriteStartObject()
            w.WriteNumber("round", r.Round)
            w.WriteNumber("labels", r.Labelled)
            number "accuracy" r.TestAccuracy

            for name, v in r.StopSignals do
                number name v

            w.WriteEndObject()

        w.WriteEndArray()

        match s.Progress.Stopped with
        | Some why -> w.WriteString("stopped", why)
        | None -> w.WriteNull "stopped"

        w.WriteEndObject()

    Encoding.UTF8.GetString(stream.ToArray())
