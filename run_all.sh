#!/usr/bin/env bash
# Run every suite in benchmarks/ whose data is reachable, then print one combined table.
# Options pass through to `joulebench run` (e.g. --quick, --data-dir DIR, --meter estimate).
# A suite whose data is not reachable (SST-2 offline, no data folder) is skipped with a
# one-line reason; the script still exits 0 when every other suite succeeds.
set -u
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
stamp=$(date +%Y%m%d-%H%M%S)
ran=()
status=0
for suite in benchmarks/*.yaml; do
  name=$(basename "$suite" .yaml)
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
