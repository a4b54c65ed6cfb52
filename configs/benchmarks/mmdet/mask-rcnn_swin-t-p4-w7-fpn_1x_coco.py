# Mask R-CNN Swin-T FPN 1x on COCO: mmdet's recipe (AdamW 1e-4, wd 0.05, 2fc box head) with the
# Microsoft ImageNet init removed and convert_weights=False, because plugin / mmpretrain Swin
# checkpoints already use mmdet's key names. mmdet's SwinTransformer ignores init_cfg.prefix and
# only keeps backbone.* keys, so hand weights over with the converter and load_from:
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   ... train with --cfg-options load_from=CONVERTED.pth
# Transfers backbone + FPN (the 2fc box head has no pre-trained counterpart).
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'

custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

model = dict(backbone=dict(convert_weights=False, init_cfg=None))

load_from = None  # --cfg-options load_from=CONVERTED.pth
