# Faster R-CNN R50-C4 on PASCAL VOC07+12, 24k iterations: the VOC transfer protocol of DetCo
# (Table 6), PLRC (Table 1) and SoCo, which all take MoCo's detectron2 recipe
# (facebookresearch/moco detection/configs/pascal_voc_R_50_C4_24k_moco.yaml over
# Base-RCNN-C4-BN.yaml): pytorch-style R50 (RGB mean/std), SyncBN everywhere, all stages trainable
# (FREEZE_AT 0), res5 head with an extra norm (Res5ROIHeadsExtraNorm = mmpretrain's
# ResLayerExtraNorm), 8 GPUs x 2 images = batch 16, SGD lr 0.02, momentum 0.9, wd 1e-4 (none on
# norm layers, detectron2's WEIGHT_DECAY_NORM=0), 100-iteration linear warm-up, steps 18k / 22k,
# 24k iterations, multi-scale training (short side 480..800 step 32, long side <= 1333), test 800.
# Train on VOC2007+2012 trainval, test on VOC2007 test with the VOC07 11-point AP at IoU
# 0.50:0.05:0.95: `mAP` is detectron2's AP, `AP50` / `AP75` its AP50 / AP75.
# Built on mmdet's 18k recipe (pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py); its
# VOC2007 + VOC2012 ConcatDataset gets ignore_keys=['dataset_type'] (as mmdet's voc0712 base has),
# so that the training set's metainfo is one dict (classes, palette), not a list of two.
# Not reproduced: detectron2's PRECISE_BN at the end (mmpretrain's PreciseBNHook reads
# DataLoader.batch_size, which is None under mmdet's AspectRatioBatchSampler).
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   python tools/check_pretrained.py THIS_CONFIG CONVERTED.pth
#   mim train mmdet THIS_CONFIG --launcher pytorch -G 8 --cfg-options load_from=CONVERTED.pth
# Twins under the same protocol: *_supervised (torchvision ImageNet weights), *_random-init.
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py'

custom_imports = dict(
    imports=['mcl_plugin', 'mmpretrain.models.utils.res_layer_extra_norm'],
    allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(
        frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, style='pytorch', init_cfg=None),
    roi_head=dict(
        shared_head=dict(
            type='ResLayerExtraNorm',
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            init_cfg=None)))

# VOC2007 and VOC2012 set different metainfo['dataset_type']: without ignore_keys, mmdet's
# ConcatDataset turns its metainfo into a list of both.
train_dataloader = dict(batch_size=2, dataset=dict(ignore_keys=['dataset_type']))

val_evaluator = dict(
    type='VOCMetric',
    metric='mAP',
    eval_mode='11points',
    iou_thrs=[0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])
test_evaluator = val_evaluator

max_iters = 24000
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[18000, 22000],
        gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    paramwise_cfg=dict(norm_decay_mult=0.))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000, max_keep_ckpts=2))

auto_scale_lr = dict(enable=False, base_batch_size=16)

load_from = None  # --cfg-options load_from=CONVERTED.pth
