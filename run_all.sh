#!/usr/bin/env bash
# Run every suite in benchmarks/ whose data is reachable, then print one combined table.
# Options pass through to `joulebench run` (e.g. --quick, --data-dir DIR, --meter estimate).
# A suite whose data is not reachable (SST-2 offline, no data folder) is skipped with a
# one-line reason; the script still exits 0 when every other suite succeeds.
# The GPU suites (benchmarks/gpu/) run only where torch sees a CUDA GPU; elsewhere they
# are skipped with one line. The suites above run on the GPU too there (device: auto);
# pass --device cpu to keep them on the CPU.
set -u
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
stamp=$(date +%Y%m%d-%H%M%S)
ran=()
status=0
suites=(benchmarks/*.yaml)
if "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  suites+=(benchmarks/gpu/*.yaml)
else
  echo "run_all: skipped benchmarks/gpu/ (the GPU suites): torch sees no CUDA GPU here" >&2
fi
for suite in "${suites[@]}"; do
  name=$(basename "$(dirname "$suite")")-$(basename "$suite" .yaml)  # benchmarks-digits, gpu-sst2
  name=${name#benchmarks-}
  out="results/$name/$stamp"
  "$PYTHON" -m harness run "$suite" --out "$out" --skip-if-no-data "$@"
  rc=$?
  case $rc in
    0) ran+=("$out") ;;
    3) ;;  # skipped: joulebench printed the one-line reason and how to supply the data
    *) echo "run_all: suite $name failed (exit $rc)" >&2; status=1 ;;
  esac
done
if [ ${#ran[@]} -gt 0 ]; then
  echo
  echo "# Combined table (${ran[*]})"
  echo
  "$PYTHON" -m harness report "${ran[@]}" || status=1
else
  echo "run_all: no suite ran" >&2
  status=1
fi
exit $status
