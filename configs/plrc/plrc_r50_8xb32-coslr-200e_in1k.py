# PLRC paper recipe (ImageNet-1K, 200 asymmetric epochs ~ 100 symmetric ones): ResNet-50,
# MoCo v2 optimisation: 8 GPUs x 32 = batch 256, SGD lr 0.03 (= 0.03 * B / 256), momentum 0.9,
# wd 1e-4, cosine schedule; no affinity distillation for the first 30 epochs (Sec. 4.1).
# Norm: plain BN with MoCo's shuffle BN across GPUs (MoCo v2's recipe, not SyncBN: a
# synchronised BN would leak batch statistics between query and key the same way a single
# GPU's BN does). Point negatives come from the 32 images of each GPU (256 points per image).
_base_ = [
    '../_base_/models/plrc_r50.py',
    '../_base_/datasets/plrc_imagenet.py',
    '../_base_/default_runtime.py',
]

batch_size = 32  # per GPU
num_gpus = 8
train_dataloader = dict(batch_size=batch_size)

max_epochs = 200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03 * batch_size * num_gpus / 256, momentum=0.9,
                   weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         convert_to_iter_based=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=256)
custom_hooks = [
    *_base_.custom_hooks,
    dict(type='PLRCDistillWarmupHook', warmup=30, by_epoch=True),
]
