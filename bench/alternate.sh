#!/usr/bin/env bash
# Each implementation alone in its own compare.py run (no idle worker of another beside it),
# the runs alternating over rounds; compare.py --json per run into OUT.
#   bash bench/alternate.sh OUT ROUNDS BEFORE_PYTHON [compare.py options...]
# On a 2-core machine a worker that has just finished keeps a core busy for a while (its
# BLAS threads spin before they sleep), which compare.py's alternation inside one run puts
# on the next implementation's clock. BEFORE_PYTHON ("-" for none): the interpreter of an
# environment with an earlier fastnn installed, run as implementation "fastnn" there.
set -euo pipefail
out=$1 rounds=$2 before=$3
shift 3
mkdir -p "$out"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
here=$(cd "$(dirname "$0")" && pwd)
for r in $(seq 1 "$rounds"); do
  for impl in fastnn before torch gemm-floor sklearn; do
    py=python; name=$impl
    if [ "$impl" = before ]; then
      [ "$before" = - ] && continue
      py=$before; name=fastnn
    fi
    "$py" "$here/compare.py" --impls "$name" "$@" --json "$out/${impl}_$r.json" > "$out/${impl}_$r.txt" 2>&1
    echo "round $r $impl done $(date +%T)"
  done
done
