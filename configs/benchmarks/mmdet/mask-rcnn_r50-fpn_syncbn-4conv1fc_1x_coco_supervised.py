# Supervised-ImageNet twin of mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py (same protocol): the
# backbone starts from torchvision's ResNet-50 weights. mmengine DOWNLOADS them on first use
# (torchvision://resnet50 -> ~/.cache/torch/hub/checkpoints): for machines with internet access.
_base_ = './mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py'

# _delete_=True: the protocol config sets init_cfg=None, which a dict cannot be merged into.
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='torchvision://resnet50')))
