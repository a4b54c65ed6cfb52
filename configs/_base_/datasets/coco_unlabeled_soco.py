# COCO train2017 + unlabeled2017 images (no labels used) with selective-search proposals.
#   python tools/generate_proposals.py data/coco/train2017 --workers 48 --method official \
#       --out data/coco/annotations/train2017_proposals_ss-official.json
#   (and the same for unlabeled2017)
_base_ = './imagenet_soco.py'
data_root = 'data/coco/'
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatDataset',
        datasets=[
            dict(type='ProposalImageDataset', data_root=data_root,
                 data_prefix=dict(img_path='train2017/'),
                 proposal_file='annotations/train2017_proposals_ss-official.json',
                 pipeline={{_base_.train_pipeline}}),
            dict(type='ProposalImageDataset', data_root=data_root,
                 data_prefix=dict(img_path='unlabeled2017/'),
                 proposal_file='annotations/unlabeled2017_proposals_ss-official.json',
                 pipeline={{_base_.train_pipeline}}),
        ]))
