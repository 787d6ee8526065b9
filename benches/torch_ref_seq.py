#!/usr/bin/env python3
"""PyTorch reference figures for kiln's sequence workloads (the companion of
../shared/bench/torch_ref.py), measured on the same machine in the same run as
examples/torch_compare.rs: benches/compare_torch.sh runs both.

Setup (once):  python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch numpy
Run:           /tmp/torch/bin/python benches/torch_ref_seq.py [--threads 2] [--workloads lstm,vowels,char-lstm]

  lstm       LSTM(128) over 50 steps of 32 features, last hidden state -> Linear(10), softmax
             cross-entropy, Adam 1e-3, batch 64, synthetic data: train and infer samples/s (median
             of 3 repeats after a warm-up), as kiln's `bench` "train lstm".
  vowels     JapaneseVowels (assets/JapaneseVowels_*.ts.gz): per-dimension standardisation with
             training statistics, zero-padded at the end and packed (masked), LSTM(64) -> last
             valid hidden state -> Linear(9), Keras-style init (Glorot kernels, orthogonal
             recurrent, forget bias 1), Adam 1e-3, batch 32, 60 epochs, seeds 0-2: test accuracy
             and training seconds (the protocol of `kiln train --data japanese-vowels --model lstm`).
  char-lstm  Shakespeare (assets/shakespeare.txt.gz), vocabulary the sorted distinct characters,
             windows of 100 with stride 100 and a per-step next-character target, the last 10%
             of the text held out; Embedding(V, 32) -> LSTM(256) -> Linear(V), Adam 1e-3, batch
             32, --char-epochs epochs (default 8), Keras-style init; test bits per character
             and training seconds (the protocol of `kiln train --data shakespeare --model char-lstm`).
"""
import argparse, gzip, json, os, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ASSETS = os.path.join(HERE, "..", "assets")


def time_it(fn, steps, repeats):
    fn(); fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(steps):
            fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def keras_init(lstm):
    """Keras LSTM defaults: Glorot-uniform kernel, orthogonal recurrent kernel, one bias with
    the forget gate's at 1 (PyTorch has two biases: the second stays 0)."""
    for name, p in lstm.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(p)
        elif name.startswith("weight_hh"):
            nn.init.orthogonal_(p)
        elif name.startswith("bias_ih"):
            nn.init.zeros_(p)
            h = p.shape[0] // 4
            p.data[h:2 * h] = 1.0  # PyTorch gate order i, f, g, o
        elif name.startswith("bias_hh"):
            nn.init.zeros_(p)


class LastState(nn.Module):
    def __init__(self, features, units, classes):
        super().__init__()
        self.lstm = nn.LSTM(features, units, batch_first=True)
        keras_init(self.lstm)
        self.out = nn.Linear(units, classes)
        nn.init.xavier_uniform_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, lengths=None):
        if lengths is not None:
            x = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(x)
        return self.out(h[-1])


def bench_lstm():
    batch, steps, features = 64, 50, 32
    model = LastState(features, 128, 10)
    x = torch.randn(batch, steps, features)
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    def infer_step():
        with torch.no_grad():
            model(x)

    n = 10
    t_train, t_infer = time_it(train_step, n, 3), time_it(infer_step, n, 3)
    return {"workload": "lstm", "batch": batch, "train_samples_per_s": batch * n / t_train,
            "infer_samples_per_s": batch * n / t_infer}


def read_ts(path):
    """sktime/UEA .ts: series after @data, dimensions separated by ':', values by ',', the class
    label last."""
    series, labels, data = [], [], False
    with gzip.open(path, "rt") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if line.lower().startswith("@data"):
                data = True
                continue
            if not data:
                continue
            *dims, label = line.split(":")
            series.append([[float(v) for v in d.split(",")] for d in dims])
            labels.append(label)
    return series, labels


def vowels_run(seed):
    tr, ytr = read_ts(os.path.join(ASSETS, "JapaneseVowels_TRAIN.ts.gz"))
    te, yte = read_ts(os.path.join(ASSETS, "JapaneseVowels_TEST.ts.gz"))
    classes = sorted(set(ytr))
    # [dims][steps] -> [steps, dims]
    def tensors(s):
        return [torch.tensor(x, dtype=torch.float32).T for x in s]
    tr, te = tensors(tr), tensors(te)
    allsteps = torch.cat(tr)
    mean, std = allsteps.mean(0), allsteps.std(0, unbiased=False)
    def batchify(s):
        lengths = torch.tensor([len(x) for x in s])
        x = nn.utils.rnn.pad_sequence([(v - mean) / std for v in s], batch_first=True)
        return x, lengths
    xtr, ltr = batchify(tr)
    xte, lte = batchify(te)
    ytr = torch.tensor([classes.index(c) for c in ytr])
    yte = torch.tensor([classes.index(c) for c in yte])
    torch.manual_seed(seed)
    model = LastState(12, 64, len(classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    t = time.perf_counter()
    for _ in range(60):
        order = torch.randperm(len(ytr), generator=g)
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xtr[b], ltr[b]), ytr[b]).backward()
            opt.step()
    secs = time.perf_counter() - t
    with torch.no_grad():
        acc = (model(xte, lte).argmax(1) == yte).float().mean().item()
    return {"workload": "vowels", "seed": seed, "test_accuracy": acc, "train_seconds": secs}


class CharModel(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        nn.init.uniform_(self.embed.weight, -0.05, 0.05)  # Keras Embedding default
        self.lstm = nn.LSTM(32, 256, batch_first=True)
        keras_init(self.lstm)
        self.out = nn.Linear(256, vocab)
        nn.init.xavier_uniform_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        h, _ = self.lstm(self.embed(x))
        return self.out(h)


def char_run(seed, epochs, window=100):
    with gzip.open(os.path.join(ASSETS, "shakespeare.txt.gz"), "rt", encoding="utf-8") as f:
        text = f.read()
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    cut = round(len(ids) * 0.9)
    def windows(a, b):
        starts = range(a, b - window, window)
        x = torch.stack([ids[s:s + window] for s in starts])
        y = torch.stack([ids[s + 1:s + window + 1] for s in starts])
        return x, y
    xtr, ytr = windows(0, cut)
    xte, yte = windows(cut, len(ids))
    torch.manual_seed(seed)
    model = CharModel(len(vocab))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    t = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(order), 32):
            b = order[i:i + 32]
            opt.zero_grad(set_to_none=True)
            logits = model(xtr[b])
            F.cross_entropy(logits.reshape(-1, len(vocab)), ytr[b].reshape(-1)).backward()
            opt.step()
    secs = time.perf_counter() - t
    with torch.no_grad():
        loss = F.cross_entropy(model(xte).reshape(-1, len(vocab)), yte.reshape(-1)).item()
    return {"workload": "char-lstm", "seed": seed, "epochs": epochs,
            "test_bits_per_char": loss / 0.6931471805599453, "train_seconds": secs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workloads", default="lstm,vowels,char-lstm")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--char-epochs", type=int, default=8)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    want = args.workloads.split(",")
    rows = []
    if "lstm" in want:
        rows.append(bench_lstm())
    if "vowels" in want:
        rows += [vowels_run(s) for s in range(args.seeds)]
    if "char-lstm" in want:
        rows.append(char_run(0, args.char_epochs))
    for r in rows:
        print(json.dumps(r) if args.json else "  " + ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
