#!/usr/bin/env python
# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Linear probe: a softmax layer on frozen backbone features of object crops, per checkpoint and
seed.

The crops and features are the k-NN probe's (``tools/analysis/knn_probe.py``: every object
instance of a COCO-format set, box + 20 % context, resized to a square; global-average-pooled
last backbone stage), cached once per checkpoint under ``OUT_DIR/cache/``. The features are
standardised and one linear layer is trained on the train split (AdamW, cross-entropy, fixed
epochs, seeded shuffling; seconds on a CPU), then scored on the val split. Two scores need no
seed: NCM (nearest class centroid) and CV (a logistic regression whose L2 strength is chosen by
cross-validation on the train split, folds grouped by object instance). One row per
(checkpoint, seed) in ``OUT_DIR/linear.json`` and ``linear.md``; rows already there (same
settings) are skipped, so an interrupted call resumes. The logic lives in
:mod:`tools.analysis.knn.linear`.

Checkpoints: as the k-NN probe (``random``: a seeded random initialisation whose seed is the row
seed; ``[NAME=]PATH`` of anything ``tools/convert_to_mmdet.py`` reads).

Examples::

    python tools/analysis/linear_probe.py random mcl=work_dirs/mcl/iter_100.pth \\
        --seeds 0,1,2 --data-root data/objects_coco --out-dir work_dirs/linear_probe \\
        --baseline random

Exit status: 0 success; 1 a checkpoint could not be loaded into the backbone; 2 bad arguments
or unreadable data.
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools.analysis.probe_common import add_loading_args, probe_parser  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = probe_parser(__doc__, 'work_dirs/linear_probe', 'linear.json, linear.md, cache/')
    add_loading_args(p)
    p.add_argument('--seeds', default='0', help='comma-separated probe seeds (%(default)s)')
    p.add_argument('--train-split', default='train')
    p.add_argument('--val-split', default='val')
    p.add_argument('--img-size', type=int, default=128, help='crop side in pixels')
    p.add_argument('--epochs', type=int, default=100, help='classifier epochs')
    p.add_argument('--lr', type=float, default=1e-2, help='AdamW learning rate')
    p.add_argument('--weight-decay', type=float, default=1e-3)
    p.add_argument('--backbone-config',
                   help='config whose model.backbone to build (non-ResNet backbones)')
    p.add_argument('--cache-dir', help='feature cache (default OUT_DIR/cache)')
    p.add_argument('--batch-size', type=int, default=64, help='forward batch size')
    p.add_argument('--workers', type=int, default=2, help='image decoding processes')
    p.add_argument('--max-items', type=int, default=None,
                   help='only the first N instances of each split (smoke runs)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('--cv-groups', choices=('instance', 'none'), default='instance',
                   help='instance: also score a logistic regression whose L2 strength is chosen '
                   'by 5-fold cross-validation on the train split, folds grouped by object '
                   'instance (reads DATA_ROOT/manifest.json of tools/prepare_data.py); none: '
                   'skip it (other COCO sets)')
    p.add_argument('--baseline', default=None,
                   help='row name (e.g. random) to compare every other checkpoint with: prints '
                   'and writes (OUT_DIR/reading.md) whether each difference exceeds 3x the '
                   'seed spread')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from mcl_plugin.converters.convert import ConversionError
    from tools.analysis.knn import (LinearConfig, linear_reading, linear_to_markdown,
                                    run_linear_probe)
    backbone_cfg = None
    if args.backbone_config:
        from mmengine.config import Config
        backbone_cfg = Config.fromfile(args.backbone_config).model.backbone.to_dict()
    try:
        seeds = [int(s) for s in args.seeds.split(',') if s.strip()]
        _, doc = run_linear_probe(args.checkpoints, args.data_root, args.out_dir, seeds=seeds,
                                  train_split=args.train_split, val_split=args.val_split,
                                  img_size=args.img_size,
                                  linear=LinearConfig(epochs=args.epochs, lr=args.lr,
                                                      weight_decay=args.weight_decay),
                                  backbone_cfg=backbone_cfg, use_ema=args.use_ema,
                                  cache_dir=args.cache_dir, batch_size=args.batch_size,
                                  num_workers=args.workers, max_items=args.max_items,
                                  progress=not args.no_progress, cv_groups=args.cv_groups,
                                  trust=args.trust_checkpoint)
    except ConversionError as e:
        print(f'linear_probe: error: {e}', file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        print(f'linear_probe: error: {e}', file=sys.stderr)
        return 2
    print(linear_to_markdown(doc))
    written = [osp.join(args.out_dir, 'linear.md'), osp.join(args.out_dir, 'linear.json')]
    if args.baseline:
        try:
            lines = linear_reading(doc, args.baseline)
        except ValueError as e:
            print(f'linear_probe: error: {e}', file=sys.stderr)
            return 2
        text = '\n'.join(f'- {line}' for line in lines)
        print('\n' + text)
        written.append(osp.join(args.out_dir, 'reading.md'))
        with open(written[-1], 'w', encoding='utf-8') as f:
            f.write(text + '\n')
    print(f'\nwritten: {", ".join(written)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
