# ImageNet-format unlabeled data with the MoCo v2 augmentation recipe (the paper follows MoCo v2):
# two views from GridRegionTwoView (random resized crop 224, scale (0.2, 1), flip 0.5), each with
# its 4x4 grid region map at the feature resolution R, then colour jitter (0.4, 0.4, 0.4, 0.1)
# p = 0.8, grayscale p = 0.2, Gaussian blur sigma in [0.1, 2] p = 0.5. As in the official code,
# the contrasted views have no overlap threshold (min_overlap=0: a pair is only redrawn, at most
# 20 times, while it shares no region), and a third crop (teacher_view) overlapping view 1 by
# >= 50% of the larger crop feeds the co-located distillation teacher (model.teacher).
# grid_size / mask_size must equal model.grid_size / model.resolution (4 / R = 56).
img_size = 224
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'

view_pipeline = [
    dict(type='RandomApply',
         transforms=[dict(type='HueSafeColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GridRegionTwoView', size=img_size, grid_size=4, mask_size=56,
         crop_ratio_range=(0.2, 1.0), flip_prob=0.5, min_overlap=0., min_common_regions=1,
         max_tries=20, teacher_view=True, teacher_overlap=0.5, interpolation='bilinear',
         backend='pillow',
         transforms=[view_pipeline, view_pipeline]),
    dict(type='PackInputs', algorithm_keys=['region_masks', 'common_regions', 'crop_boxes',
                                            'flips']),
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
