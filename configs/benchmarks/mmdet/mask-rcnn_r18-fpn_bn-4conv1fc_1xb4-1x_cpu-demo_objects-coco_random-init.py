# Random-init twin of mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py: identical
# model, data and schedule, but no pre-trained weights ever (load_from stays None): the LOWER
# BOUND of the demo.
_base_ = './mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py'

model = dict(backbone=dict(init_cfg=None))
load_from = None
