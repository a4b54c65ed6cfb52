# Random-init twin of faster-rcnn_r50-c4_syncbn_24k_voc0712.py (same protocol, no pre-trained
# weights at all): the LOWER BOUND (MoCo's "random init." row on VOC). Do not pass load_from.
_base_ = './faster-rcnn_r50-c4_syncbn_24k_voc0712.py'

model = dict(backbone=dict(init_cfg=None), roi_head=dict(shared_head=dict(init_cfg=None)))
load_from = None
