# RetinaNet R50-FPN on 5 % of COCO train2017 labels, 12k iterations (MCL Table 4, low-data
# detection): retinanet_r50-fpn_syncbn_12k_coco-10pct.py with the 5 % subset written by
# tools/data_builder/split_coco.py (other folds: --cfg-options
# train_dataloader.dataset.ann_file=annotations/instances_train2017_5pct_fold<k>.json).
_base_ = './retinanet_r50-fpn_syncbn_12k_coco-10pct.py'

train_dataloader = dict(dataset=dict(ann_file='annotations/instances_train2017_5pct_fold0.json'))
