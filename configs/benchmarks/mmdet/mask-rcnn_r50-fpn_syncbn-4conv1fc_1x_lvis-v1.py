# Mask R-CNN R50-FPN 1x on LVIS v1: SoCo's long-tail transfer (LVIS v1 box / mask AP; the
# official README lists supervised 20.4 / 19.4 and SoCo* 26.3 / 25.0). Recipe: detectron2's
# LVISv1-InstanceSegmentation/mask_rcnn_R_50_FPN_1x as mmdet ports it
# (lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py: repeat-factor sampling with threshold
# 1e-3, multi-scale 640-800, 1x, up to 300 detections per image with score >= 1e-4), with this
# plugin's transfer protocol of mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py: SyncBN everywhere,
# all stages trainable, 4conv1fc box head (receives the pre-trained RoI head), 8 GPUs x 2 images.
# Evaluation needs the `lvis` package (mmdet's LVISMetric); data under data/lvis_v1/ (LVIS v1
# annotations, COCO 2017 images).
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   mim train mmdet THIS_CONFIG --launcher pytorch -G 8 --cfg-options load_from=CONVERTED.pth
# Twins under the same protocol: *_supervised (torchvision ImageNet weights), *_random-init.
_base_ = 'mmdet::lvis/mask-rcnn_r50_fpn_sample1e-3_ms-1x_lvis-v1.py'

custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, init_cfg=None),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

auto_scale_lr = dict(enable=False, base_batch_size=16)

load_from = None  # --cfg-options load_from=CONVERTED.pth
