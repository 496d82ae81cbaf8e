/// A command never writes over what it reads: before anything is written, each output is checked against the
/// command's inputs (Files.inside), so `waal predict --out` cannot land on the model's own model.json, a run or
/// a labelling session cannot write into the images it reads, and an export cannot copy images back into them.
module Waal.Cli.Outputs

open Waal.Data

/// Refuses `output` (given as `option`) when it is, or lies in, one of `inputs` (what each is, and its path):
/// CliError.OutputInInput (CLI004), naming the option, the output and the input.
let refuse (option: string) (output: string) (inputs: (string * string) list) : Result<unit, string> =
    match Files.inside output (inputs |> List.map snd) with
    | None -> Ok()
    | Some input ->
        let what = inputs |> List.find (fun (_, p) -> p = input) |> fst

        Error(CliError.line (OutputInInput(option, output, input, what)))
