# Mask R-CNN R50-FPN 2x (24 epochs, steps at 16 and 22), otherwise identical to
# mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py (SyncBN protocol, 4conv1fc head, 640-800).
# Pass the converted checkpoint with --cfg-options load_from=CONVERTED.pth.
_base_ = './mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py'

max_epochs = 24
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[16, 22],
        gamma=0.1)
]
