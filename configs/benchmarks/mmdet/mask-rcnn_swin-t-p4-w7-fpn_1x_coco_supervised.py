# Supervised-ImageNet twin of mask-rcnn_swin-t-p4-w7-fpn_1x_coco.py: the official Microsoft
# Swin-T ImageNet-1k checkpoint (hence convert_weights=True), DOWNLOADED by mmengine on first use:
# for machines with internet access.
_base_ = './mask-rcnn_swin-t-p4-w7-fpn_1x_coco.py'

pretrained = 'https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_tiny_patch4_window7_224.pth'  # noqa
# _delete_=True: the protocol config sets init_cfg=None, which a dict cannot be merged into.
model = dict(
    backbone=dict(
        convert_weights=True,
        init_cfg=dict(_delete_=True, type='Pretrained', checkpoint=pretrained)))
