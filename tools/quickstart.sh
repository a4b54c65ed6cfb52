#!/usr/bin/env bash
# The main job, on a laptop CPU: setup (if needed) -> real-photo data (if needed) -> MCL
# pre-training (CPU demo config) -> convert + check -> fine-tune Mask R-CNN R18-FPN on
# data/objects_coco -> COCO box/mask AP, next to the random-init twin fine-tuned with the same
# budget -> loss-curve PNGs. Knobs (environment):
#   PRETRAIN_ITERS  MCL iterations (default 100)     FT_EPOCHS  fine-tune epochs (default 2)
#   JOB_THREADS     torch threads per job (default 1; the two jobs run side by side)
#   WORK            output folder (default work_dirs/quickstart)
#   SMALL=1         smoke run in minutes: the tiny --small data, PRETRAIN_ITERS (default 10)
#                   MCL iterations at 64 px, then the linear probe (tools/analysis/linear_probe.py,
#                   random init seeds 0-2 vs MCL) and the frozen-feature detection probe
#                   (tools/analysis/det_probe.py, 20 iterations) instead of the Mask R-CNN
#                   fine-tunes; the numbers only show that every stage runs
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
START=$(date +%s)
if [ "${SMALL:-0}" = 1 ]; then PRETRAIN_ITERS=${PRETRAIN_ITERS:-10}; else PRETRAIN_ITERS=${PRETRAIN_ITERS:-100}; fi
FT_EPOCHS=${FT_EPOCHS:-2}
WORK=${WORK:-work_dirs/quickstart}
stamp() { printf '\n[quickstart %5ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }

stamp "1/5 environment (tools/setup.sh)"
bash tools/setup.sh
PY=${MCL_VENV:-$ROOT/.venv}/bin/python

stamp "2/5 data (tools/prepare_data.py; cached after the first run)"
DATA=data
if [ "${SMALL:-0}" = 1 ]; then DATA=$WORK/data_small; "$PY" tools/prepare_data.py --small --out "$DATA"
else "$PY" tools/prepare_data.py --out "$DATA"; fi
COCO=$DATA/objects_coco
NCLS=$(grep -c . "$COCO/classes.txt")
CLASSES=$(grep . "$COCO/classes.txt" | paste -sd, -)
FT=configs/benchmarks/mmdet/mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py
FT_RANDOM=${FT%.py}_random-init.py
# Same data, classes and schedule for both fine-tunes: FT_EPOCHS epochs, lr step at 2/3; no
# validation inside training (the chain's test stage evaluates the final model once).
FT_OPTS=(
  "train_cfg.max_epochs=$FT_EPOCHS" "train_cfg.val_interval=$(( FT_EPOCHS + 1 ))"
  "param_scheduler.1.end=$FT_EPOCHS" "param_scheduler.1.milestones=[$(( FT_EPOCHS * 2 / 3 > 0 ? FT_EPOCHS * 2 / 3 : 1 ))]"
  "default_hooks.checkpoint.interval=$FT_EPOCHS"
  "model.roi_head.bbox_head.num_classes=$NCLS" "model.roi_head.mask_head.num_classes=$NCLS"
  "train_dataloader.dataset.data_root=$COCO/" "val_dataloader.dataset.data_root=$COCO/"
  "test_dataloader.dataset.data_root=$COCO/"
  "train_dataloader.dataset.metainfo.classes=[$CLASSES]"
  "val_dataloader.dataset.metainfo.classes=[$CLASSES]"
  "test_dataloader.dataset.metainfo.classes=[$CLASSES]"
  "val_evaluator.ann_file=$COCO/annotations/instances_val.json"
  "test_evaluator.ann_file=$COCO/annotations/instances_val.json"
)
PRE=configs/mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py
WARM=$(( PRETRAIN_ITERS / 10 > 0 ? PRETRAIN_ITERS / 10 : 1 ))
PRE_OPTS=(
  "train_dataloader.dataset.data_root=$DATA/pretrain"
  "param_scheduler.0.end=$WARM" "param_scheduler.1.begin=$WARM"
  "param_scheduler.1.T_max=$(( PRETRAIN_ITERS - WARM ))" "param_scheduler.1.end=$PRETRAIN_ITERS"
  "default_hooks.checkpoint.interval=$PRETRAIN_ITERS"
)

if [ "${SMALL:-0}" = 1 ]; then
  # Smoke run: MCL at 64 px (tiles 64/32/16 px = 2x2 cells of P5/P4/P3), then the two probes.
  SMALL_OPTS=(
    "train_dataloader.dataset.pipeline.1.transforms.0.0.scale=64"
    "train_dataloader.dataset.pipeline.1.transforms.1.0.scale=64"
    "model.tile_pooler.out_size=2" "train_dataloader.num_workers=1"
    "train_dataloader.persistent_workers=False"
  )
  stamp "3/5 MCL pre-training ($PRETRAIN_ITERS iterations at 64 px)"
  OMP_NUM_THREADS=${JOB_THREADS:-1} "$PY" tools/train.py "$PRE" --work-dir "$WORK/mcl/pretrain" \
    --cfg-options "${PRE_OPTS[@]}" "train_cfg.max_iters=$PRETRAIN_ITERS" "${SMALL_OPTS[@]}"
  CKPT=$WORK/mcl/pretrain/iter_$PRETRAIN_ITERS.pth
  stamp "4/5 linear probe on object crops (random init seeds 0,1,2 vs MCL)"
  OMP_NUM_THREADS=${JOB_THREADS:-1} "$PY" tools/analysis/linear_probe.py random "mcl=$CKPT" \
    --seeds 0,1,2 --data-root "$COCO" --img-size 64 --workers 0 --out-dir "$WORK/linear_probe"
  stamp "5/5 frozen-feature detection probe (backbone + FPN + head convs frozen)"
  OMP_NUM_THREADS=${JOB_THREADS:-1} "$PY" tools/analysis/det_probe.py random "mcl=$CKPT" \
    --variants all --iters 20 --batch-size 2 --rois-per-image 16 --scale 128 96 \
    --data-root "$COCO" --out-dir "$WORK/det_probe"
  stamp "done: $WORK/linear_probe/linear.md, $WORK/det_probe/det.md"
  exit 0
fi

# Two independent jobs on a 2-core laptop: the random-init twin (which needs no pre-training)
# fine-tunes in the background while MCL pre-trains and then fine-tunes. One thread each: small
# CPU tensors gain nothing from a second OpenMP thread, and two jobs keep both cores busy.
stamp "3/5 random-init twin in the background (log: $WORK/random_init.log)"
mkdir -p "$WORK"
OMP_NUM_THREADS=${JOB_THREADS:-1} "$PY" tools/pretrain_and_finetune.py none "$FT_RANDOM" \
  --no-pretrain --work-dir "$WORK/random_init" --finetune-cfg-options "${FT_OPTS[@]}" \
  > "$WORK/random_init.log" 2>&1 &
RANDOM_PID=$!

stamp "4/5 MCL pre-training ($PRETRAIN_ITERS iterations) -> convert -> check -> fine-tune -> test"
OMP_NUM_THREADS=${JOB_THREADS:-1} "$PY" tools/pretrain_and_finetune.py "$PRE" "$FT" \
  --work-dir "$WORK/mcl" --pretrain-iters "$PRETRAIN_ITERS" \
  --pretrain-cfg-options "${PRE_OPTS[@]}" --finetune-cfg-options "${FT_OPTS[@]}"
stamp "waiting for the random-init twin"
if ! wait "$RANDOM_PID"; then
  tail -30 "$WORK/random_init.log" >&2
  echo "[quickstart] the random-init fine-tune failed (full log: $WORK/random_init.log)" >&2
  exit 1
fi
tail -4 "$WORK/random_init.log"

stamp "5/5 results"
last_json() { ls -t "$1"/*/vis_data/*.json 2>/dev/null | grep -v scalars | head -1; }
"$PY" tools/analysis/plot_curves.py "$(last_json "$WORK/mcl/pretrain")" --legend mcl \
  --out "$WORK/pretrain_curves.png"
"$PY" tools/analysis/plot_curves.py "$(last_json "$WORK/mcl/finetune")" \
  "$(last_json "$WORK/random_init/finetune")" --legend mcl random-init \
  --keys loss loss_rpn_cls loss_rpn_bbox loss_cls loss_bbox loss_mask lr \
  --out "$WORK/finetune_curves.png"
echo
"$PY" tools/analysis/compare_results.py "$WORK/mcl" "$WORK/random_init" \
  --labels "MCL ($PRETRAIN_ITERS it)" "random init" --out "$WORK/results.md"
stamp "done: $WORK/results.md, $WORK/pretrain_curves.png, $WORK/finetune_curves.png"
