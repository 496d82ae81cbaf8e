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

/// The top level: `waal <command>`.
type WaalArgs =
    | [<CliPrefix(CliPrefix.None)>] Data of ParseResults<DataArgs>
    | Version

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Data _ -> "work with datasets."
            | Version -> "print the version."
