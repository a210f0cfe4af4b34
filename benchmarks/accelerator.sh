#!/usr/bin/env bash
# The throughput suite on a GPU or TPU, in under 8 minutes, into results/accelerator/.
#
#   bash benchmarks/accelerator.sh            # from the repository root
#   PYTHON=.venv/bin/python OUT=results/accelerator bash benchmarks/accelerator.sh
#
# Needs a Python whose JAX sees the accelerator (e.g. `pip install -e . "jax[cuda12]"`);
# it stops at once if JAX falls back to the CPU (set ALLOW_CPU=1 to try it there).
# Runs, in order of importance, each under what is left of an 8-minute budget:
#   default sizes + streaming scorer, window length 64..4096, batch size, width.
# Every sweep writes its rows after each shape, so one cut short keeps what it
# measured. PyTorch peers are off: the torch extra is a CPU wheel.
set -u -o pipefail

PYTHON=${PYTHON:-python3}
OUT=${OUT:-results/accelerator}
BUDGET_S=${BUDGET_S:-450}  # Leaves a margin under 8 minutes for start-up and the report.
START=$(date +%s)
mkdir -p "$OUT"

backend=$("$PYTHON" -c 'import jax; print(jax.default_backend())' 2>/dev/null) || {
  echo "accelerator.sh: $PYTHON cannot import jax." >&2; exit 1; }
if [[ "$backend" == cpu && "${ALLOW_CPU:-0}" != 1 ]]; then
  echo "accelerator.sh: JAX sees no accelerator (backend cpu); install jax for the" \
       "device or set ALLOW_CPU=1." >&2
  exit 1
fi

{
  echo "date: $(date -u +%FT%TZ)"
  echo "backend: $backend"
  echo "uptime: $(uptime)"
  "$PYTHON" -c 'import jax; print("jax", jax.__version__); print(jax.devices())'
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv
} > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

left() { echo $(( BUDGET_S - ($(date +%s) - START) )); }

sweep() {  # sweep NAME [flags...]: runs one sweep under the time left, logs to OUT.
  local name=$1; shift
  local remaining; remaining=$(left)
  if (( remaining < 20 )); then
    echo "accelerator.sh: no time left for the $name sweep." | tee -a "$OUT/skipped.txt"
    return
  fi
  echo "== $name sweep ($remaining s left) =="
  timeout --signal=INT --kill-after=10 "$remaining" "$PYTHON" -m benchmarks.throughput --sweep="$name" \
    --workdir="$OUT" --torch=no --rounds=3 --repeats=5 --seconds_per_shape=15 "$@" \
    2> "$OUT/$name.log" || echo "accelerator.sh: the $name sweep stopped early" \
    "(exit $?); see $OUT/$name.log." | tee -a "$OUT/skipped.txt"
}

sweep default --streams=1,256,4096
sweep length --lengths=64,256,1024,4096 --tokens_per_batch=16384
sweep batch --batch_sizes=16,64,256,1024
sweep width --widths=64,128,256,512

echo "== total $(( $(date +%s) - START )) s; results in $OUT =="
ls -l "$OUT"
