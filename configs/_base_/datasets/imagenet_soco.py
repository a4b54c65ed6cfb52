# ImageNet-format images + selective-search proposals for SoCo, views as the official 100-epoch
# FPN recipe builds them (hologerry/SoCo ImageAsymBboxAwareMultiJitter1Cutout, dataset.py:644-783):
# V1 = the image resized to 224; V2 = a crop (area 0.5-1) resized to 224 and V3 = an independent
# crop resized to 112, each with its own K = 4 proposals among those it overlaps (visible part in
# the crop, whole proposal in V1); box jitter 0.5 / 0.1 on V1 only, anchored at the top-left;
# flips per view; the BYOL colour recipe without its crop (V1: blur p=1.0; V2/V3: blur 0.1,
# solarize 0.2); in-box Cutout (p 0.5 per box, 0.1-0.3 of its area) on V2 and V3.
# `paper_views` is the paper's reading (V3 = V2 at 112, proposals >= 50 % visible and clipped
# alike in every view, jitter on every view around the centre, no Cutout).
# Proposals: the official selective search (SoCo's own variant, box for box; official JSON keyed
# by image base name; filters aspect+size -> aspect -> w,h >= 32 -> whole image):
#   python tools/generate_proposals.py data/imagenet/train \
#     --ann-file data/imagenet/meta/train.txt --method official \
#     --out data/imagenet/meta/train_proposals_ss-official.json --workers 48
# (OpenCV's fast mode instead: --method opencv --max-side 320 --max-overlap 0.8, ~8.5x more
# boxes per image; configs/soco/README.md "Proposals" compares them.)
dataset_type = 'ProposalImageDataset'
data_root = 'data/imagenet/'
proposal_file = 'meta/train_proposals_ss-official.json'
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
# the official RandomCutoutInBbox (fills with the mean colour, BGR, = 0 after normalisation)
cutout = dict(type='InBoxCutout', prob=0.5, ratio=(0.1, 0.3), fill=(104, 116, 124))
paper_views = dict(
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
views = dict(
    paper_views,
    box_mode='visible_part',
    independent_v3=True,
    jitter_views='v1',
    jitter_anchor='top_left',
    max_tries=5,  # the official --max_tries default
    view_pipelines=[color_view1, color_view2 + [cutout], color_view2 + [cutout]])
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
