# RetinaNet R50-FPN 1x on COCO with SyncBN in the backbone and the FPN, all stages trainable
# (frozen_stages=-1, norm_eval=False); mmdet's 1x single-scale recipe otherwise.
# Transfers backbone + FPN: the RetinaNet FPN starts at C3 (start_level=1, extra convs on C5), so
# the converter re-aligns pre-trained FPN levels (C3..C5) and leaves P6/P7 convs at init; the
# RoI/tile head of the pre-training has no counterpart here and is not transferred.
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   ... train with --cfg-options load_from=CONVERTED.pth
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, init_cfg=None),
    neck=dict(norm_cfg=norm_cfg))

auto_scale_lr = dict(enable=False, base_batch_size=16)

load_from = None  # --cfg-options load_from=CONVERTED.pth
