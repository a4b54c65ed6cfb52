# Random-init twin of mask-rcnn_r50-fpn_syncbn-4conv1fc_24k_cityscapes.py
# (same protocol, no pre-trained weights at all): the LOWER BOUND. Do not pass load_from.
_base_ = './mask-rcnn_r50-fpn_syncbn-4conv1fc_24k_cityscapes.py'

model = dict(backbone=dict(init_cfg=None))
load_from = None
