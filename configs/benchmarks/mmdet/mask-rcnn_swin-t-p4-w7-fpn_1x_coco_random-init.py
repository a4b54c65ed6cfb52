# Random-init twin of mask-rcnn_swin-t-p4-w7-fpn_1x_coco.py: the LOWER BOUND (no pre-trained
# weights). Do not pass load_from.
_base_ = './mask-rcnn_swin-t-p4-w7-fpn_1x_coco.py'

model = dict(backbone=dict(convert_weights=False, init_cfg=None))
load_from = None
