# RetinaNet R50-FPN on 10 % of COCO train2017 labels, 12k iterations: MCL's low-data detection
# protocol (Table 4: RetinaNet fine-tuned on 1 / 5 / 10 % of the COCO labels for 12k iterations,
# evaluated on the full val2017). The detector and the transfer are those of
# retinanet_r50-fpn_syncbn_1x_coco.py (SyncBN backbone + FPN, all stages trainable, mmdet's
# single-scale 1333x800 pipeline, SGD lr 0.01, wd 1e-4, 8 GPUs x 2 images); only the data and the
# schedule change: 12k iterations with mmdet's 1x shape scaled to them (500-iteration warm-up,
# x0.1 at 8k and 11k). The paper gives the iteration count, not the step points: 8k / 11k are
# this plugin's choice (the 1x ratios 8/12 and 11/12).
# The subset files are made by the split tool (disjoint folds of one seeded permutation):
#   python tools/data_builder/split_coco.py data/coco/annotations/instances_train2017.json \
#       --percents 1 5 10 --folds 5 --seed 1
# Report mean and std over folds: --cfg-options
#   train_dataloader.dataset.ann_file=annotations/instances_train2017_10pct_fold1.json
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   mim train mmdet THIS_CONFIG --launcher pytorch -G 8 --cfg-options load_from=CONVERTED.pth
# Twins: *_supervised (torchvision ImageNet weights), *_random-init; 5pct / 1pct siblings.
_base_ = './retinanet_r50-fpn_syncbn_1x_coco.py'

train_dataloader = dict(
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(ann_file='annotations/instances_train2017_10pct_fold0.json'))

max_iters = 12000
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[8000, 11000],
        gamma=0.1)
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
