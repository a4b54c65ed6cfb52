# ImageNet-format images + selective-search proposals for SoCo. Views (SoCoViews): V1 = the
# image resized to 224, V2 = a crop of V1 (area 0.5-1) resized to 224, V3 = V2 at 112; K = 4
# proposals per image, box jitter 0.5/0.1, flips per view, then the BYOL colour recipe without
# its crop (V1 gets BYOL's first view: blur p=1.0; V2/V3 the second: blur 0.1, solarize 0.2).
# Proposals (format: mcl_plugin/datasets/proposals.py; --max-overlap 0.8 drops near-duplicate
# boxes, ~115 -> ~50 per image: a ~7.5 GB instead of ~17 GB json for ImageNet):
#   python tools/generate_proposals.py data/imagenet/train \
#     --ann-file data/imagenet/meta/train.txt \
#     --out data/imagenet/meta/train_proposals_ss-fast.json --workers 48 --max-side 320 \
#     --max-overlap 0.8
dataset_type = 'ProposalImageDataset'
data_root = 'data/imagenet/'
proposal_file = 'meta/train_proposals_ss-fast.json'
num_proposals = 4
v1_size = 224
v2_size = 224
v3_size = 112
data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

color_view1 = [
    dict(type='RandomApply',
         transforms=[dict(type='HueSafeColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=1.0),
]
color_view2 = [
    dict(type='RandomApply',
         transforms=[dict(type='HueSafeColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.1),
    dict(type='Solarize', thr=128, prob=0.2),
]
views = dict(
    type='SoCoViews',
    num_proposals=num_proposals,
    v1_size=v1_size,
    v2_size=v2_size,
    v3_size=v3_size,
    v4_size=None,
    crop_scale=(0.5, 1.0),
    crop_ratio=(3 / 4, 4 / 3),
    min_visible=0.5,
    jitter_prob=0.5,
    jitter_ratio=0.1,
    flip_prob=0.5,
    view_pipelines=[color_view1, color_view2, color_view2])
train_pipeline = [
    dict(type='LoadImageFromFile'),
    views,
    dict(type='PackSoCoInputs'),
]
train_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix=dict(img_path='train/'),
        proposal_file=proposal_file,
        pipeline=train_pipeline))
