# Second baseline for the demo protocol: mmpretrain's MoCo v2 with a ResNet-18 on the same data,
# views, batch, optimizer and schedule as the BYOL baseline (./byol_r18_1xb16-lars-coslr-300i_
# cpu-demo_pretrain.py) and so as the MCL CPU demo: only the algorithm differs (a momentum key
# encoder and a queue of negatives instead of BYOL's predictor). The model is mmpretrain's own
# `MoCo` (ResNet + MoCoV2Neck + ContrastiveHead) with MoCo v2's published settings (128-d keys,
# T = 0.2, key-encoder momentum 0.999, i.e. mmpretrain's `momentum=0.001`), the MLP hidden width
# of the other demos (1024) and a queue of 256 keys (16 batches: a quarter of the ~1,000 demo
# photos, so a photo is rarely its own stale negative).
_base_ = ['./byol_r18_1xb16-lars-coslr-300i_cpu-demo_pretrain.py']

model = dict(
    _delete_=True,
    type='mmpretrain.MoCo',
    queue_len=256,
    feat_dim=128,
    momentum=0.001,
    data_preprocessor=_base_.model.data_preprocessor,
    backbone=_base_.model.backbone,  # ResNet-18, BN
    neck=dict(type='mmpretrain.MoCoV2Neck', in_channels=512, hid_channels=1024, out_channels=128,
              with_avg_pool=True),
    head=dict(type='mmpretrain.ContrastiveHead', loss=dict(type='mmpretrain.CrossEntropyLoss'),
              temperature=0.2))
