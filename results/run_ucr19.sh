#!/usr/bin/env bash
# V2S (default settings, one seed, honest protocol) on every dataset of a UCR folder, cheapest first, then the table.
#   bash results/run_ucr19.sh ../shared/ucr        (the 19 datasets the README table reports)
#   OUT=results/ucr19_l2_0 FLAGS="--l2 0" bash results/run_ucr19.sh ../shared/ucr     (an ablation: extra flags)
# A rerun skips datasets whose summary.json exists; a killed dataset resumes from its checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
UCR=${1:?usage: run_ucr19.sh UCR_FOLDER}
OUT=${OUT:-results/ucr19}
PY=${PY:-.venv/bin/python}
FLAGS=${FLAGS:-}
TABLE=${TABLE:-results/$(basename "$OUT")}
names=$(for d in "$UCR"/*/; do n=$(basename "$d"); f=$(ls "$d" | grep -i "_TRAIN" | head -1); \
        echo "$(zcat -f "$d/$f" | wc -l) $n"; done | sort -n | awk '{print $2}')
for name in $names; do
  if [ -f "$OUT/$name/summary.json" ]; then echo "skip $name (done)"; continue; fi
  resume=""; [ -f "$OUT/$name/ckpt/state.json" ] && resume="--resume"
  $PY v2s_main.py --dataset "$name" --data-dir "$UCR" --out "$OUT/$name" --verbose 0 $FLAGS $resume
done
$PY results_table.py "$OUT" --md "$TABLE.md" --csv "$TABLE.csv"
