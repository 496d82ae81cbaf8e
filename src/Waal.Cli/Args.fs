/// The command line's grammar (Argu).
module Waal.Cli.Args

open Argu

/// The data formats `--format` accepts.
type FormatArg =
    | Idx
    | Cifar10
    | Svhn

/// `waal data inspect PATH [--format F] [--labels PATH]`.
type InspectArgs =
    | [<MainCommand; ExactlyOnce>] Path of path: string
    | Format of FormatArg
    | Labels of path: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Path _ -> "a data file or folder (IDX images file, CIFAR-10 batch or folder, SVHN .mat)."
            | Format _ -> "the format; guessed from the path when omitted (.mat: svhn, .bin: cifar10, else idx)."
            | Labels _ -> "IDX only: the labels file (default: beside the images, by the standard names)."

/// `waal data ...`.
type DataArgs =
    | [<CliPrefix(CliPrefix.None)>] Inspect of ParseResults<InspectArgs>

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Inspect _ -> "read a dataset, validate it, and print its size, shape and per-class counts."

/// `waal run --dataset NAME[=DIR] [--OPTION VALUE]... --out DIR [--force]`: the options are the option table's
/// (Waal.Core.Options), parsed by it; Argu only gathers them. `waal run --help` lists them.
type RunArgs =
    | [<Mandatory>] Out of folder: string
    | Force
    | [<GatherUnrecognized; Hidden>] Option_Text of text: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Out _ -> "the folder for spec.json, rounds.csv, labels.json, progress.json, checkpoint/."
            | Force -> "replace an experiment already in --out."
            | Option_Text _ -> "an experiment option (see below)."

/// `waal query-times --dataset NAME[=DIR] [--OPTION VALUE]...`: one trained WAAL model (the spec's initial
/// labels, its training options), every strategy's query of the spec's query size timed on the same pool. The
/// options are the option table's, parsed by it as for `waal run` (its defaults, listed by `--help`), except the
/// pool: the first 50,000 training images unless --pool is given (the paper's Table 1).
type QueryTimesArgs =
    | [<GatherUnrecognized; Hidden>] Option_Text of text: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Option_Text _ -> "an experiment option (see below)."

/// `waal resume DIR`.
type ResumeArgs =
    | [<MainCommand; ExactlyOnce>] Folder of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Folder _ -> "the folder of an interrupted 'waal run'."

/// `waal query RUN_DIR --out FILE`: the run's next batch over its last trained networks; in one process, one
/// shard of it (`--shard S/N`), the merge of the shards' files (`--merge`), or all of it on Slurm (`--slurm`).
type QueryArgs =
    | [<MainCommand; ExactlyOnce>] Run_Folder of folder: string
    | [<Mandatory>] Out of file: string
    | Shard of shard_of: string
    | Merge of files: string list
    | Slurm of shards: int
    | No_Wait
    | Partition of name: string
    | Time of limit: string
    | Cpus of count: int
    | Memory of size: string
    | Account of name: string
    | Gpus of count: int
    | Sbatch_Args of text: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Run_Folder _ -> "a run folder with at least one trained round (checkpoint/latest)."
            | Out _ -> "the batch as JSON (round, strategy, indices); with --shard, the shard's terms."
            | Shard _ -> "score only shard S of N (0 <= S < N) of the unlabelled pool."
            | Merge _ -> "merge the shard files of every shard into the batch."
            | Slurm _ -> "score in N shards as a Slurm job array, then merge in a dependent job."
            | No_Wait -> "with --slurm: return once the jobs are submitted."
            | Partition _ -> "with --slurm: sbatch --partition."
            | Time _ -> "with --slurm: sbatch --time for each job."
            | Cpus _ -> "with --slurm: sbatch --cpus-per-task (default 2)."
            | Memory _ -> "with --slurm: sbatch --mem (default 4G)."
            | Account _ -> "with --slurm: sbatch --account."
            | Gpus _ -> "with --slurm: sbatch --gres=gpu:N."
            | Sbatch_Args _ -> "with --slurm: further sbatch arguments, separated by spaces."

/// The accuracies `waal report --metric` reports.
type MetricArg =
    | Test
    | Validation

/// `waal report DIR... --out OUT [--metric test|validation]`.
type ReportArgs =
    | [<MainCommand; Mandatory>] Runs of folder: string list
    | [<Mandatory>] Out of folder: string
    | Metric of MetricArg
    | Compare of family: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Runs _ -> "run folders (each with spec.json and rounds.csv)."
            | Out _ -> "where report.md and learning_curve.png go."
            | Metric _ -> "the accuracy reported: test (default) or validation (runs made with --validation)."
            | Compare _ ->
                "a family of paired comparisons, comma-separated, each A:B (two-sided), A>B (A ahead) or A>B@MARGIN (A ahead of B + MARGIN points), A and B run-name prefixes before -seedN; Holm-corrected within the family (repeat the option for more families)."

/// `waal export RUN_DIR --out MODEL_DIR`.
type ExportArgs =
    | [<MainCommand; ExactlyOnce>] Run_Folder of folder: string
    | [<Mandatory>] Out of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Run_Folder _ -> "a run folder with at least one trained round."
            | Out _ -> "the model folder: model.json and the networks' weights."

/// `waal predict MODEL_OR_RUN_DIR --images PATH... --out predictions.csv`.
type PredictArgs =
    | [<MainCommand; ExactlyOnce>] Model of folder: string
    | [<Mandatory>] Images of paths: string list
    | [<Mandatory>] Out of file: string
    | Skip_Bad_Images
    | [<AltCommandLine("--batch")>] Score_Batch of count: int
    | Threads of count: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model _ -> "a model folder (waal export) or a run folder (its last trained round)."
            | Images _ -> "image files and folders (searched recursively; PNG, JPEG, BMP, WebP)."
            | Out _ -> "the CSV: path,class,probability, one probability column per class, margin, entropy."
            | Skip_Bad_Images -> "leave out files that cannot be decoded (each is reported) instead of stopping."
            | Score_Batch _ -> "images per forward pass (the option table's score-batch; default 250)."
            | Threads _ -> "libtorch threads (the option table's threads; default: libtorch's choice)."

/// `waal label --out SESSION --dataset images=DIR --classes a,b,c [--OPTION VALUE]...`: the labelling page.
type LabelArgs =
    | [<Mandatory>] Out of folder: string
    | Classes of names_or_file: string
    | Known_Labels of csv: string
    | Host of address: string
    | Port of port: int
    | [<GatherUnrecognized; Hidden>] Option_Text of text: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Out _ -> "the session folder (created, or reopened where the person left off)."
            | Classes _ ->
                "with --dataset images=DIR: the class names, comma-separated, or a file with one name per line."
            | Known_Labels _ ->
                "a CSV 'path,label' of labels already known (paths relative to DIR; empty label: unknown)."
            | Host _ -> "the address to listen on (default 127.0.0.1: this machine only)."
            | Port _ -> "the port (default 0: a free one)."
            | Option_Text _ -> "an experiment option (see 'waal run --help')."

/// `waal labels SESSION [--csv FILE] [--folders DIR] [--label-studio FILE] [--import-label-studio FILE]`.
type LabelsArgs =
    | [<MainCommand; ExactlyOnce>] Session of folder: string
    | Csv of file: string
    | Folders of folder: string
    | Label_Studio of file: string
    | Import_Label_Studio of file: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Session _ -> "the folder of a 'waal label' session (no server may be running on it)."
            | Csv _ -> "write every label given as 'path,class'."
            | Folders _ -> "copy every labelled image into DIR/<class>/<its path>."
            | Label_Studio _ -> "write the batch being labelled as Label Studio tasks (JSON)."
            | Import_Label_Studio _ -> "read Label Studio's JSON export of those tasks: their labels go into the batch."

/// The top level: `waal <command>`.
type WaalArgs =
    | [<CliPrefix(CliPrefix.None)>] Data of ParseResults<DataArgs>
    | [<CliPrefix(CliPrefix.None)>] Run of ParseResults<RunArgs>
    | [<CliPrefix(CliPrefix.None)>] Resume of ParseResults<ResumeArgs>
    | [<CliPrefix(CliPrefix.None)>] Report of ParseResults<ReportArgs>
    | [<CliPrefix(CliPrefix.None)>] Query of ParseResults<QueryArgs>
    | [<CliPrefix(CliPrefix.None)>] Query_Times of ParseResults<QueryTimesArgs>
    | [<CliPrefix(CliPrefix.None)>] Export of ParseResults<ExportArgs>
    | [<CliPrefix(CliPrefix.None)>] Predict of ParseResults<PredictArgs>
    | [<CliPrefix(CliPrefix.None)>] Label of ParseResults<LabelArgs>
    | [<CliPrefix(CliPrefix.None)>] Labels of ParseResults<LabelsArgs>
    | Version

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Data _ -> "work with datasets."
            | Run _ -> "run an active-learning experiment into a folder."
            | Resume _ -> "continue an interrupted experiment from its folder."
            | Report _ -> "write report.md and learning_curve.png for run folders."
            | Query _ -> "pick a run's next batch with its last model: in one process, in shards, or on Slurm."
            | Query_Times _ -> "time every strategy's query on one trained model and pool (the paper's Table 1)."
            | Export _ -> "write a run's last trained model, with what is needed to use it, into a folder."
            | Predict _ -> "predict the class of images with an exported model (or a run's last model)."
            | Label _ -> "label images in the browser: a local page shows each queried batch, training runs between."
            | Labels _ ->
                "export a labelling session's labels (CSV, class folders, Label Studio) or import Label Studio's."
            | Version -> "print the version."
