"""The backbone benchmark's inputs (run by bench/backbone.sh with Debian's python3-torch and torchvision).

folder FASHION OUT N   writes N Fashion-MNIST training images (classes 0-9, N/10 each) as 32x32 RGB PNGs in class
                       folders under OUT: a stand-in for a folder of one's own photos.
resnet18 OUT           writes OUT/resnet18.pt, torchvision's ResNet-18 with its classifier removed (512-d output),
                       traced; random weights, since nothing can be downloaded here: the speed is a pretrained
                       one's. No .json beside it: ImageNet's preparation (resize 256, crop 224) applies.
"""
import gzip
import os
import sys

import numpy as np
import torch
import torchvision
from PIL import Image


def folder(fashion, out, n):
    with gzip.open(os.path.join(fashion, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(fashion, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    per_class = n // 10
    for c in range(10):
        os.makedirs(os.path.join(out, f"class{c}"), exist_ok=True)
        for i in np.flatnonzero(labels == c)[:per_class]:
            grey = Image.fromarray(images[i]).resize((32, 32), Image.BILINEAR)
            Image.merge("RGB", (grey, grey, grey)).save(os.path.join(out, f"class{c}", f"img-{i:05d}.png"))


def resnet18(out):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    model.fc = torch.nn.Identity()
    torch.jit.trace(model.eval(), torch.zeros(1, 3, 224, 224)).save(os.path.join(out, "resnet18.pt"))


if __name__ == "__main__":
    if sys.argv[1] == "folder":
        folder(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        resnet18(sys.argv[2])
