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

/// `--imbalance`.
type ImbalanceArg =
    | Reference
    | Paper
    | One

/// `--gp-sign`.
type GpSignArg =
    | Reference
    | Wgan_Gp

/// `--critic`.
type CriticArg =
    | Sigmoid
    | Linear

/// `--device`.
type DeviceArg =
    | Auto
    | Cpu
    | Cuda

/// `--bound`.
type BoundArg =
    | Mixed
    | L1
    | L2
    | Worst_Case

/// `--train-budget`.
type BudgetArg =
    | Epochs
    | Match_Waal

/// `--adversary`.
type AdversaryArg =
    | Wasserstein
    | H_Divergence

/// `--waal-score`.
type ScoreArg =
    | Combined
    | Uncertainty
    | Diversity

/// `waal run ...`: every experiment parameter; unset ones take the reference value.
type RunArgs =
    | [<Mandatory>] Dataset of name_and_folder: string
    | Strategy of name: string
    | Initial of count: int
    | Query of count: int
    | Rounds of count: int
    | Epochs of count: int
    | Seed of seed: int64
    | Pool of count: int
    | Threads of count: int
    | Device of DeviceArg
    | Score_Batch of count: int
    | Batch of count: int
    | Lr of rate: float
    | Momentum of momentum: float
    | Alpha of alpha: float
    | Selection of weight: float
    | Imbalance of ImbalanceArg
    | Gp_Sign of GpSignArg
    | Gp_Weight of weight: float
    | Critic of CriticArg
    | Bound of BoundArg
    | Augment
    | Train_Budget of BudgetArg
    | Adversary of AdversaryArg
    | Waal_Score of ScoreArg
    | [<Mandatory>] Out of folder: string
    | Force

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Dataset _ ->
                "fashion-mnist[=DIR], cifar10=DIR or svhn=DIR (fashion-mnist defaults to $WAAL_FASHION_MNIST or Debian's folder)."
            | Strategy _ -> "the query strategy (default waal)."
            | Initial _ -> "initial random labels (default 1000)."
            | Query _ -> "labels per query (default 1000)."
            | Rounds _ -> "query rounds; rounds 0..R are evaluated (default 5)."
            | Epochs _ -> "epochs per round (default 2 for waal; the baselines' reference 10, SVHN/CIFAR-10 20)."
            | Seed _ -> "the seed of every random stream (default 1)."
            | Pool _ -> "use the first P training images as the pool (default: all)."
            | Threads _ -> "libtorch threads (default: libtorch's choice)."
            | Device _ -> "where to compute (default auto: CUDA when available)."
            | Score_Batch _ -> "images per forward pass when scoring (default 250, measured: bench/)."
            | Batch _ -> "batch size, per half for WAAL (default 64)."
            | Lr _ -> "SGD learning rate (default 0.01)."
            | Momentum _ -> "SGD momentum (default 0.5; CIFAR-10 0.3)."
            | Alpha _ -> "weight of the adversarial terms (default 2e-3)."
            | Selection _ -> "weight of the critic in the query score (default 10)."
            | Imbalance _ -> "the coefficient c: reference |L|/|U|, the paper's C0, or one (default reference)."
            | Gp_Sign _ -> "gradient-penalty sign in the critic step (default reference: -1; wgan-gp: +1)."
            | Gp_Weight _ -> "gradient-penalty weight (default 2)."
            | Critic _ -> "the critic's output (default sigmoid)."
            | Bound _ -> "the uncertainty bound (default mixed: 0.5 L1 + 0.5 L2)."
            | Augment -> "random crop + flip for 3x32x32 data (default off, as in the paper)."
            | Train_Budget _ ->
                "baselines' training: epochs (E passes over the labelled set) or match-waal (as many steps as WAAL with E epochs)."
            | Adversary _ ->
                "WAAL's adversary: the Wasserstein critic, or the paper's H-divergence ablation (BCE discriminator)."
            | Waal_Score _ ->
                "WAAL's query ranking: combined (u - selection x critic), or the ablations uncertainty / diversity."
            | Out _ -> "the folder for spec.json, rounds.csv, labels.json, progress.json, checkpoint/."
            | Force -> "replace an experiment already in --out."

/// `waal query-times ...`: one trained WAAL model, every strategy's query timed on the same pool.
type QueryTimesArgs =
    | [<Mandatory>] Dataset of name_and_folder: string
    | Pool of count: int
    | Initial of count: int
    | Query of count: int
    | Epochs of count: int
    | Seed of seed: int64
    | Threads of count: int
    | Score_Batch of count: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Dataset _ -> "fashion-mnist[=DIR], cifar10=DIR or svhn=DIR."
            | Pool _ -> "the first P training images form the pool (default 50000)."
            | Initial _ -> "labelled items the model is trained on (default 1000)."
            | Query _ -> "items each strategy picks (default 1000)."
            | Epochs _ -> "WAAL epochs for the one model (default 2)."
            | Seed _ -> "seed (default 1)."
            | Threads _ -> "libtorch threads (default: libtorch's choice)."
            | Score_Batch _ -> "images per forward pass (default 250)."

/// `waal resume DIR`.
type ResumeArgs =
    | [<MainCommand; ExactlyOnce>] Folder of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Folder _ -> "the folder of an interrupted 'waal run'."

/// `waal report DIR... --out OUT`.
type ReportArgs =
    | [<MainCommand; Mandatory>] Runs of folder: string list
    | [<Mandatory>] Out of folder: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Runs _ -> "run folders (each with spec.json and rounds.csv)."
            | Out _ -> "where report.md and learning_curve.png go."

/// The top level: `waal <command>`.
type WaalArgs =
    | [<CliPrefix(CliPrefix.None)>] Data of ParseResults<DataArgs>
    | [<CliPrefix(CliPrefix.None)>] Run of ParseResults<RunArgs>
    | [<CliPrefix(CliPrefix.None)>] Resume of ParseResults<ResumeArgs>
    | [<CliPrefix(CliPrefix.None)>] Report of ParseResults<ReportArgs>
    | [<CliPrefix(CliPrefix.None)>] Query_Times of ParseResults<QueryTimesArgs>
    | Version

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Data _ -> "work with datasets."
            | Run _ -> "run an active-learning experiment into a folder."
            | Resume _ -> "continue an interrupted experiment from its folder."
            | Report _ -> "write report.md and learning_curve.png for run folders."
            | Query_Times _ -> "time every strategy's query on one trained model and pool (the paper's Table 1)."
            | Version -> "print the version."
