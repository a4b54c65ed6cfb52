# SoCo's views in the paper's reading (./imagenet_soco.py paper_views: the demo keeps our easier
# positives, V3 = V2 downsampled and no Cutout) at CPU-demo size on the small local photo set
# data/pretrain (tools/prepare_data.py) and its selective-search proposals:
#   python tools/generate_proposals.py data/pretrain/train \
#       --ann-file data/pretrain/meta/train.txt \
#       --out data/pretrain/meta/train_proposals_ss-fast.json --workers 2 --max-side 320
# (OpenCV's fast mode, which the tests and quickstart build; the paper-size bases use
# --method official.)
# V1 128 / V2 128 / V3 64, boxes under 8 px at 224 (scaled by 128/224) dropped, 2 workers.
_base_ = './imagenet_soco.py'
img_size = 128
v1_size = img_size
v2_size = img_size
v3_size = img_size // 2
views = dict(_base_.paper_views, v1_size=v1_size, v2_size=v2_size, v3_size=v3_size,
             min_box_size=8 * img_size / 224)
train_pipeline = [views if step.type == 'SoCoViews' else step for step in _base_.train_pipeline]
# Iteration-based schedules count iterations, not epochs: an infinite sampler never runs out
# (no "Reach the end of the dataloader" restart on a small photo set), reshuffled per pass.
train_dataloader = dict(
    num_workers=2,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root='data/pretrain',
                 proposal_file='meta/train_proposals_ss-fast.json',
                 pipeline=train_pipeline))
