#!/usr/bin/env bash
# V2S (default settings, one seed, honest protocol) on every dataset of a UCR folder, then the table.
#   bash scripts/run_ucr19.sh ../shared/ucr        (the 19 datasets the README table reports)
#   OUT=results/ucr19_l2_0 FLAGS="--l2 0" bash scripts/run_ucr19.sh ../shared/ucr     (an ablation: extra flags)
#   JOBS=2 bash scripts/run_ucr19.sh ../shared/ucr  (two datasets at a time, one TF thread each, largest first)
# A rerun skips datasets whose summary.json exists; a killed dataset resumes from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
UCR=${1:?usage: run_ucr19.sh UCR_FOLDER}
OUT=${OUT:-results/ucr19}
PY=${PY:-.venv/bin/python}
FLAGS=${FLAGS:-}
JOBS=${JOBS:-1}
TABLE=${TABLE:-results/$(basename "$OUT")}
[ -d "$UCR" ] || { echo "run_ucr19.sh: UCR folder $UCR not found (expected <Name>/<Name>_TRAIN.tsv[.gz] inside)." >&2; exit 2; }
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || { echo "run_ucr19.sh: JOBS must be a positive integer, got '$JOBS'." >&2; exit 2; }
export UCR OUT PY FLAGS
# One job at a time runs cheapest first (early results soon); parallel jobs start largest first (balanced finish).
order=$([ "$JOBS" -gt 1 ] && echo "-rn" || echo "-n")
names=$(for d in "$UCR"/*/; do n=$(basename "$d"); f=$(ls "$d" | grep -i "_TRAIN" | head -1); \
        echo "$(zcat -f "$d/$f" | wc -l) $n"; done | sort $order | awk '{print $2}')
run_one() {
  name=$1
  if [ -f "$OUT/$name/summary.json" ]; then echo "skip $name (done)"; return; fi
  resume=""; [ -f "$OUT/$name/ckpt/state.json" ] && resume="--resume"
  $PY v2s_main.py --dataset "$name" --data-dir "$UCR" --out "$OUT/$name" --verbose 0 $FLAGS $resume
}
export -f run_one
if [ "$JOBS" -gt 1 ]; then
  export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
  echo "$names" | xargs -P "$JOBS" -I{} bash -c 'run_one {}'
else
  for name in $names; do run_one "$name"; done
fi
$PY results_table.py "$OUT" --md "$TABLE.md" --csv "$TABLE.csv"
