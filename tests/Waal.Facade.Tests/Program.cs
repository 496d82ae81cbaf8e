// The C# facade's tests, written in C# against its public API, run by Expecto's C# runner; the last line is the
// plain "N passed, N failed, N skipped" that build/test.sh totals.
using System.Diagnostics;
using System.Reflection;
using Expecto;
using Expecto.CSharp;
using Microsoft.FSharp.Core;
using Waal;

var fashion = Environment.GetEnvironmentVariable("WAAL_FASHION_MNIST") ?? "/usr/share/datasets/fashion-mnist";
var pool = LearnerData.FashionMnist(fashion, train: true, take: 1200);
var test = LearnerData.FashionMnist(fashion, train: false, take: 1000);
var options = new LearnerOptions { Epochs = 1, Seed = 3, Threads = 2 };
var sampleDll = Path.Combine(AppContext.BaseDirectory, "Waal.Sample.dll");

void Check(bool condition, string what)
{
    if (!condition) throw new Exception(what);
}

var tests = Runner.TestList("Facade", new[]
{
    Runner.TestCase("no F# type appears in any public signature of the Waal assembly", () =>
    {
        var bad = PublicSignatureTypes(typeof(ActiveLearner).Assembly).Where(IsFSharpType).Select(t => t.ToString()).Distinct().ToList();
        Check(bad.Count == 0, "F# types in public signatures: " + string.Join(", ", bad));
    }),

    Runner.TestCase("the public surface of each library equals its checked baseline (WAAL_UPDATE_API=1 rewrites them)", () =>
    {
        var folder = PublicApi.BaselineFolder(RepoRoot());
        var update = Environment.GetEnvironmentVariable("WAAL_UPDATE_API") == "1";
        var changed = new List<string>();
        foreach (var name in PublicApi.Assemblies)
        {
            var listing = PublicApi.Listing(Assembly.Load(name));
            var file = Path.Combine(folder, name + ".txt");
            if (update)
            {
                Directory.CreateDirectory(folder);
                File.WriteAllText(file, listing);
                continue;
            }
            var baseline = File.Exists(file) ? File.ReadAllText(file) : "";
            if (baseline == listing) continue;
            var was = baseline.Split('\n').ToHashSet();
            var now = listing.Split('\n').ToHashSet();
            string Shown(IEnumerable<string> lines) => string.Join(" | ", lines.Take(5)) + (lines.Count() > 5 ? $" (and {lines.Count() - 5} more)" : "");
            changed.Add($"{file}: added [{Shown(now.Except(was))}], removed [{Shown(was.Except(now))}]");
        }
        Check(changed.Count == 0, "the public API changed; if that is intended, review it and rerun with WAAL_UPDATE_API=1: " + string.Join("; ", changed));
    }),

    Runner.TestCase("a round from C#: initial labels, train, evaluate, query, label through an oracle", async () =>
    {
        using var learner = ActiveLearner.Create(pool, options, test);
        var initial = learner.DrawInitial(100);
        Check(initial.Count == 100 && initial.Distinct().Count() == 100, "100 distinct initial indices");
        learner.AddLabels(initial, initial.Select(i => pool.Labels[i]).ToList());
        Check(learner.Labelled.Count == 100 && learner.Unlabelled.Count == 1100, "labelled and unlabelled partition the pool");

        var reports = new List<RoundProgress>();
        var progress = new SyncProgress(reports.Add);
        var oracle = Oracle.FromFunc(ix => ix.Select(i => pool.Labels[i]).ToList());
        var result = await learner.RunRoundAsync(oracle, 50, progress);
        Check(result.Round == 0 && result.Labelled == 100, $"round 0 trained on 100 labels, found {result}");
        Check(result.Queried.Count == 50 && result.Queried.All(i => initial.Contains(i) == false), "50 new indices");
        Check(result.TestAccuracy is > 0.0 and <= 1.0, $"an accuracy, found {result.TestAccuracy}");
        Check(result.Steps == 47, $"the recommended floor budget: 1 x ceil(max(100, 3000) / 64) = 47 steps, found {result.Steps}");
        Check(learner.Labelled.Count == 150 && learner.LabelOf(result.Queried[0]) == pool.Labels[result.Queried[0]], "the oracle's labels were added");
        Check(reports.Any(r => r.Phase == "round 0 training (47 steps)" && r.Done == 47) && reports.Any(r => r.Phase == "query"), "progress for training (one phase for the round) and the query");
    }),

    Runner.TestCase("propose leaves a batch pending; accept takes labels for exactly that batch", async () =>
    {
        using var learner = ActiveLearner.Create(pool, options with { Strategy = Strategy.Entropy, Epochs = 2 }, test);
        var first = learner.DrawInitial(100);
        learner.AddLabels(first, first.Select(i => pool.Labels[i]).ToList());
        var pending = await learner.ProposeAsync(30);
        Check(learner.Pending! with { Signals = pending.Signals } == pending && learner.Pending!.Signals.SequenceEqual(pending.Signals) && pending.Indices.Count == 30 && pending.Round == 0 && pending.Labelled == 100, $"pending: {pending}");
        Check(pending.TestAccuracy is > 0.0 and <= 1.0, "the round's accuracy comes with the batch");
        Check(learner.Labelled.Count == 100, "nothing labelled yet");
        Expect(() => learner.AddLabels(new[] { pending.Indices[0] }, new[] { 0 }), "EXP011");
        await ExpectAsync(() => learner.ProposeAsync(10), "EXP011");
        Expect(() => learner.Accept(new[] { 1, 2 }), "EXP010");
        Expect(() => learner.Accept(pending.Indices.Select(_ => 10).ToList()), "EXP010");
        Check(learner.Pending! with { Signals = pending.Signals } == pending && learner.Labelled.Count == 100, "refused labels change nothing");
        // What a page of one's own shows beside each image: the model's probabilities for the pending batch.
        var guesses = await learner.PredictPoolAsync(pending.Indices);
        Check(guesses.Count == 30 && guesses.All(row => row.Count == 10 && Math.Abs(row.Sum() - 1.0) < 1e-4 && row.All(p => p >= 0.0)), "one probability row per pending index");
        var again = await learner.PredictPoolAsync(new[] { pending.Indices[3] });
        // Alone, an image goes through other oneDNN kernels (batch size 1): the same within 1e-5, not bit for bit.
        Check(again[0].Zip(guesses[3]).All(p => Math.Abs(p.First - p.Second) < 1e-5), "a row does not depend on the other indices asked");
        Throws<ArgumentOutOfRangeException>(() => learner.PredictPoolAsync(new[] { 1200 }));
        var result = learner.Accept(pending.Indices.Select(i => pool.Labels[i]).ToList());
        Check(result.Round == 0 && result.Queried.SequenceEqual(pending.Indices) && learner.Pending is null, "round 0 complete");
        Check(learner.Labelled.Count == 130 && learner.Round == 1, "labels added, round 1 next");
        Expect(() => learner.Accept(new[] { 1 }), "EXP011");
    }),

    Runner.TestCase("bad labels and bad arguments are refused with a code and change nothing", async () =>
    {
        using var learner = ActiveLearner.Create(pool, options);
        learner.AddLabels(new[] { 1, 2 }, new[] { 3, 4 });
        Expect(() => learner.AddLabels(new[] { 5, 5 }, new[] { 1, 1 }), "EXP010");
        Expect(() => learner.AddLabels(new[] { 2 }, new[] { 1 }), "EXP010");
        Expect(() => learner.AddLabels(new[] { 7 }, new[] { 10 }), "EXP010");
        Expect(() => learner.AddLabels(new[] { 1200 }, new[] { 1 }), "EXP010");
        Check(learner.Labelled.SequenceEqual(new[] { 1, 2 }), "nothing changed");
        await ExpectAsync(() => learner.EvaluateAsync(), "EXP012");
        await ExpectAsync(() => learner.PredictPoolAsync(new[] { 1 }), "EXP012");
        Throws<ArgumentNullException>(() => learner.AddLabels(null!, new[] { 1 }));
        Throws<ArgumentOutOfRangeException>(() => learner.ProposeAsync(0));
        Throws<ArgumentOutOfRangeException>(() => learner.DrawInitial(-1));
        Throws<ArgumentOutOfRangeException>(() => learner.LabelOf(1200));
        Throws<ArgumentNullException>(() => ActiveLearner.Create(null!));
        Expect(() => ActiveLearner.Create(pool, options with { Epochs = 0 }), "EXP001");
        Expect(() => ActiveLearner.Create(pool, options with { Momentum = 1.5 }), "EXP001");
        Expect(() => ActiveLearner.Create(pool, options with { Strategy = (Strategy)99 }), "EXP002");
    }),

    Runner.TestCase("after Dispose every call throws ObjectDisposedException; Dispose during a proposal cancels it", async () =>
    {
        var learner = ActiveLearner.Create(pool, options with { Epochs = 50 });
        var first = learner.DrawInitial(100);
        learner.AddLabels(first, first.Select(i => pool.Labels[i]).ToList());
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = learner.ProposeAsync(10, new SyncProgress(p => { if (p.Done >= 2) started.TrySetResult(); }));
        await started.Task;
        var clock = Stopwatch.StartNew();
        learner.Dispose();
        Check(clock.Elapsed < TimeSpan.FromSeconds(20), $"Dispose waited for the proposal to stop ({clock.Elapsed})");
        try { await running; throw new Exception("the proposal was not cancelled"); }
        catch (OperationCanceledException) { }
        Throws<ObjectDisposedException>(() => learner.DrawInitial(1));
        Throws<ObjectDisposedException>(() => _ = learner.Labelled);
        Throws<ObjectDisposedException>(() => learner.ProposeAsync(1));
        learner.Dispose();
    }),

    Runner.TestCase("cancellation stops training between steps", async () =>
    {
        using var learner = ActiveLearner.Create(pool, options with { Epochs = 50 });
        var first = learner.DrawInitial(100);
        learner.AddLabels(first, first.Select(i => pool.Labels[i]).ToList());
        using var cts = new CancellationTokenSource();
        var progress = new SyncProgress(p => { if (p.Done >= 5) cts.Cancel(); });
        var clock = Stopwatch.StartNew();
        try
        {
            await learner.ProposeAsync(10, progress, cts.Token);
            throw new Exception("training was not cancelled");
        }
        catch (OperationCanceledException) { }
        Check(clock.Elapsed < TimeSpan.FromSeconds(20), $"stopped early ({clock.Elapsed})");
        Check(!learner.IsTrained && learner.Pending is null, "no half-trained model is kept, nothing pending");
    }),

    Runner.TestCase("a saved session continues another day: same labels, same model, the same pending batch", async () =>
    {
        var folder = Path.Combine(Path.GetTempPath(), "waal-facade-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var learner = ActiveLearner.Create(pool, options, test);
            var first = learner.DrawInitial(100);
            learner.AddLabels(first, first.Select(i => pool.Labels[i]).ToList());
            var pending = await learner.ProposeAsync(40);
            var accuracy = await learner.EvaluateAsync();
            await learner.SaveAsync(folder);

            using var again = await ActiveLearner.LoadAsync(folder, pool, test);
            Check(again.Labelled.SequenceEqual(learner.Labelled) && again.Round == 0, "labels and round restored");
            Check(await again.EvaluateAsync() == accuracy, "the same weights");
            Check(again.Pending is { } p && p.Indices.SequenceEqual(pending.Indices) && p.TestAccuracy == pending.TestAccuracy, "the same pending batch");
            var a = learner.Accept(pending.Indices.Select(i => pool.Labels[i]).ToList());
            var b = again.Accept(pending.Indices.Select(i => pool.Labels[i]).ToList());
            Check(a == b || (a.Round == b.Round && a.Queried.SequenceEqual(b.Queried)), "the same round completes");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, true);
        }
    }),

    Runner.TestCase("the console sample killed while a person labels restarts with the same batch and every label kept", async () =>
    {
        var folder = Path.Combine(Path.GetTempPath(), "waal-sample-" + Guid.NewGuid().ToString("N"));
        try
        {
            // A person at the console: the initial labels typed, then the process killed while round 0's batch waits.
            var info = new ProcessStartInfo("dotnet") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { sampleDll, fashion, "--session", folder, "--epochs", "1" }) info.ArgumentList.Add(a);
            using (var person = Process.Start(info)!)
            {
                var prompt = await ReadUntil(person.StandardOutput, l => l.StartsWith("label 200 images"));
                var initial = Indices(prompt);
                var all = LearnerData.FashionMnist(fashion, train: true, take: 2000);
                await person.StandardInput.WriteLineAsync(string.Join(" ", initial.Select(i => all.Labels[i])));
                await person.StandardInput.FlushAsync();
                var waiting = Indices(await ReadUntil(person.StandardOutput, l => l.StartsWith("label 100 images")));
                person.Kill(entireProcessTree: true);
                await person.WaitForExitAsync();

                var small = LearnerData.FashionMnist(fashion, train: true, take: 2000);
                using (var saved = await ActiveLearner.LoadAsync(folder, small))
                {
                    Check(saved.Labelled.Count == 200 && saved.Labelled.All(i => saved.LabelOf(i) == small.Labels[i]), "the typed labels were kept");
                    Check(saved.Pending is { } p && p.Indices.SequenceEqual(waiting), "the waiting batch was kept");
                }

                // Restarted: the same batch comes back first (not proposed again), and the run completes.
                var again = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
                foreach (var a in new[] { sampleDll, fashion, "--session", folder, "--auto", "--epochs", "1" }) again.ArgumentList.Add(a);
                using var resumed = Process.Start(again)!;
                var stdout = resumed.StandardOutput.ReadToEndAsync();
                var stderr = resumed.StandardError.ReadToEndAsync();
                await resumed.WaitForExitAsync();
                var lines = (await stdout).Split('\n');
                Check(resumed.ExitCode == 0, $"exit code {resumed.ExitCode}: {await stderr}");
                var firstPrompt = lines.First(l => l.StartsWith("label "));
                Check(Indices(firstPrompt).SequenceEqual(waiting), $"the same batch first, found: {firstPrompt}");
                Check(lines.Any(l => l.StartsWith("labelled now: 500 of 2000")), "200 + 3 x 100 labels");
            }
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, true);
        }
    }),

    Runner.TestCase("the console sample runs three rounds with its oracle fed from the hidden labels", () =>
    {
        var dll = sampleDll;
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(dll);
        info.ArgumentList.Add(fashion);
        info.ArgumentList.Add("--auto");
        // The flow (prompts, rounds, labels) is what is checked here: one epoch a round (47 steps) trains enough.
        info.ArgumentList.Add("--epochs");
        info.ArgumentList.Add("1");
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        var lines = stdout.Result.Split('\n');
        Check(p.ExitCode == 0, $"exit code {p.ExitCode}: {stderr}");
        Check(lines.Count(l => l.StartsWith("round ")) == 3, "three rounds");
        Check(lines.Count(l => l.StartsWith("label ")) == 4, "the oracle asked four times (initial + 3 rounds)");
        Check(lines.Any(l => l.StartsWith("labelled now: 500 of 2000")), "200 + 3 x 100 labels");
    }),

    Runner.TestCase("a folder of unlabelled photos from C#: files for every index, an oracle by file, a label budget that stops", async () =>
    {
        var raw = Waal.Data.Load.fashionMnist(fashion).ResultValue.Item1;
        var data = Path.Combine(Path.GetTempPath(), "waal-facade-photos-" + Guid.NewGuid().ToString("N"));
        var saved = data + "-session";
        try
        {
            WriteFolder(raw, data, 20);
            var labelled = LearnerData.FromFolder(data);
            Check(labelled.Count == 60 && labelled.ClassNames.SequenceEqual(new[] { "bag", "dress", "trouser" }), "60 images, classes by folder");
            var (heldPool, heldTest) = labelled.HoldOut(0.25);
            Check(heldPool.Count == 45 && heldTest.Count == 15, "5 of each class held out");

            var classNames = new[] { "bag", "dress", "trouser" };
            var photos = LearnerData.FromImages(data, classNames);
            Check(photos.Files.SequenceEqual(labelled.Files), "the same files in the same order");
            Expect(() => LearnerData.FromImages(data + "-none", classNames), "DATA001");

            using var learner = ActiveLearner.Create(photos, new LearnerOptions { Epochs = 1, Floor = 64, Seed = 2, Threads = 2, StopWhen = "labels>=15", StopSet = 30 });
            var asked = new List<string>();
            // The "person": answers from the file's folder, and sees only file names.
            var oracle = Oracle.FromFunc(ix =>
            {
                var files = ix.Select(i => photos.Files[i]).ToList();
                asked.AddRange(files);
                return files.Select(f => Array.IndexOf(classNames, f.Split('/')[0])).ToList();
            });
            var initial = learner.DrawInitial(9);
            learner.AddLabels(initial, initial.Select(i => Array.IndexOf(classNames, photos.Files[i].Split('/')[0])).ToList());
            var round = await learner.RunRoundAsync(oracle, 10);
            Check(round.Queried.Count == 6, $"the budget cuts the query to 6, found {round.Queried.Count}");
            Check(round.Signals.ContainsKey("stop_uncertainty") && !round.Signals.ContainsKey("stop_kappa"), "round 0: uncertainty, no kappa yet");
            Check(asked.Count == 6, "the oracle saw the six files");
            await ExpectAsync(() => learner.ProposeAsync(10), "EXP014");
            Check(learner.StoppedBy is { } why && why.StartsWith("labels>=15: 15 labels"), $"why it stopped: {learner.StoppedBy}");

            await learner.SaveAsync(saved);
            var log = File.ReadAllText(Path.Combine(saved, "labels.json"));
            Check(log.Contains("\"classNames\":[\"bag\",\"dress\",\"trouser\"]") && log.Contains(asked[0]), "labels.json names classes and files");
        }
        finally
        {
            foreach (var d in new[] { data, saved })
                if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }),

    Runner.TestCase("a pretrained backbone from C#: the folder decoded for it, a round on its embeddings, a bad one refused", async () =>
    {
        var raw = Waal.Data.Load.fashionMnist(fashion).ResultValue.Item1;
        var data = Path.Combine(Path.GetTempPath(), "waal-facade-backbone-" + Guid.NewGuid().ToString("N"));
        var models = data + "-models";
        var run = data + "-run";
        var modelDir = data + "-model";
        try
        {
            WriteFolder(raw, data, 20);
            // An untrained backbone, traced by Debian's PyTorch (tests/Shared/backbone.py): a pipeline test.
            var python = Process.Start(new ProcessStartInfo("/usr/bin/python3")
            {
                ArgumentList = { Path.Combine(RepoRoot(), "tests", "Shared", "backbone.py"), "random", models },
                RedirectStandardError = true,
            })!;
            var pythonErrors = python.StandardError.ReadToEnd();
            python.WaitForExit();
            Check(python.ExitCode == 0, $"backbone.py random: {pythonErrors}");
            var backbone = Path.Combine(models, "random.pt");

            Expect(() => LearnerData.FromFolder(data, imageSize: 20, backbone: backbone), "EXP001");
            var photos = LearnerData.FromFolder(data, backbone: backbone);
            Check(photos.Count == 60, $"60 images, found {photos.Count}");
            Expect(() => ActiveLearner.Create(photos, new LearnerOptions { Backbone = Path.Combine(models, "none.pt") }), "EXP015");

            using var learner = ActiveLearner.Create(photos, new LearnerOptions { Backbone = backbone, Epochs = 1, Floor = 64, Seed = 2, Threads = 2 });
            int LabelOf(int i) => Array.IndexOf(photos.ClassNames.ToArray(), photos.Files[i].Split('/')[0]);
            var initial = learner.DrawInitial(9);
            learner.AddLabels(initial, initial.Select(LabelOf).ToList());
            var batch = await learner.ProposeAsync(6);
            learner.Accept(batch.Indices.Select(LabelOf).ToList());
            Check(learner.Labelled.Count == 15, $"15 labels, found {learner.Labelled.Count}");
            var p = await learner.PredictPoolAsync(new[] { 0, 1, 2 });
            Check(p.All(row => row.Count == 3 && Math.Abs(row.Sum() - 1.0) < 1e-5), "class probabilities for pool items");

            // A run with the backbone, exported: WaalModel embeds each image with the copy inside the model.
            var given = new[]
            {
                ("dataset", "folder"), ("data-dir", data), ("backbone", backbone), ("initial", "9"), ("query", "9"),
                ("rounds", "1"), ("epochs", "1"), ("floor", "64"), ("threads", "2"),
            }.Select(g => Tuple.Create(Waal.Core.Options.tryFind(g.Item1).Value, g.Item2));
            var config = Waal.Core.Options.build(
                FuncConvert.FromFunc<string, string, Waal.Core.Preset, FSharpResult<Waal.Core.Configuration, string>>(Waal.Data.Datasets.defaultsFor),
                Waal.Core.Options.fallbacks(Microsoft.FSharp.Collections.ListModule.OfSeq(new[] { Tuple.Create("strategy", "waal"), Tuple.Create("preset", "recommended") })),
                Microsoft.FSharp.Collections.ListModule.OfSeq(given));
            Check(config.IsOk, "the run's options");
            var ran = Waal.Experiments.Runner.run(config.ResultValue, run, false, Waal.Experiments.Runner.quiet);
            Check(ran.IsOk, ran.IsOk ? "" : Waal.Experiments.ExperimentErrorModule.line(ran.ErrorValue));
            Check(Waal.Experiments.ModelExport.export(run, modelDir).IsOk, "export");
            using var model = WaalModel.Load(modelDir);
            Check(model.Network == "head", $"a head, found {model.Network}");
            var files = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).Take(6).ToList();
            var rows = Waal.Experiments.Model.predictFiles(modelDir, Microsoft.FSharp.Collections.ListModule.OfSeq(files), false, 250).ResultValue.Item2.ToList();
            var predicted = model.Predict(files);
            for (var j = 0; j < files.Count; j++)
                Check(predicted[j].Probabilities.SequenceEqual(rows[j].Item2.Probabilities.Select(v => (double)v)), $"{files[j]}: as waal predict, bit for bit");
        }
        finally
        {
            foreach (var d in new[] { data, models, run, modelDir })
                if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }),

    Runner.TestCase("an exported model predicts from C#: a batch of files exactly as waal predict, one path, stream or bytes alike", () =>
    {
        var raw = Waal.Data.Load.fashionMnist(fashion).ResultValue.Item1;
        var data = Path.Combine(Path.GetTempPath(), "waal-facade-model-" + Guid.NewGuid().ToString("N"));
        var run = data + "-run";
        var modelDir = data + "-model";
        try
        {
            // Three class folders of grey 28x28 PNGs written from real Fashion-MNIST images.
            WriteFolder(raw, data, 30);

            // The run's options as the table's text, built by Options.build as every front end builds them.
            var given = new[]
            {
                ("dataset", "folder"), ("data-dir", data), ("image-size", "20"), ("initial", "9"), ("query", "9"),
                ("rounds", "1"), ("epochs", "2"), ("floor", "32"), ("batch-size", "16"), ("threads", "2"),
            }.Select(p => Tuple.Create(Waal.Core.Options.tryFind(p.Item1).Value, p.Item2));
            var config = Waal.Core.Options.build(
                FuncConvert.FromFunc<string, string, Waal.Core.Preset, FSharpResult<Waal.Core.Configuration, string>>(Waal.Data.Datasets.defaultsFor),
                Waal.Core.Options.fallbacks(Microsoft.FSharp.Collections.ListModule.OfSeq(new[] { Tuple.Create("strategy", "waal"), Tuple.Create("preset", "recommended") })),
                Microsoft.FSharp.Collections.ListModule.OfSeq(given));
            Check(config.IsOk, config.IsOk ? "" : string.Join("; ", config.ErrorValue.Select(e => e.Field + ": " + e.Message)));
            var ran = Waal.Experiments.Runner.run(config.ResultValue, run, false, Waal.Experiments.Runner.quiet);
            Check(ran.IsOk, ran.IsOk ? "" : Waal.Experiments.ExperimentErrorModule.line(ran.ErrorValue));
            var exported = Waal.Experiments.ModelExport.export(run, modelDir);
            Check(exported.IsOk, "export");

            using var model = WaalModel.Load(modelDir);
            Check(model.ClassNames.SequenceEqual(new[] { "bag", "dress", "trouser" }), "class names in ordinal order");
            Check(model.Network == "resnet" && model.Shape == (1, 20, 20), $"resnet 1x20x20, found {model.Network} {model.Shape}");

            var files = Directory.GetFiles(data, "*.png", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).Take(12).ToList();
            var cliRows = Waal.Experiments.Model.predictFiles(modelDir, Microsoft.FSharp.Collections.ListModule.OfSeq(files), false, 250);
            Check(cliRows.IsOk, "waal predict's function");
            var rows = cliRows.ResultValue.Item2.ToList();
            var batch = model.Predict(files);
            for (var j = 0; j < files.Count; j++)
            {
                var expected = rows[j].Item2.Probabilities.Select(v => (double)v).ToList();
                Check(batch[j].Probabilities.SequenceEqual(expected), $"{files[j]}: a batch gives waal predict's probabilities, bit for bit");
                // One image at a time runs other CPU kernels (batch size 1): the same to float precision.
                var fromPath = model.Predict(files[j]);
                using var stream = File.OpenRead(files[j]);
                var fromStream = model.Predict(stream);
                var fromBytes = model.Predict(File.ReadAllBytes(files[j]));
                Check(fromStream.Probabilities.SequenceEqual(fromPath.Probabilities) && fromBytes.Probabilities.SequenceEqual(fromPath.Probabilities),
                    $"{files[j]}: path, stream and bytes give the same probabilities, bit for bit");
                Check(fromPath.Probabilities.Zip(expected).All(z => Math.Abs(z.First - z.Second) < 1e-5), $"{files[j]}: one image alone, within 1e-5");
                Check(fromPath.ClassIndex == rows[j].Item2.Class && fromPath.ClassName == model.ClassNames[fromPath.ClassIndex], "the same class");
                Check(Math.Abs(fromPath.Probabilities.Sum() - 1.0) < 1e-5, "probabilities sum to 1");
            }

            Expect(() => model.Predict(new byte[] { 1, 2, 3, 4 }), "DATA005");
            Expect(() => model.Predict(Path.Combine(data, "none.png")), "DATA001");
            // A stream without end (as /dev/zero is) is read no further than the image cap, then refused.
            using (var endless = File.OpenRead("/dev/zero"))
                Expect(() => model.Predict(endless, "endless"), "DATA015");
            var device = Path.Combine(data, "zero.png");
            File.CreateSymbolicLink(device, "/dev/zero");
            Expect(() => model.Predict(device), "DATA014");
            Expect(() => WaalModel.Load(data + "-none"), "MODEL001");
            Expect(() => WaalModel.Load(data), "MODEL001");
        }
        finally
        {
            foreach (var d in new[] { data, run, modelDir })
                if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }),
});

var summary = Expecto.Tests.CLIArguments.NewAppend_Summary_Handler(Expecto.Tests.SummaryHandler.NewSummaryHandler(FuncConvert.FromAction<Impl.TestRunSummary>(s =>
    Console.WriteLine($"\n{s.passed.Length} passed, {s.failed.Length + s.errored.Length} failed, {s.ignored.Length} skipped"))));
return Runner.RunTestsWithCLIArgs(new[] { summary }, args, Runner.TestSequenced(tests));

// Three class folders (trouser, dress, bag) of grey 28x28 PNGs, `perClass` each, from real Fashion-MNIST images.
static void WriteFolder(Waal.Data.Dataset raw, string data, int perClass)
{
    var names = new[] { "trouser", "dress", "bag" };
    var classes = new[] { 1, 3, 8 };
    for (var c = 0; c < 3; c++)
    {
        var dir = Directory.CreateDirectory(Path.Combine(data, names[c])).FullName;
        var written = 0;
        for (var i = 0; i < raw.Count && written < perClass; i++)
        {
            if (raw.Labels[i] != classes[c]) continue;
            using var bitmap = new SkiaSharp.SKBitmap(new SkiaSharp.SKImageInfo(28, 28, SkiaSharp.SKColorType.Gray8, SkiaSharp.SKAlphaType.Opaque));
            System.Runtime.InteropServices.Marshal.Copy(raw.Images, i * 784, bitmap.GetPixels(), 784);
            using var png = bitmap.Encode(SkiaSharp.SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(Path.Combine(dir, $"{i:D5}.png"), png.ToArray());
            written++;
        }
    }
}

static string RepoRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Waal.Functional.sln"))) dir = dir.Parent;
    return dir?.FullName ?? throw new Exception("Waal.Functional.sln not found above the test assembly");
}

static void Expect(Action act, string code)
{
    try { act(); }
    catch (WaalException e) when (e.Code == code) { return; }
    throw new Exception($"expected WaalException {code}");
}

static void Throws<T>(Action act) where T : Exception
{
    try { act(); }
    catch (T) { return; }
    throw new Exception($"expected {typeof(T).Name}");
}

static async Task<string> ReadUntil(StreamReader reader, Func<string, bool> wanted)
{
    using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
    while (await reader.ReadLineAsync(timeout.Token) is { } line)
        if (wanted(line)) return line;
    throw new Exception("the process ended before the expected line");
}

static int[] Indices(string prompt)
{
    // "label N images (indices a b c ...):"
    var inside = prompt[(prompt.IndexOf("indices ", StringComparison.Ordinal) + 8)..prompt.LastIndexOf(')')];
    return inside.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
}

static async Task ExpectAsync(Func<Task> act, string code)
{
    try { await act(); }
    catch (WaalException e) when (e.Code == code) { return; }
    throw new Exception($"expected WaalException {code}");
}

static IEnumerable<Type> PublicSignatureTypes(Assembly assembly)
{
    IEnumerable<Type> Expand(Type t) =>
        new[] { t }.Concat(t.IsGenericType ? t.GetGenericArguments().SelectMany(Expand) : Enumerable.Empty<Type>())
                   .Concat(t.HasElementType ? Expand(t.GetElementType()!) : Enumerable.Empty<Type>());

    const BindingFlags all = BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
    foreach (var type in assembly.GetExportedTypes())
    {
        if (type.BaseType is { } b) foreach (var x in Expand(b)) yield return x;
        foreach (var i in type.GetInterfaces()) foreach (var x in Expand(i)) yield return x;
        foreach (var m in type.GetMethods(all))
        {
            foreach (var x in Expand(m.ReturnType)) yield return x;
            foreach (var p in m.GetParameters()) foreach (var x in Expand(p.ParameterType)) yield return x;
        }
        foreach (var c in type.GetConstructors(all)) foreach (var p in c.GetParameters()) foreach (var x in Expand(p.ParameterType)) yield return x;
        foreach (var p in type.GetProperties(all)) foreach (var x in Expand(p.PropertyType)) yield return x;
        foreach (var f in type.GetFields(all)) foreach (var x in Expand(f.FieldType)) yield return x;
    }
}

static bool IsFSharpType(Type t) =>
    t.Assembly.GetName().Name == "FSharp.Core"
    || t.GetCustomAttributes(inherit: false).Any(a => a.GetType().FullName == "Microsoft.FSharp.Core.CompilationMappingAttribute");

/// <summary>Reports synchronously (Progress&lt;T&gt; posts to the thread pool, too late for assertions).</summary>
sealed class SyncProgress(Action<RoundProgress> report) : IProgress<RoundProgress>
{
    public void Report(RoundProgress value) => report(value);
}
