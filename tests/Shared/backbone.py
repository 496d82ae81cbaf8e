"""The PyTorch side of the backbone tests (run with Debian's python3-torch).

export WEIGHTS OUT   Rebuilds the project's small CNN feature extractor (1x28x28 -> 320) in PyTorch from the
                     raw float32 weights a test trained with TorchSharp (one NAME.f32 file per parameter in
                     WEIGHTS), and writes OUT/backbone.pt (torch.jit.trace) with OUT/backbone.json, plus models a
                     backbone must refuse or handle: wrong-rank.pt (a feature map, rank 4), no-image.pt (takes 7
                     numbers, not an image), tuple.pt (returns logits and the embedding; its .json picks output 1).
random OUT          Writes OUT/random.pt and its .json: the same feature extractor with PyTorch's seeded initial
                     weights, untrained (for tests that need a backbone, not a good one).
embed MODEL LIST OUT Embeds the grey image files listed in LIST (one path a line) with the TorchScript MODEL as
                     its .json says (pixel/255, (x - mean) / std), and writes the N x D float32 rows to OUT.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

MEAN, STD = 0.2860, 0.3530


class SmallFeatures(nn.Module):
    """The project's small CNN feature extractor (src/Waal.Learning/Nets.fs, MnistFeatures), in eval mode:
    conv 1->10 k5, maxpool 2, ReLU; conv 10->20 k5, maxpool 2, ReLU; flatten -> 320."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return x.flatten(1)


class FeatureMap(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.conv1 = features.conv1

    def forward(self, x):
        return self.conv1(x)


class WithLogits(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.features = features
        self.fc = nn.Linear(320, 5)

    def forward(self, x):
        z = self.features(x)
        return self.fc(z), z


def export(weights, out):
    os.makedirs(out, exist_ok=True)
    model = SmallFeatures().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            values = np.fromfile(os.path.join(weights, name + ".f32"), dtype="<f4")
            p.copy_(torch.from_numpy(values.reshape(tuple(p.shape))))
    example = torch.zeros(2, 1, 28, 28)
    prep = {"resize": 0, "crop": 28, "channels": 1, "mean": [MEAN], "std": [STD]}

    def save(module, name, inputs, preparation):
        torch.jit.trace(module.eval(), inputs).save(os.path.join(out, name + ".pt"))
        if preparation is not None:
            with open(os.path.join(out, name + ".json"), "w") as f:
                json.dump(preparation, f)

    save(model, "backbone", example, prep)
    save(FeatureMap(model), "wrong-rank", example, prep)
    save(nn.Linear(7, 3), "no-image", torch.zeros(2, 7), prep)
    torch.manual_seed(0)
    save(WithLogits(model), "tuple", example, dict(prep, output=1))


def random_backbone(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    torch.jit.trace(SmallFeatures().eval(), torch.zeros(2, 1, 28, 28)).save(os.path.join(out, "random.pt"))
    with open(os.path.join(out, "random.json"), "w") as f:
        json.dump({"resize": 0, "crop": 28, "channels": 1, "mean": [MEAN], "std": [STD]}, f)


def embed(model_file, listing, out):
    with open(os.path.splitext(model_file)[0] + ".json") as f:
        prep = json.load(f)
    model = torch.jit.load(model_file).eval()
    with open(listing) as f:
        files = [line.rstrip("\n") for line in f if line.strip()]
    images = np.stack([np.asarray(Image.open(p).convert("L"), dtype=np.float32) for p in files])
    x = (torch.from_numpy(images).unsqueeze(1) / 255.0 - prep["mean"][0]) / prep["std"][0]
    with torch.no_grad():
        z = model(x)
    z.numpy().astype("<f4").tofile(out)


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "export":
        export(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "random":
        random_backbone(sys.argv[2])
    elif sys.argv[1] == "embed":
        embed(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
