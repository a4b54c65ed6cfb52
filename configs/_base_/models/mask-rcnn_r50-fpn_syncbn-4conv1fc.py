# Mask R-CNN R50-FPN as the detection-transfer protocol of the mmselfsup / mmpretrain benchmarks
# fine-tunes it, without data or schedule: SyncBN everywhere, all stages trainable
# (frozen_stages=-1, norm_eval=False), a 4conv1fc box head with norm (the pre-trained tile/RoI head
# maps onto its shared_convs), no backbone init (the converted checkpoint comes with load_from).
# Shared by the COCO, LVIS and Cityscapes configs under configs/benchmarks/mmdet/, which add an
# mmdet dataset, schedule and runtime base (a second `model` among the bases would be a KeyError).
_base_ = 'mmdet::_base_/models/mask-rcnn_r50_fpn.py'

custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, init_cfg=None),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))
