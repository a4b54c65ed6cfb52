# Mask R-CNN R50-C4 1x on COCO, mmselfsup / mmpretrain C4 benchmark protocol: pytorch-style
# ResNet-50 (3 stages, RGB mean/std), SyncBN, all stages trainable, res5 shared head with an extra
# norm (mmpretrain's ResLayerExtraNorm, registered into mmdet's registry), multi-scale 640-800.
# The converter fills roi_head.shared_head.layer4 from the pre-trained C4 head
# (tile_head.layer4) or, for 4-stage backbones (BYOL/MoCo, FPN pre-training), from backbone.layer4.
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   ... train with --cfg-options load_from=CONVERTED.pth
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50-caffe-c4_1x_coco.py'

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
            type='ResLayerExtraNorm', norm_cfg=norm_cfg, norm_eval=False, style='pytorch')))

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

auto_scale_lr = dict(enable=False, base_batch_size=16)

load_from = None  # --cfg-options load_from=CONVERTED.pth
