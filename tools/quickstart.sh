#!/usr/bin/env bash
# The main job, on a laptop CPU (~15 min after setup on 2 idle cores): setup (if needed) ->
# real-photo data (if needed) -> MCL pre-training on data/pretrain (64-px views, batch 32,
# PRETRAIN_ITERS iterations) -> linear and nearest-centroid (NCM) probes on the object crops of
# data/objects_coco (val split, and pooled over train + val in folds of whole object instances),
# MCL (online and EMA backbone) next to random init with 3 seeds -> a table
# and a reading that says which differences exceed 3x random init's seed spread
# (WORK/results.md). Knobs (environment):
#   PRETRAIN_ITERS  MCL iterations (default 400; 10 with SMALL=1)
#   JOB_THREADS     torch threads (default 2)
#   WORK            output folder (default work_dirs/quickstart)
#   SMALL=1         smoke run in minutes on the tiny --small data (what the test suite runs; its
#                   numbers only show that every stage runs)
#   FINETUNE=1      the transfer chain instead of the probes: MCL pre-training (demo config,
#                   PRETRAIN_ITERS default 100) -> convert -> check -> fine-tune Mask R-CNN
#                   R18-FPN on data/objects_coco next to a random-init twin (FT_EPOCHS, default
#                   2) -> COCO box / mask AP, about 1 hour; at that budget the two detectors
#                   differ by noise (docs/results/protocol_finetune_retired.md)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
START=$(date +%s)
if [ "${SMALL:-0}" = 1 ]; then PRETRAIN_ITERS=${PRETRAIN_ITERS:-10}
elif [ "${FINETUNE:-0}" = 1 ]; then PRETRAIN_ITERS=${PRETRAIN_ITERS:-100}
else PRETRAIN_ITERS=${PRETRAIN_ITERS:-400}; fi
FT_EPOCHS=${FT_EPOCHS:-2}
WORK=${WORK:-work_dirs/quickstart}
stamp() { printf '\n[quickstart %5ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }

stamp "1/4 environment (tools/setup.sh)"
bash tools/setup.sh
PY=${MCL_VENV:-$ROOT/.venv}/bin/python

stamp "2/4 data (tools/prepare_data.py; cached after the first run)"
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

if [ "${FINETUNE:-0}" != 1 ]; then
  # The probes: MCL at 64 px (tiles 64/32/16 px = 2x2 cells of P5/P4/P3), batch 32 (lr scaled
  # linearly from the demo's 0.25 at 16), the schedule above; then the linear and NCM probes
  # of its online and EMA backbones at 64 px next to random init (seeds 0, 1, 2).
  PROBE_OPTS=(
    "train_dataloader.dataset.pipeline.1.transforms.0.0.scale=64"
    "train_dataloader.dataset.pipeline.1.transforms.1.0.scale=64"
    "model.tile_pooler.out_size=2" "train_dataloader.batch_size=32"
    "optim_wrapper.optimizer.lr=0.5"
  )
  if [ "${SMALL:-0}" = 1 ]; then  # the --small photo set: the demo's batch 16, one worker
    PROBE_OPTS+=("train_dataloader.batch_size=16" "optim_wrapper.optimizer.lr=0.25"
      "train_dataloader.num_workers=1" "train_dataloader.persistent_workers=False")
  fi
  stamp "3/4 MCL pre-training ($PRETRAIN_ITERS iterations, 64-px views)"
  OMP_NUM_THREADS=${JOB_THREADS:-2} "$PY" tools/train.py "$PRE" --work-dir "$WORK/mcl/pretrain" \
    --cfg-options "${PRE_OPTS[@]}" "train_cfg.max_iters=$PRETRAIN_ITERS" "${PROBE_OPTS[@]}"
  CKPT=$WORK/mcl/pretrain/iter_$PRETRAIN_ITERS.pth
  stamp "4/4 linear + NCM probes on the object crops (random init seeds 0,1,2 vs MCL)"
  for BACKBONE in online ema; do
    OUT=$WORK/linear_probe; EMA=()
    if [ $BACKBONE = ema ]; then OUT=$WORK/linear_probe_ema; EMA=(--use-ema); fi
    OMP_NUM_THREADS=${JOB_THREADS:-2} "$PY" tools/analysis/linear_probe.py random "mcl=$CKPT" \
      "${EMA[@]}" --seeds 0,1,2 --data-root "$COCO" --img-size 64 --workers 0 --no-progress \
      --out-dir "$OUT" --baseline random > "$OUT.log"
  done
  {
    echo "# Quickstart: MCL ($PRETRAIN_ITERS iterations x 32 images, 64 px) vs random init"
    echo
    echo "Object crops of $COCO at 64 px. Linear: a softmax layer on standardised features"
    echo "(seeded: 3 seeds each). NCM: nearest class centroid on centred, L2-normalised"
    echo "features (no training; random init's seeds are 3 different initialisations). CV: a"
    echo "logistic regression whose L2 strength is cross-validated on train (folds of whole"
    echo "object instances). Pooled: NCM and CV over every crop of train + val, each scored in"
    echo "one of 5 folds of whole instances by a model fitted on the other four."
    for BACKBONE in online ema; do
      OUT=$WORK/linear_probe; [ $BACKBONE = ema ] && OUT=$WORK/linear_probe_ema
      echo; echo "## MCL $BACKBONE backbone"; echo
      grep '^|' "$OUT/linear.md"; echo; cat "$OUT/reading.md"
    done
  } > "$WORK/results.md"
  cat "$WORK/results.md"
  stamp "done: $WORK/results.md"
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
