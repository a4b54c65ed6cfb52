# mmpretrain's BYOL recipe as published (ResNet-50, SyncBN, projector/predictor 4096 -> 256,
# base momentum 0.01, LARS lr 4.8, 16 GPUs x 256, 200 epochs on ImageNet): the paper-scale
# baseline the plugin's methods are compared with (tools/benchmark.py --heads paper). Inherited
# unchanged except that the runtime joins the plugin's scope, as every config here does, and the
# colour jitter is the plugin's HueSafeColorJitter (same arguments; mmpretrain's hue step fails
# under numpy 2), named with its scope because the inherited pipeline is built in mmpretrain's.
_base_ = 'mmpretrain::byol/byol_resnet50_16xb256-coslr-200e_in1k.py'

default_scope = 'mcl_plugin'
custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

hue_safe_jitter = dict(
    type='RandomApply',
    transforms=[
        dict(type='mcl_plugin.HueSafeColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
             hue=0.1)
    ],
    prob=0.8)
view_pipeline1 = [*_base_.view_pipeline1[:2], hue_safe_jitter, *_base_.view_pipeline1[3:]]
view_pipeline2 = [*_base_.view_pipeline2[:2], hue_safe_jitter, *_base_.view_pipeline2[3:]]
train_pipeline = [
    _base_.train_pipeline[0],
    dict(_base_.train_pipeline[1], transforms=[view_pipeline1, view_pipeline2]),
    _base_.train_pipeline[2],
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
