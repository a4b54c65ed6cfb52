# Supervised-ImageNet twin of retinanet_r50-fpn_syncbn_1x_coco.py (same protocol). mmengine
# DOWNLOADS torchvision://resnet50 on first use: for machines with internet access.
_base_ = './retinanet_r50-fpn_syncbn_1x_coco.py'

# _delete_=True: the protocol config sets init_cfg=None, which a dict cannot be merged into.
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='torchvision://resnet50')))
