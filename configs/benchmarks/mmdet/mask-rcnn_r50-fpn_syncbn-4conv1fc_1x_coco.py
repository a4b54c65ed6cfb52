# Mask R-CNN R50-FPN 1x on COCO, fine-tuning protocol of the mmselfsup / mmpretrain detection
# benchmarks: SyncBN everywhere, all stages trainable (frozen_stages=-1, norm_eval=False), a
# 4conv1fc box head with norm (the pre-trained tile/RoI head maps onto its shared_convs),
# multi-scale training 640-800, 8 GPUs x 2 images.
#
# The pre-trained weights are NOT in this file. Convert the pre-training checkpoint and pass it:
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   python tools/check_pretrained.py THIS_CONFIG CONVERTED.pth
#   mim train mmdet THIS_CONFIG --launcher pytorch -G 8 --cfg-options load_from=CONVERTED.pth
# Twins under the same protocol: *_supervised (torchvision ImageNet weights), *_random-init.
# The model (SyncBN, 4conv1fc head, no backbone init) is the shared protocol base, also used by
# the LVIS and Cityscapes configs; data, schedule and runtime are mmdet's COCO 1x ones.
_base_ = [
    '../../_base_/models/mask-rcnn_r50-fpn_syncbn-4conv1fc.py',
    'mmdet::_base_/datasets/coco_instance.py', 'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py'
]

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(1333, 640), (1333, 672), (1333, 704), (1333, 736), (1333, 768),
                (1333, 800)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# Linear scaling rule for other GPU counts: --auto-scale-lr (base batch 16).
auto_scale_lr = dict(enable=False, base_batch_size=16)

load_from = None  # --cfg-options load_from=CONVERTED.pth
