#!/usr/bin/env bash
# Train and predict on a remote GPU machine in ONE unattended command: salt_train DATA --minutes M, then salt_predict
# on DATA's test tiles, from the working tree, a folder of wheels (.whl/) and a packed copy of the data.
# See gpu_remote/README.md.
#
# Here, once:
#   build .whl/ (the wheels the GPU image lacks; see gpu_remote/README.md)      # git-ignored, about 6 MB
#   .venv/bin/python gpu_remote/pack_device_data.py .cache/tgs_device.npz        # 3000 labeled + 2000 test tiles, 39 MB
# On the GPU machine, from the repository root, with .whl/ and .cache/ copied beside the working tree:
#   bash gpu_remote/device_call.sh [MINUTES=7] [CONFIG=gpu_scratch] [DATA=.cache/tgs_device.npz]
#
# $OUT gets the small results, 8 files at most: call.log (training and prediction output), metrics.json (held-out
# fold 0 score, CV-tuned score, img/s), postprocess.json, config.yaml, epochs.csv (the per-epoch logs of all folds),
# oof.npz (float16, compressed) and, when DATA has test tiles, submission.csv and test_probs.npz (uint8, compressed;
# about 11 MB for 2000 tiles): the files an ensemble member needs. Checkpoints stay on the machine ($RUN).
# MOSAICS=FILE passes a salt_mosaic CSV made here (annoy may have no wheel there; default none).
# Without .whl/ it runs in the current environment (that is how the test suite runs it on the CPU).
set -euo pipefail
MINUTES=${1:-7}; CONFIG=${2:-gpu_scratch}; DATA=${3:-.cache/tgs_device.npz}
OUT=${OUT:-runs/device_out}; RUN=${RUN:-/tmp/salt_device_run}; PY=${PYTHON:-python3}
t0=$(date +%s)
[ -e "$DATA" ] || { echo "device_call: no data file $DATA (make it with gpu_remote/pack_device_data.py and copy it along)" >&2; exit 2; }
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1
mkdir -p "$OUT" "$RUN.bin"
for cmd in salt_train:salt_nb.train salt_predict:salt_nb.inference; do   # console scripts without installing the package
  printf '#!/usr/bin/env python3\nimport sys\nfrom %s import %s\nsys.exit(%s())\n' "${cmd#*:}" "${cmd%%:*}" "${cmd%%:*}" > "$RUN.bin/${cmd%%:*}"
done
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "device_call: no nvidia-smi"
echo "device_call: setup $(( $(date +%s) - t0 )) s; training $CONFIG for $MINUTES min on $DATA"
"$PY" "$RUN.bin/salt_train" "$DATA" --out "$RUN" --minutes "$MINUTES" --config "$CONFIG" --quiet --overwrite 2>&1 | tee "$OUT/call.log"
t1=$(date +%s)
squeeze() { "$PY" -c "import numpy as np, sys; z = dict(np.load(sys.argv[1])); np.savez_compressed(sys.argv[2], **z)" "$1" "$2"; }
for f in metrics.json postprocess.json config.yaml; do [ -e "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"; done
[ -e "$RUN/oof.npz" ] && squeeze "$RUN/oof.npz" "$OUT/oof.npz"
"$PY" -c "import pandas as pd, sys, pathlib
fs = sorted(pathlib.Path(sys.argv[1]).glob('fold*.csv'))
if fs: pd.concat([pd.read_csv(f).assign(fold=int(f.stem[4:])) for f in fs]).to_csv(sys.argv[2], index=False)" "$RUN/logs" "$OUT/epochs.csv"
n_test=$("$PY" -c "import numpy as np, sys; print(len(np.load(sys.argv[1])['test_ids']))" "$DATA" 2>/dev/null || echo folder)
if [ "$n_test" = 0 ]; then
  echo "device_call: $DATA has no test tiles: no submission"
else
  "$PY" "$RUN.bin/salt_predict" --model "$RUN" --data "$DATA" --out "$OUT/submission.csv" --probs "$RUN/test_probs.npz" \
        --mosaics "${MOSAICS:-none}" --no-progress 2>&1 | tee -a "$OUT/call.log"
  squeeze "$RUN/test_probs.npz" "$OUT/test_probs.npz"
fi
t2=$(date +%s)
echo "device_call: train $(( t1 - t0 )) s (setup included), predict $(( t2 - t1 )) s, total $(( t2 - t0 )) s; results in $OUT"
