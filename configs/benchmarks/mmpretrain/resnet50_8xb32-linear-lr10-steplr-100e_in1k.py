# ImageNet-1k linear evaluation of a pre-trained ResNet-50: MCL's protocol (linear top-1 after
# 100 pre-training epochs): frozen backbone (frozen_stages=4, every BN in eval mode, so the
# pre-trained statistics are used), global average pooling, one linear layer (init normal std
# 0.01), SGD lr 10, momentum 0.9, weight decay 0, batch 256 (8 GPUs x 32), 100 epochs.
# Built on mmpretrain's MoCo v2 linear benchmark
# (mocov2/benchmarks/resnet50_8xb32-linear-steplr-100e_in1k.py, the OpenSelfSup protocol MCL's
# code base comes from: RandomResizedCrop 224 + flip, test resize 256 / center crop 224,
# lr x0.1 at epochs 60 and 80); only the learning rate changes, 30 -> 10. The step points are
# that base's: MCL states lr, momentum, weight decay, batch and epochs.
# The weights: the backbone's init_cfg takes the `backbone.` keys of the pre-training checkpoint
# (the file needs no conversion; plugin and mmdet ResNet keys equal mmpretrain's). The
# checkpoint is left empty on purpose, so that forgetting it fails instead of training a linear
# layer on a random network:
#   mim train mmpretrain THIS_CONFIG --launcher pytorch -G 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=PRETRAIN.pth
# (EMA target instead: model.backbone.init_cfg.prefix=target_net.module.backbone.)
_base_ = 'mmpretrain::mocov2/benchmarks/resnet50_8xb32-linear-steplr-100e_in1k.py'

custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        frozen_stages=4,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.')))

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=10., momentum=0.9, weight_decay=0.))

train_dataloader = dict(batch_size=32)
auto_scale_lr = dict(enable=False, base_batch_size=256)
