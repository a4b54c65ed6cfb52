# Supervised-ImageNet twin of mask-rcnn_r50-c4_syncbn_1x_coco.py (same protocol): res2-res4 and
# the res5 shared head both start from torchvision's ResNet-50 (its layer4.* keys match the
# shared head's layer4). mmengine DOWNLOADS torchvision://resnet50: for machines with internet.
_base_ = './mask-rcnn_r50-c4_syncbn_1x_coco.py'

# _delete_=True: the protocol config sets init_cfg=None, which a dict cannot be merged into.
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='torchvision://resnet50')),
    roi_head=dict(
        shared_head=dict(
            init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'))))
