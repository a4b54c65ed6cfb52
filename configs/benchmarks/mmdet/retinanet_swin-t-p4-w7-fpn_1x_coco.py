# RetinaNet Swin-T FPN 1x on COCO: mmdet's recipe (out_indices=(1, 2, 3), FPN start_level=0) with
# the Microsoft ImageNet init removed and convert_weights=False (plugin / mmpretrain Swin keys are
# already mmdet's). Transfers the backbone and the FPN levels C3..C5 (re-aligned by the converter):
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   ... train with --cfg-options load_from=CONVERTED.pth
# The backbone has norm1..norm3 only (out_indices), so a checkpoint's norm0 is reported unexpected.
_base_ = 'mmdet::swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py'

custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

# SyncBN in the FPN, as in the R50 protocol, so a pre-trained (normed) FPN transfers.
model = dict(backbone=dict(convert_weights=False, init_cfg=None),
             neck=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)))

load_from = None  # --cfg-options load_from=CONVERTED.pth
