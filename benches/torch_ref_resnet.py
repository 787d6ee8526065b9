#!/usr/bin/env python3
"""PyTorch reference for kiln's `resnet-small` preset (a functional model with residual blocks),
the companion of ../shared/bench/torch_ref.py, on the protocol of

    kiln train --data fashion-mnist --model resnet-small --batch-size 128 --epochs 2 --validation-split 0 --out R
    kiln train --resume R --epochs 10

Setup (once):  python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch numpy
Run:           /tmp/torch/bin/python benches/torch_ref_resnet.py [--threads 2] [--model resnet-small|mnist-cnn]
               [--epochs 2,10] [--seed 0]

  Fashion-MNIST (Debian dataset-fashion-mnist), pixels / 255, Adam lr 1e-3, batch 128, shuffled each
  epoch; test accuracy on the 10,000 test images after each epoch count in --epochs (one run that
  continues), and the training seconds and samples/s so far.
  resnet-small  stem Conv16 3x3 - BN - relu; three basic blocks of 16, 32 (stride 2) and 64 (stride 2)
                filters: Conv3x3 - BN - relu - Conv3x3 - BN, plus the skip (Conv1x1 stride 2 - BN where the
                shape changes), relu; global average pooling; Linear(64, 10). Convolutions without bias and
                padded as TensorFlow's "same" (the extra row and column at the bottom and right), BatchNorm
                with Keras's eps 1e-3 and momentum 0.99 (torch momentum 0.01): 78,426 parameters, as kiln's.
  Initialisation is PyTorch's default (kiln uses Keras's Glorot uniform), as in torch_ref.py.
"""
import argparse, gzip, json, struct, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class SameConv(nn.Module):
    """A convolution padded as TensorFlow's "same": output ceil(n / stride), the odd pad at the end."""

    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.k, self.stride = k, stride
        self.conv = nn.Conv2d(cin, cout, k, stride, bias=False)

    def forward(self, x):
        pads = []
        for n in (x.shape[3], x.shape[2]):  # F.pad takes the last axis first
            out = -(-n // self.stride)
            total = max((out - 1) * self.stride + self.k - n, 0)
            pads += [total // 2, total - total // 2]
        return self.conv(F.pad(x, pads))


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1, self.b1 = SameConv(cin, cout, 3, stride), bn(cout)
        self.c2, self.b2 = SameConv(cout, cout, 3, 1), bn(cout)
        self.skip = None if stride == 1 and cin == cout else nn.Sequential(SameConv(cin, cout, 1, stride), bn(cout))

    def forward(self, x):
        h = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu((x if self.skip is None else self.skip(x)) + h)


def resnet_small(classes=10):
    return nn.Sequential(
        SameConv(1, 16, 3, 1), bn(16), nn.ReLU(),
        Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


def mnist_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(576, 64), nn.ReLU(), nn.Linear(64, 10))


def read_idx(path):
    b = gzip.open(path, "rb").read()
    magic, n = struct.unpack(">II", b[:8])
    if magic == 0x803:
        h, w = struct.unpack(">II", b[8:16])
        return torch.frombuffer(bytearray(b[16:]), dtype=torch.uint8).reshape(n, 1, h, w).float() / 255.0
    return torch.frombuffer(bytearray(b[8:]), dtype=torch.uint8).long()


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        return sum((model(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item() for i in range(0, len(x), 1000)) / len(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="resnet-small")
    ap.add_argument("--epochs", default="2,10")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    d = "/usr/share/datasets/fashion-mnist"
    xtr, ytr = read_idx(f"{d}/train-images-idx3-ubyte.gz"), read_idx(f"{d}/train-labels-idx1-ubyte.gz")
    xte, yte = read_idx(f"{d}/t10k-images-idx3-ubyte.gz"), read_idx(f"{d}/t10k-labels-idx1-ubyte.gz")
    model = resnet_small() if args.model == "resnet-small" else mnist_cnn()
    params = sum(p.numel() for p in model.parameters()) + sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(args.seed)
    marks = sorted(int(e) for e in args.epochs.split(","))
    seconds, epoch = 0.0, 0
    for mark in marks:
        t0 = time.perf_counter()
        while epoch < mark:
            model.train()
            perm = torch.randperm(len(xtr), generator=g)
            for i in range(0, len(xtr), 128):
                j = perm[i:i + 128]
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(xtr[j]), ytr[j]).backward()
                opt.step()
            epoch += 1
        seconds += time.perf_counter() - t0
        print(json.dumps({"framework": "pytorch", "model": args.model, "params": params, "epochs": epoch,
                          "test_accuracy": accuracy(model, xte, yte), "train_seconds": round(seconds, 1),
                          "samples_per_sec": round(epoch * len(xtr) / seconds, 1), "threads": args.threads}),
              flush=True)


if __name__ == "__main__":
    main()
