# Supervised-ImageNet twin of mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_lvis-v1.py
# (same protocol): the backbone starts from torchvision's ResNet-50. mmengine DOWNLOADS
# torchvision://resnet50 on first use: for machines with internet access.
_base_ = './mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_lvis-v1.py'

# _delete_=True: the protocol config sets init_cfg=None, which a dict cannot be merged into.
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='torchvision://resnet50')))
