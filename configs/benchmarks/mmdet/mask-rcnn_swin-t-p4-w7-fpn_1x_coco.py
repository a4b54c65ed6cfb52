# Mask R-CNN Swin-T FPN 1x on COCO: mmdet's recipe (AdamW 1e-4, wd 0.05, 2fc box head) with the
# Microsoft ImageNet init removed and convert_weights=False, because plugin / mmpretrain Swin
# checkpoints already use mmdet's key names. mmdet's SwinTransformer ignores init_cfg.prefix and
# only keeps backbone.* keys, so hand weights over with the converter and load_from:
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   ... train with --cfg-options load_from=CONVERTED.pth
# Same protocol as the R50 configs: SyncBN in FPN and heads, 4conv1fc box head, so backbone +
# FPN + the pre-trained 4-conv head (MCL / SoCo / MCL-sup) all transfer.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'

custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(convert_weights=False, init_cfg=None),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

load_from = None  # --cfg-options load_from=CONVERTED.pth
