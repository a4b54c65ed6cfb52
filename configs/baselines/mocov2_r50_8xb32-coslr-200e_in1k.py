# mmpretrain's MoCo v2 recipe as published (ResNet-50, queue 65536, 128-d keys, MLP hidden 2048,
# T = 0.2, key momentum 0.999, SGD lr 0.03, 8 GPUs x 32, 200 epochs on ImageNet): the paper-scale
# baseline the plugin's methods are compared with (tools/benchmark.py --heads paper). Inherited
# unchanged except that the runtime joins the plugin's scope, as every config here does, and the
# colour jitter is the plugin's HueSafeColorJitter (same arguments; mmpretrain's hue step fails
# under numpy 2), named with its scope because the inherited pipeline is built in mmpretrain's.
_base_ = 'mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py'

default_scope = 'mcl_plugin'
custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

view_pipeline = [
    _base_.view_pipeline[0],
    dict(
        type='RandomApply',
        transforms=[
            dict(type='mcl_plugin.HueSafeColorJitter', brightness=0.4, contrast=0.4,
                 saturation=0.4, hue=0.1)
        ],
        prob=0.8),
    *_base_.view_pipeline[2:],
]
train_pipeline = [
    _base_.train_pipeline[0],
    dict(_base_.train_pipeline[1], transforms=[view_pipeline]),
    _base_.train_pipeline[2],
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
