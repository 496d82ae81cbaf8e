"""Their side of bench/run.sh: the same Fashion-MNIST WAAL workload in PyTorch, mirroring Waal.Bench step for
step (the same networks, batch sizes, threads and data layout, the fused labelled+unlabelled forward pass,
the gradient penalty, the same .item() reads). Prints CSV rows `theirs,metric,value,unit`.

Usage: python3 bench/torch_bench.py [FASHION_MNIST_FOLDER] [THREADS]
"""
import gzip
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def corners(x):
    """The four corners of every 2 x 2 window (strided views): top-left, top-right, bottom-left, bottom-right."""
    h, w = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
    x = x[:, :, :h, :w]
    return x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]


class MaxPool2x2(torch.autograd.Function):
    """Mirror of Waal.Learning.Pooling: max_pool2d(x, 2)'s values and gradient from elementwise maxima of the
    window corners; the backward routes each window's gradient to its first maximal corner (row-major)."""

    @staticmethod
    def forward(ctx, x):
        a, b, c, d = corners(x)
        y = torch.maximum(torch.maximum(a, b), torch.maximum(c, d))
        ctx.save_for_backward(x, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        a, b, c, _ = corners(x)

        def take(corner, left):
            mine = (left * corner.eq(y)).add(0.0)
            return mine, left - mine

        ga, left = take(a, g)
        gb, left = take(b, left)
        gc, gd = take(c, left)
        gx = torch.zeros_like(x)
        ta, tb, tc, td = corners(gx)
        ta.copy_(ga); tb.copy_(gb); tc.copy_(gc); td.copy_(gd)
        return gx


def max_pool2(x):
    if x.requires_grad and torch.is_grad_enabled():
        return F.max_pool2d(x, 2) if x.numel() < 131072 else MaxPool2x2.apply(x)
    a, b, c, d = corners(x)
    return torch.maximum(torch.maximum(a, b), torch.maximum(c, d))


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.drop = nn.Dropout2d(0.5)

    def forward(self, x):
        x = F.relu(max_pool2(self.conv1(x)))
        x = F.relu(max_pool2(self.drop(self.conv2(x))))
        return x.flatten(1)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(320, 50)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, z):
        return self.fc2(self.drop(F.relu(self.fc1(z))))


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(320, 50)
        self.drop = nn.Dropout(0.5)
        self.fc2 = nn.Linear(50, 1)

    def forward(self, z):
        return torch.sigmoid(self.fc2(self.drop(F.relu(self.fc1(z)))).view(-1))


def gradient_penalty(critic, zu, zl):
    t = torch.rand(zu.shape[0], 1)
    mix = zu + t * (zl - zu)
    points = torch.cat([mix, zu, zl], 0).detach().requires_grad_(True)
    out = critic(points)
    grads = torch.autograd.grad([out.sum()], [points], retain_graph=True, create_graph=True)[0]
    return ((grads.norm(2, dim=1) - 1.0) ** 2).mean()


def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    rng = np.random.default_rng(1)

    def tensor(images):
        x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1) / 255.0
        return (x - 0.1307) / 0.3081

    train = read_idx(f"{folder}/train-images-idx3-ubyte.gz")[:50000]
    train_labels = torch.from_numpy(read_idx(f"{folder}/train-labels-idx1-ubyte.gz")[:50000].astype(np.int64))
    images = tensor(train)
    test = tensor(read_idx(f"{folder}/t10k-images-idx3-ubyte.gz"))
    order = rng.permutation(50000)
    labelled, unlabelled = np.sort(order[:1000]), np.sort(order[1000:])
    labels = torch.full((50000,), -1, dtype=torch.int64)
    labels[labelled] = train_labels[labelled]

    def row(metric, value, unit):
        print(f"theirs,{metric},{value:.4f},{unit}", flush=True)

    alpha, c, batch = 2e-3, len(labelled) / len(unlabelled), 64

    # (a) one WAAL epoch: max(|L|,|U|) = 49,000 pairs, 766 batches of 64 + 64, fresh networks each time; the
    # training rows are the best of three runs, as on our side.
    def waal_epoch():
        f, h, g = Features(), Classifier(), Critic()
        opt_f = torch.optim.SGD(f.parameters(), lr=0.01, momentum=0.5)
        opt_h = torch.optim.SGD(h.parameters(), lr=0.01, momentum=0.5)
        opt_g = torch.optim.SGD(g.parameters(), lr=0.01, momentum=0.5)
        start = time.perf_counter()
        f.train(); h.train(); g.train()
        perm = rng.permutation(len(unlabelled))
        li = torch.from_numpy(labelled[perm % len(labelled)])
        ui = torch.from_numpy(unlabelled[perm % len(unlabelled)])
        # Batch b's labelled items followed by its unlabelled ones, so a batch's inputs are one index_select.
        pairs = torch.from_numpy(np.concatenate(
            [np.concatenate([li[b:b + batch].numpy(), ui[b:b + batch].numpy()]) for b in range(0, len(perm), batch)]))
        iterations = 0
        for b in range(0, len(perm), batch):
            idx_l = li[b:b + batch]
            n = idx_l.shape[0]
            yl = labels.index_select(0, idx_l)
            x = images.index_select(0, pairs[2 * b: 2 * (b + n)])
            for p in g.parameters():
                p.requires_grad_(False)
            opt_f.zero_grad(); opt_h.zero_grad()
            z = f(x)
            ce = F.cross_entropy(h(z[:n]), yl)
            gz = g(z)
            loss_a = ce + alpha * (gz[n:].mean() - c * gz[:n].mean())
            loss_a.backward()
            opt_f.step(); opt_h.step()
            for p in g.parameters():
                p.requires_grad_(True)
            with torch.no_grad():
                z2 = f(x)
            zl2, zu2 = z2[:n], z2[n:]
            opt_g.zero_grad()
            gz2 = g(z2)
            gap = gz2[n:].mean() - c * gz2[:n].mean()
            loss_b = -alpha * gap + (-1.0) * 2.0 * alpha * gradient_penalty(g, zu2, zl2)
            loss_b.backward()
            opt_g.step()
            loss_a.item(); loss_b.item()
            iterations += 1
        return iterations, time.perf_counter() - start, (f, h, g)

    runs = [waal_epoch() for _ in range(3)]
    iterations = runs[0][0]
    row("waal_train_iterations_per_s", iterations / min(r[1] for r in runs), "it/s")
    f, h, g = runs[-1][2]

    # Scoring rows: the library's default batch (250, chosen by the sweep in Waal.Bench), inference mode, each
    # batch's rows copied into outputs allocated once, arrays made at the end; the best of three passes.
    score_batch = 250

    def best3(work):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return min(times)

    # (b) scoring the 49,000 unlabelled images (f, h, g, log-softmax).
    f.eval(); h.eval(); g.eval()
    u = torch.from_numpy(unlabelled)

    def query():
        logp, critic = torch.empty(len(u), 10), torch.empty(len(u), 1)
        with torch.inference_mode():
            for b in range(0, len(u), score_batch):
                x = images.index_select(0, u[b:b + score_batch])
                z = f(x)
                n = x.shape[0]
                logp[b:b + n].copy_(F.log_softmax(h(z), 1))
                critic[b:b + n].copy_(g(z).reshape(n, 1))
        return logp.numpy(), critic.numpy()

    row("waal_query_images_per_s", len(u) / best3(query), "img/s")

    # (c) test prediction over the 10,000 test images.
    def predict():
        out = torch.empty(test.shape[0], 1, dtype=torch.int64)
        with torch.inference_mode():
            for b in range(0, test.shape[0], score_batch):
                x = test[b:b + score_batch]
                out[b:b + x.shape[0]].copy_(h(f(x)).argmax(1).reshape(-1, 1))
        return out.numpy()

    row("test_prediction_images_per_s", test.shape[0] / best3(predict), "img/s")

    # (d) plain cross-entropy: 766 steps over the labelled set, batch 64, reshuffled every pass; best of three.
    def plain_run():
        f2, h2 = Features(), Classifier()
        o_f = torch.optim.SGD(f2.parameters(), lr=0.01, momentum=0.5)
        o_h = torch.optim.SGD(h2.parameters(), lr=0.01, momentum=0.5)
        f2.train(); h2.train()
        start = time.perf_counter()
        steps = 0
        while steps < iterations:
            order = torch.from_numpy(labelled[rng.permutation(len(labelled))])
            for b in range(0, len(order), batch):
                if steps >= iterations:
                    break
                i = order[b:b + batch]
                o_f.zero_grad(); o_h.zero_grad()
                loss = F.cross_entropy(h2(f2(images.index_select(0, i))), labels.index_select(0, i))
                loss.backward()
                o_f.step(); o_h.step()
                loss.item()
                steps += 1
        return steps, time.perf_counter() - start

    plain = [plain_run() for _ in range(3)]
    row("plain_train_iterations_per_s", plain[0][0] / min(r[1] for r in plain), "it/s")

    # (e) peak resident memory of the whole process.
    row("peak_rss_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, "MB")


if __name__ == "__main__":
    main()
