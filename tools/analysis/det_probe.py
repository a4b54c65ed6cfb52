#!/usr/bin/env python
# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Frozen-feature detection probe: Faster R-CNN R18-FPN with the pre-trained parts frozen, the
rest trained for a fixed budget on cached features, COCO box AP.

The detector is the CPU-demo fine-tune config's
(``configs/benchmarks/mmdet/mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py``)
without the mask branch. Variant ``backbone`` freezes the backbone (eval BN); variant ``all``
freezes every part the checkpoint fills (MCL / SoCo: backbone + FPN + 4-conv box-head convs;
``random``: the same three). The frozen stage runs once per checkpoint on the un-augmented
images (resized to ``--scale``) and is cached under ``OUT_DIR/cache/``; RPN and RoI head (and
the FPN in variant ``backbone``) then train for ``--iters`` iterations on the cache. One row per
(checkpoint, seed, variant) in ``OUT_DIR/det.json`` and ``det.md``; rows already there (same
settings) are skipped, so an interrupted call resumes. Logic: :mod:`tools.analysis.det`.

Examples::

    python tools/analysis/det_probe.py random mcl=work_dirs/mcl/iter_100.pth --seeds 0,1,2 \\
        --data-root data/objects_coco --out-dir work_dirs/det_probe

Exit status: 0 success; 1 a checkpoint could not be loaded; 2 bad arguments or unreadable data.
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
    p = probe_parser(__doc__, 'work_dirs/det_probe', 'det.json, det.md, cache/')
    add_loading_args(p)
    p.add_argument('--seeds', default='0', help='comma-separated seeds (%(default)s)')
    p.add_argument('--variants', default='backbone,all',
                   help='comma-separated: backbone, all (%(default)s)')
    p.add_argument('--scale', type=int, nargs=2, default=(256, 192), metavar=('W', 'H'),
                   help='Resize(keep_ratio) scale of every image (%(default)s)')
    p.add_argument('--iters', type=int, default=300, help='training iterations (%(default)s)')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--lr', type=float, default=0.02, help='SGD lr per 16 images (%(default)s)')
    p.add_argument('--rois-per-image', type=int, default=32, help='sampled RoIs (%(default)s)')
    p.add_argument('--max-images', type=int, default=None,
                   help='only the first N images of each split (smoke runs)')
    p.add_argument('--cache-dir', help='feature cache (default OUT_DIR/cache)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from mcl_plugin.converters.convert import ConversionError
    from tools.analysis.det import DetProbeConfig, det_to_markdown, run_det_probe
    cfg = DetProbeConfig(scale=tuple(args.scale), iters=args.iters, batch_size=args.batch_size,
                         lr=args.lr, rois_per_image=args.rois_per_image,
                         max_images=args.max_images)
    try:
        seeds = [int(s) for s in args.seeds.split(',') if s.strip()]
        variants = [v.strip() for v in args.variants.split(',') if v.strip()]
        _, doc = run_det_probe(args.checkpoints, args.data_root, args.out_dir, seeds=seeds,
                               variants=variants, cfg=cfg, use_ema=args.use_ema,
                               cache_dir=args.cache_dir, progress=not args.no_progress,
                               trust=args.trust_checkpoint)
    except ConversionError as e:
        print(f'det_probe: error: {e}', file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as e:
        print(f'det_probe: error: {e}', file=sys.stderr)
        return 2
    print(det_to_markdown(doc))
    print(f'\nwritten: {osp.join(args.out_dir, "det.md")}, {osp.join(args.out_dir, "det.json")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
