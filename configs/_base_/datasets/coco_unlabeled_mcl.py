# COCO train2017 + unlabeled2017 images (no labels used) for MCL's COCO pre-training.
_base_ = './imagenet_mcl.py'
data_root = 'data/coco/'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(type='UnlabeledImageDataset', data_root=data_root,
                 data_prefix=dict(img_path='train2017/'),
                 pipeline={{_base_.train_pipeline}}),
            dict(type='UnlabeledImageDataset', data_root=data_root,
                 data_prefix=dict(img_path='unlabeled2017/'),
                 pipeline={{_base_.train_pipeline}}),
        ]))
