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

    public static WaalException Session(Experiments.Session.SessionError e) =>
        new(e.Tag switch
        {
            Experiments.Session.SessionError.Tags.SpecProblem => "SESSION001",
            Experiments.Session.SessionError.Tags.NoSuchStrategy => "SESSION002",
            Experiments.Session.SessionError.Tags.NoDevice => "SESSION003",
            Experiments.Session.SessionError.Tags.LabelsRefused => "SESSION004",
            Experiments.Session.SessionError.Tags.LearnFailed => "SESSION005",
            Experiments.Session.SessionError.Tags.NotTrained => "SESSION006",
            Experiments.Session.SessionError.Tags.NoTestData => "SESSION007",
            Experiments.Session.SessionError.Tags.OutOfTurn => "SESSION009",
            _ => "SESSION008",
        }, Experiments.Session.message(e));

    public static T Unwrap<T>(FSharpResult<T, Experiments.Session.SessionError> r) =>
        r.IsOk ? r.ResultValue : throw Session(r.ErrorValue);
}
