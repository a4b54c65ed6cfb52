#!/usr/bin/env python
# Copyright (c) mcl_plugin contributors. All rights reserved.
"""k-NN probe: compare the backbone representations of checkpoints without fine-tuning.

Every object instance of a COCO-format set is cropped (box + 20 % context) and resized to a
square; the global-average-pooled last backbone stage is its feature; a weighted k-NN
classifier (cosine, k = 20, T = 0.07, as InstDisc) labels the validation crops from the
training crops. The top-1 accuracy per checkpoint goes to a Markdown table (``knn.md``, also
printed) and ``knn.json``; ``--tsne`` adds one t-SNE plot of the validation features per
checkpoint (``tsne_<name>.png``). The logic lives in :mod:`tools.analysis.knn`.

Checkpoints: ``random`` (a seeded random initialisation of the same architecture as the
first checkpoint, ResNet-18 if there is none), or ``[NAME=]PATH`` of a pre-training checkpoint
of any plugin algorithm, an mmpretrain BYOL/MoCo checkpoint, a ``convert_to_mmdet.py`` output,
a fine-tuned mmdet detector or a backbone-only file. ResNet depths are read from the file;
other backbones (Swin) need ``--backbone-config``.

Examples::

    python tools/analysis/knn_probe.py random \\
        mcl=work_dirs/quickstart/mcl/pretrain/iter_100.pth \\
        --data-root data/objects_coco --out-dir work_dirs/knn_probe --tsne
    # the EMA target of the same run, at 224 px
    python tools/analysis/knn_probe.py mcl_ema=work_dirs/quickstart/mcl/pretrain/iter_100.pth \\
        --use-ema --img-size 224 --out-dir work_dirs/knn_probe_ema

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
    p = probe_parser(__doc__, 'work_dirs/knn_probe', 'knn.md, knn.json, PNGs')
    add_loading_args(p)
    p.add_argument('--train-split', default='train', help='k-NN memory split')
    p.add_argument('--val-split', default='val', help='classified split')
    p.add_argument('--img-size', type=int, default=128, help='crop side in pixels')
    p.add_argument('--k', type=int, default=20, help='neighbours')
    p.add_argument('--temperature', type=float, default=0.07, help='vote temperature')
    p.add_argument('--backbone-config',
                   help='config whose model.backbone to build (needed for non-ResNet '
                   'backbones; pre-training or fine-tune config)')
    p.add_argument('--tsne', action='store_true', help='write tsne_<name>.png per checkpoint')
    p.add_argument('--tsne-size',
                   type=int,
                   nargs=2,
                   default=(800, 800),
                   metavar=('W', 'H'),
                   help='PNG size in pixels')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--workers', type=int, default=2, help='image decoding processes')
    p.add_argument('--max-items',
                   type=int,
                   default=None,
                   help='only the first N instances of each split (smoke runs)')
    p.add_argument('--seed', type=int, default=0, help='seed of random and of t-SNE')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from mcl_plugin.converters.convert import ConversionError
    from tools.analysis.knn import results_to_markdown, run_probe
    backbone_cfg = None
    if args.backbone_config:
        from mmengine.config import Config
        backbone_cfg = Config.fromfile(args.backbone_config).model.backbone.to_dict()
    try:
        results, doc = run_probe(args.checkpoints,
                                 args.data_root,
                                 args.out_dir,
                                 train_split=args.train_split,
                                 val_split=args.val_split,
                                 img_size=args.img_size,
                                 k=args.k,
                                 temperature=args.temperature,
                                 backbone_cfg=backbone_cfg,
                                 use_ema=args.use_ema,
                                 with_tsne=args.tsne,
                                 tsne_size=tuple(args.tsne_size),
                                 batch_size=args.batch_size,
                                 num_workers=args.workers,
                                 max_items=args.max_items,
                                 seed=args.seed,
                                 trust=args.trust_checkpoint)
    except ConversionError as e:
        print(f'knn_probe: error: {e}', file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        print(f'knn_probe: error: {e}', file=sys.stderr)
        return 2
    print(results_to_markdown(results, doc))
    print(f'\nwritten: {osp.join(args.out_dir, "knn.md")}, {osp.join(args.out_dir, "knn.json")}' +
          ''.join(f', {r.tsne}' for r in results if r.tsne))
    return 0


if __name__ == '__main__':
    sys.exit(main())
