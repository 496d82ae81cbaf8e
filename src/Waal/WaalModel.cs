using System.Collections.ObjectModel;
using Microsoft.FSharp.Core;

namespace Waal;

/// <summary>One image's prediction.</summary>
/// <param name="ClassName">The most probable class's name.</param>
/// <param name="ClassIndex">Its index (the label the run used).</param>
/// <param name="Probability">Its probability.</param>
/// <param name="Probabilities">Every class's probability, in <see cref="WaalModel.ClassNames"/> order.</param>
/// <param name="Margin">The best probability minus the second best (low: unsure between two classes).</param>
/// <param name="Entropy">The predictive entropy in nats (high: unsure overall).</param>
public sealed record ImagePrediction(
    string ClassName, int ClassIndex, double Probability, IReadOnlyList<double> Probabilities, double Margin, double Entropy);

/// <summary>A trained model, from a folder written by <c>waal export</c> (or a run folder: its last trained round).
/// Images are prepared as the model's training images were (decoded, resized and cropped, grey or colour,
/// normalised). Not thread-safe; dispose it to free the networks.</summary>
public sealed class WaalModel : IDisposable
{
    private readonly Experiments.Model.Loaded _model;
    private bool _disposed;

    private WaalModel(Experiments.Model.Loaded model)
    {
        _model = model;
        ClassNames = new ReadOnlyCollection<string>(model.Info.ClassNames);
    }

    /// <summary>Opens a model folder (model.json and the weights) or a run folder.</summary>
    /// <exception cref="WaalException">MODEL001 when the folder holds no usable model.</exception>
    public static WaalModel Load(string folder)
    {
        Errors.NativeBackend();
        var result = Experiments.Model.load(folder);
        if (result.IsError) throw ModelErrors.Of(result.ErrorValue);
        return new WaalModel(result.ResultValue);
    }

    /// <summary>The class names, in label order.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The network (small-cnn, vgg16, resnet).</summary>
    public string Network => _model.Info.Network;

    /// <summary>The image shape the network takes (channels, height, width).</summary>
    public (int Channels, int Height, int Width) Shape => (_model.Info.Channels, _model.Info.Height, _model.Info.Width);

    /// <summary>The test accuracy (a fraction, 0..1) the run measured for this model (NaN when unknown).</summary>
    public double TestAccuracy => _model.Info.TestAccuracy;

    /// <summary>Predicts the class of an image file (PNG, JPEG, BMP or WebP).</summary>
    /// <exception cref="WaalException">A DATA code naming the file when it cannot be read or decoded.</exception>
    public ImagePrediction Predict(string path)
    {
        Live();
        return Run(Experiments.Model.prepare(_model.Info, path));
    }

    /// <summary>Predicts the class of an encoded image read from a stream (to its end, and never more than the
    /// image cap of 256 MiB: a longer stream is refused with DATA015).</summary>
    public ImagePrediction Predict(Stream stream, string name = "stream")
    {
        Live();
        var cap = Data.Files.Limits.imageBytes;
        using var copy = new MemoryStream();
        var buffer = new byte[81920];
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            if (copy.Length + n > cap)
                throw Errors.Data(Data.DataError.NewTooLarge(name, "an image", $"more than {Data.Files.limitText(cap)}", Data.Files.limitText(cap)));
            copy.Write(buffer, 0, n);
        }
        return Predict(copy.ToArray(), name);
    }

    /// <summary>Predicts the class of an encoded image's bytes.</summary>
    public ImagePrediction Predict(byte[] encoded, string name = "bytes")
    {
        Live();
        return Run(Experiments.Model.prepareBytes(_model.Info, name, encoded));
    }

    /// <summary>Predicts image files in batches of <paramref name="batch"/> (as <c>waal predict</c> does, with the
    /// same results bit for bit at the same batch size; a lone image can differ in the last float digits, since
    /// the CPU kernels depend on the batch size).</summary>
    /// <exception cref="WaalException">A DATA code naming the first file that cannot be read or decoded.</exception>
    public IReadOnlyList<ImagePrediction> Predict(IReadOnlyList<string> paths, int batch = 250)
    {
        Live();
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "expected at least 1");
        var prepared = new byte[paths.Count][];
        for (var i = 0; i < paths.Count; i++)
        {
            var r = Experiments.Model.prepare(_model.Info, paths[i]);
            if (r.IsError) throw Errors.Data(r.ErrorValue);
            prepared[i] = r.ResultValue;
        }
        return Experiments.Model.predictPrepared(_model, prepared, batch).Select(Of).ToList();
    }

    private ImagePrediction Run(FSharpResult<byte[], Data.DataError> prepared)
    {
        if (prepared.IsError) throw Errors.Data(prepared.ErrorValue);
        return Of(Experiments.Model.predictPrepared(_model, new[] { prepared.ResultValue }, 1)[0]);
    }

    private ImagePrediction Of(Experiments.Model.Prediction p)
    {
        var probabilities = p.Probabilities.Select(v => (double)v).ToArray();
        return new ImagePrediction(
            ClassNames[p.Class], p.Class, probabilities[p.Class], probabilities, p.Margin, p.Entropy);
    }

    private void Live()
    {
        if (_disposed) throw new ObjectDisposedException(nameof(WaalModel));
    }

    /// <summary>Frees the networks.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        ((IDisposable)_model).Dispose();
    }
}

internal static class ModelErrors
{
    public static WaalException Of(Experiments.Model.ModelError e)
    {
        var line = Experiments.Model.ModelErrorModule.line(e);
        var code = Experiments.Model.ModelErrorModule.code(e);
        // The line reads "error CODE: where: message"; the exception carries CODE and the rest.
        var prefix = $"error {code}: ";
        return new WaalException(code, line.StartsWith(prefix) ? line[prefix.Length..] : line);
    }
}
