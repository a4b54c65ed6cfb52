# Random-init twin of mask-rcnn_r50-fpn_syncbn-4conv1fc_2x_coco.py: the LOWER BOUND (no
# pre-trained weights). Do not pass load_from.
_base_ = './mask-rcnn_r50-fpn_syncbn-4conv1fc_2x_coco.py'

model = dict(backbone=dict(init_cfg=None))
load_from = None
