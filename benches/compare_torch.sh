#!/usr/bin/env bash
# Same-run comparison of kiln with PyTorch on this machine: runs PyTorch's reference workloads
# and kiln's (examples/torch_compare.rs) back to back, twice, and prints both. The machines
# here are shared and vary up to 2x between runs: compare figures from the same round only.
# Usage: benches/compare_torch.sh [PYTHON_WITH_TORCH] [TORCH_REF_PY] [WORKLOADS]
# (WORKLOADS: comma-separated from gemm,mlp,mnist-cnn,digits and the sequence workloads of
# benches/torch_ref_seq.py, lstm,vowels,char-lstm; default gemm,mlp,mnist-cnn,digits,lstm,vowels.
# char-lstm trains 8 epochs of Shakespeare on each side: minutes)
# (setup once: python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch numpy)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-/tmp/torch/bin/python}
REF=${2:-../shared/bench/torch_ref.py}
WORKLOADS=${3:-gemm,mlp,mnist-cnn,digits,lstm,vowels}
SEQ_REF=benches/torch_ref_seq.py
cargo build --release --example torch_compare -q
BIN="${CARGO_TARGET_DIR:-target}/release/examples/torch_compare"
for round in 1 2; do
  echo "== round $round: PyTorch (2 threads)"
  "$PY" "$REF" --threads 2 --workloads "$WORKLOADS" --seeds 3
  "$PY" "$SEQ_REF" --threads 2 --workloads "$WORKLOADS" --seeds 3
  echo "== round $round: kiln (cpu)"
  "$BIN" --device cpu --workloads "$WORKLOADS"
done
