# MCL, the paper's reading where it differs from the official code (fidelity table: ./README.md):
# SPE on the stem (Table 8c default), one backbone/FPN pass and one tile-head pass for both
# branches and all levels (BN statistics not stated in the paper), one shared predictor,
# ceil(B / 4**s) montages (each image once per level, Alg. 1), level weights 1 / 2**(s + 1)
# (App. A.1), anti-aliased bilinear downsampling, BYOL's RandomResizedCrop (0.08, 1) bicubic,
# 10-epoch warm-up then cosine to 0, fp32. Otherwise as the official recipe, the default
# (./mcl_r50-fpn_16xb256-lars-coslr-100e_in1k.py).
_base_ = [
    '../_base_/models/mcl_r50-fpn.py',
    '../_base_/datasets/imagenet_mcl_paper.py',
    '../_base_/schedules/lars_coslr_100e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=256)
optimizer = dict(lr=16.0)
optim_wrapper = dict(optimizer=optimizer)
