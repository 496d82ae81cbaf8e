using Microsoft.FSharp.Core;

namespace Waal;

/// <summary>Images (N x C x H x W unsigned bytes, row-major) with their class count, and labels when known
/// (for test data; for a pool, hidden labels are optional and never read by the learner).</summary>
public sealed class LearnerData
{
    internal LearnerData(Data.Dataset dataset) => Dataset = dataset;

    internal Data.Dataset Dataset { get; }

    /// <summary>The number of images.</summary>
    public int Count => Dataset.Count;

    /// <summary>The number of classes.</summary>
    public int Classes => Dataset.Classes;

    /// <summary>The labels given with the data (all zero when none were given).</summary>
    public IReadOnlyList<int> Labels => Dataset.Labels;

    /// <summary>One name per class (the class folders' names for <see cref="FromFolder"/>).</summary>
    public IReadOnlyList<string> ClassNames => Dataset.ClassNames;

    /// <summary>Each image's file, relative to the folder it was read from ('/' separators); empty for data
    /// from arrays or from the Fashion-MNIST files. Item i of a batch is the file at index i.</summary>
    public IReadOnlyList<string> Files => Dataset.Files;

    /// <summary>The folder the images were read from (or where the data came from).</summary>
    public string Source => Dataset.Source;

    /// <summary>Files left out because they could not be decoded (with <c>skipBadImages</c>), as
    /// <c>error CODE: file: message</c> lines.</summary>
    public IReadOnlyList<string> Skipped { get; private init; } = Array.Empty<string>();

    private static LearnerData OfRead(FSharpResult<Data.Folder.Read, Data.DataError> result) =>
        result.IsOk
            ? new LearnerData(result.ResultValue.Data)
            {
                Skipped = result.ResultValue.Skipped.Select(Data.DataErrorModule.line).ToList(),
            }
            : throw Errors.Data(result.ErrorValue);

    private static Core.ImageOptions FolderOptions(int imageSize, int channels, bool skipBadImages)
    {
        if (imageSize < 0) throw new ArgumentOutOfRangeException(nameof(imageSize), imageSize, "expected 0 (stored size) or a size in pixels");
        if (channels is not (0 or 1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "expected 0 (as the images), 1 or 3");
        // The folder reader uses size, channels and skipping; a holdout is the dataset's, not the reader's.
        return new Core.ImageOptions(imageSize, channels, skipBadImages, 0.0);
    }

    /// <summary>A labelled folder: one sub-folder per class (its name is the class name) of PNG, JPEG, BMP or WebP
    /// images. <paramref name="imageSize"/> N resizes each image's shorter side to N and keeps the centre N x N
    /// (0: every image at its stored size, which must be the same); <paramref name="channels"/> 1 or 3 (0: 1 when
    /// every image is grey). Throws <see cref="WaalException"/> with a DATA code naming the file on bad input.
    /// Use <see cref="DatasetKind.Folder"/> (the default for such data) so the normalisation comes from the pool.
    /// With <c>backbone</c> (the pretrained model the learner will use, <see cref="LearnerOptions.Backbone"/>) the
    /// images are decoded as its preparation file says, and <c>imageSize</c> and <c>channels</c> must be left at 0
    /// (EXP001; an unreadable preparation file is EXP015).</summary>
    public static LearnerData FromFolder(string folder, int imageSize = 0, int channels = 0, bool skipBadImages = false, string? backbone = null) =>
        OfRead(Data.Folder.read(Prepared(FolderOptions(imageSize, channels, skipBadImages), backbone), FSharpOption<string[]>.None, folder));

    /// <summary>The folder options as a backbone's preparation file sets them (EXP015 naming the file when it
    /// cannot be read; EXP001 when an image size or channel count is given beside it).</summary>
    private static Core.ImageOptions Prepared(Core.ImageOptions given, string? backbone)
    {
        if (backbone is null) return given;
        if (given.Size != 0 || given.Channels != 0)
            throw new WaalException(Errors.Code("SpecInvalid"), "imageSize, channels: a backbone's preparation decides them; leave them at 0");
        var prep = Learning.Backbone.readPreprocessing(backbone);
        return prep.IsOk
            ? Learning.Backbone.imageOptions(prep.ResultValue, given)
            : throw new WaalException(Errors.Code("BackboneFailed"), $"{prep.ErrorValue.File}: {prep.ErrorValue.Detail}");
    }

    /// <summary>A folder of images nobody has labelled yet (every image file below it, in path order): the
    /// learner's pool, labelled through an <see cref="IOracle"/> (a person, a service) with these class names.</summary>
    public static LearnerData FromImages(string folder, IReadOnlyList<string> classes, int imageSize = 0, int channels = 0, bool skipBadImages = false, string? backbone = null) =>
        OfRead(Data.Folder.readImages(Prepared(FolderOptions(imageSize, channels, skipBadImages), backbone), classes.ToArray(), folder));

    /// <summary>Splits labelled data into a pool and a held-out test part: <paramref name="fraction"/> of each class,
    /// drawn by a fixed seeded permutation (the same split every time).</summary>
    public (LearnerData Pool, LearnerData Test) HoldOut(double fraction = 0.2)
    {
        if (!(fraction > 0 && fraction < 1)) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "expected a fraction in (0, 1)");
        var split = Data.Folder.holdOut(fraction, Dataset);
        return (new LearnerData(split.Item1), new LearnerData(split.Item2));
    }

    /// <summary>Data from arrays; throws <see cref="WaalException"/> when the sizes disagree.</summary>
    public static LearnerData FromArrays(byte[] images, int channels, int height, int width, int classes, int[]? labels = null)
    {
        var size = channels * height * width;
        var count = size == 0 ? 0 : images.Length / size;
        var result = Data.DatasetModule.create("arrays", images, labels ?? new int[count], channels, height, width, classes);
        return result.IsOk ? new LearnerData(result.ResultValue) : throw Errors.Data(result.ErrorValue);
    }

    /// <summary>Fashion-MNIST's training (or test) split from the folder of the four official IDX files,
    /// optionally only the first <paramref name="take"/> images.</summary>
    public static LearnerData FashionMnist(string folder, bool train = true, int? take = null)
    {
        var result = Data.Load.fashionMnist(folder);
        if (result.IsError) throw Errors.Data(result.ErrorValue);
        var split = train ? result.ResultValue.Item1 : result.ResultValue.Item2;
        return new LearnerData(take is { } n ? Data.DatasetModule.take(n, split) : split);
    }
}

internal static class Errors
{
    public static WaalException Data(Data.DataError e) =>
        new(Waal.Data.DataErrorModule.code(e), $"{Waal.Data.DataErrorModule.file(e)}: {Waal.Data.DataErrorModule.message(e)}");

    public static WaalException Session(Experiments.ExperimentError e) =>
        new(Experiments.ExperimentErrorModule.code(e), Experiments.ExperimentErrorModule.message(e));

    /// <summary>The code the experiments layer gives the error case <paramref name="name"/> (one list of codes).</summary>
    public static string Code(string name) =>
        Experiments.ExperimentErrorModule.table.Single(c => c.Item1 == name).Item2;

    public static T Unwrap<T>(FSharpResult<T, Experiments.ExperimentError> r) =>
        r.IsOk ? r.ResultValue : throw Session(r.ErrorValue);

    /// <summary>Throws EXP019, one line naming the packages to add, when libtorch's native library does not load
    /// (instead of TorchSharp's loader trace at the first tensor).</summary>
    public static void NativeBackend()
    {
        var r = Learning.Device.nativeBackend();
        if (r.IsError) throw Session(Experiments.ExperimentError.NewNoNativeBackend(r.ErrorValue));
    }
}
