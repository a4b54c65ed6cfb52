# Random-init twin of retinanet_r50-fpn_syncbn_12k_coco-1pct.py (same protocol, no pre-trained
# weights): the LOWER BOUND of the 1 % low-data regime. Do not pass load_from.
_base_ = './retinanet_r50-fpn_syncbn_12k_coco-1pct.py'

model = dict(backbone=dict(init_cfg=None))
load_from = None
