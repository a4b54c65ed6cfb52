# DetCo data (ImageNet, labels unused): two MoCo v2 global views (224 px) and two jigsaw patch
# sets (9 x 64 px from a >= 60% crop resized to 255 px, 3x3 grid of 85 px cells), flattened by
# GlobalLocalViews into inputs = [g_q, g_k, 9 query patches, 9 key patches].
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'
img_size = 224
jigsaw_crop_size = 255
patch_size = 64
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

# MoCo v2 (mmpretrain imagenet_bs32_mocov2.py) with the numpy-2-safe colour jitter.
color_transforms = [
    dict(type='RandomApply',
         transforms=[dict(type='HueSafeColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
]
global_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.), backend='pillow'),
    *color_transforms,
    dict(type='RandomFlip', prob=0.5),
]
# "Random flip, colour jitter and blur, sharing the same parameters with global augmentation"
# (paper §6.5; the public code does the same): the 255-px crop is augmented once, then cut, and
# the patch features are concatenated in a random order (the public code shuffles the patches,
# as PIRL's jigsaw). Per-patch augmentation instead: crop_pipeline=None, flip_prob=0.,
# patch_pipeline=[*color_transforms, dict(type='RandomFlip', prob=0.5)].
local_pipeline = [
    dict(type='JigsawPatches', crop_size=jigsaw_crop_size, crop_ratio_range=(0.6, 1.),
         grid=3, patch_size=patch_size, shuffle=True, crop_pipeline=color_transforms,
         flip_prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GlobalLocalViews', global_pipeline=global_pipeline,
         local_pipeline=local_pipeline, num_global=2, num_local=2),
    dict(type='PackInputs',
         meta_keys=('img_path', 'num_global_views', 'num_patch_sets', 'jigsaw_grid',
                    'jigsaw_crop_size', 'patch_order', 'patch_boxes', 'jigsaw_crop_box')),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
