# Supervised-ImageNet twin of faster-rcnn_r50-c4_syncbn_24k_voc0712.py (same protocol; the
# "supervised" row of DetCo Table 6 / PLRC Table 1 / MoCo Table 2): res2-res4 and the res5 shared
# head both start from torchvision's ResNet-50 (its layer4.* keys match the shared head's layer4).
# mmengine DOWNLOADS torchvision://resnet50 on first use: for machines with internet access.
_base_ = './faster-rcnn_r50-c4_syncbn_24k_voc0712.py'

# _delete_=True: the protocol config sets init_cfg=None, which a dict cannot be merged into.
model = dict(
    backbone=dict(
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint='torchvision://resnet50')),
    roi_head=dict(
        shared_head=dict(
            init_cfg=dict(_delete_=True, type='Pretrained',
                          checkpoint='torchvision://resnet50'))))
