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
# Built like mmdet's config: the protocol model base with mmdet's LVIS v1 data, 1x schedule and
# runtime, then that config's LVIS head and test settings.
_base_ = [
    '../../_base_/models/mask-rcnn_r50-fpn_syncbn-4conv1fc.py',
    'mmdet::_base_/datasets/lvis_v1_instance.py', 'mmdet::_base_/schedules/schedule_1x.py',
    'mmdet::_base_/default_runtime.py'
]

model = dict(
    roi_head=dict(bbox_head=dict(num_classes=1203), mask_head=dict(num_classes=1203)),
    test_cfg=dict(rcnn=dict(score_thr=0.0001, max_per_img=300)))  # LVIS allows up to 300
