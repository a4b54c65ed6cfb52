# Supervised-ImageNet twin of retinanet_r50-fpn_syncbn_12k_coco-1pct.py (same protocol; the
# "supervised" row of MCL Table 4). mmengine DOWNLOADS torchvision://resnet50 on first use.
_base_ = './retinanet_r50-fpn_syncbn_12k_coco-1pct.py'

# _delete_=True: the protocol config sets init_cfg=None, which a dict cannot be merged into.
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='torchvision://resnet50')))
