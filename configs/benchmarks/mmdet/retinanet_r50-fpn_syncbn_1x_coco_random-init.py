# Random-init twin of retinanet_r50-fpn_syncbn_1x_coco.py: the LOWER BOUND (no pre-trained
# weights). Do not pass load_from.
_base_ = './retinanet_r50-fpn_syncbn_1x_coco.py'

model = dict(backbone=dict(init_cfg=None))
load_from = None
