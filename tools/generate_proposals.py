#!/usr/bin/env python
"""Selective-search object proposals for SoCo pre-training (multi-process, resumable).

Lists the images exactly as the pre-training dataset does (``UnlabeledImageDataset``: a folder
scan, an image list or a COCO json), runs selective search on each, applies SoCo's filters with
their fall-backs and writes one COCO-style json plus a summary. Two generators:

* ``--method opencv`` (default): OpenCV contrib ``ximgproc`` (``--mode fast|quality|single``);
* ``--method official``: SoCo's own pure-Python selective search (hologerry/SoCo
  ``selective_search/``), re-implemented with numpy to give the same boxes: full resolution,
  ``scale 300, sigma 0.9, min_size 100``, duplicates kept, with the official fall-back chain
  (aspect + side -> side only -> whole image). Needs scikit-image (requirements/runtime.txt).

The format is documented in :mod:`mcl_plugin.datasets.proposals` (the reader); the generator is
the :mod:`tools.proposals` package. Interrupted runs resume: finished images are kept in
``OUT.partial.jsonl`` and skipped by the next run with the same settings. A progress bar
over the images is shown when stderr is a terminal (``--no-progress`` turns it off; without it a
line is logged every ``--log-every`` images).

Examples::

    # SoCo's official proposals (its filters and fall-backs), 48 processes
    python tools/generate_proposals.py data/imagenet/train \\
        --ann-file data/imagenet/meta/train.txt --method official \\
        --out data/imagenet/meta/train_proposals_ss-official.json --workers 48

    # the CPU demo's proposals (data/pretrain from tools/prepare_data.py)
    python tools/generate_proposals.py data/pretrain/train \\
        --ann-file data/pretrain/meta/train.txt \\
        --out data/pretrain/meta/train_proposals_ss-fast.json --workers 2 --max-side 320

    # ImageNet train, 48 processes, selective search on images resized to <= 320 px, near-
    # duplicates dropped (~50 instead of ~115 boxes per image: a ~7.5 GB instead of ~17 GB json;
    # --max-per-image caps it further)
    python tools/generate_proposals.py data/imagenet/train \\
        --ann-file data/imagenet/meta/train.txt \\
        --out data/imagenet/meta/train_proposals_ss-fast.json --workers 48 --max-side 320 \\
        --max-overlap 0.8

Exit status: 0 success; 1 some images could not be read (the json holds the others; re-run to
retry them); 2 bad arguments or an incompatible partial file.
"""
import argparse
import json
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('img_dir', help='image folder; json file names are relative to it')
    p.add_argument('--ann-file', default='',
                   help='image list (one path per line, relative to img_dir) or COCO json; '
                   'default: every image under img_dir')
    p.add_argument('--out', required=True, help='output json')
    p.add_argument('--method', default='opencv', choices=('opencv', 'official'),
                   help='opencv: cv2.ximgproc (default); official: SoCo\'s own selective '
                   'search (same boxes as its scripts, slower, fewer boxes)')
    g = p.add_argument_group('official selective search (SoCo: 300 / 0.9 / 100)')
    g.add_argument('--scale', type=float, default=None, help='Felzenszwalb scale (300)')
    g.add_argument('--min-size', type=int, default=None, help='Felzenszwalb min_size (100)')
    g = p.add_argument_group('OpenCV selective search (cv2.ximgproc)')
    g.add_argument('--mode', default=None, choices=('fast', 'quality', 'single'),
                   help='default fast')
    g.add_argument('--base-k', type=int, default=None, help='default 150')
    g.add_argument('--inc-k', type=int, default=None, help='default 150')
    g.add_argument('--sigma', type=float, default=None,
                   help='Gaussian smoothing (default: 0.8 for opencv, 0.9 for official)')
    g.add_argument('--max-side', type=int, default=None,
                   help='run on a copy whose longer side is at most this (boxes are mapped '
                   'back to the original pixels); default: original resolution (official)')
    g = p.add_argument_group('filters (SoCo: aspect 1/3-3, relative size 0.3-0.8, sides >= 32)')
    g.add_argument('--min-ratio', type=float, default=1 / 3)
    g.add_argument('--max-ratio', type=float, default=3.0)
    g.add_argument('--min-rel-size', type=float, default=0.3)
    g.add_argument('--max-rel-size', type=float, default=0.8)
    g.add_argument('--min-side', type=float, default=32.0)
    g.add_argument('--max-overlap', type=float, default=None,
                   help='drop near-duplicates: a box with IoU >= this with an earlier kept box '
                   '(e.g. 0.8 for ImageNet-scale files; default: keep all, as the paper)')
    g.add_argument('--max-per-image', type=int, default=None)
    g.add_argument('--side-fallback', action=argparse.BooleanOptionalAction, default=None,
                   help='fall back to the boxes with sides >= --min-side (any aspect) before '
                   'the whole image, as SoCo\'s post-filter (default: on for official, off for '
                   'opencv)')
    g = p.add_argument_group('run')
    g.add_argument('--workers', type=int, default=1, help='processes (default 1)')
    g.add_argument('--limit', type=int, default=None, help='only the first N images')
    g.add_argument('--restart', action='store_true', help='discard an existing partial run')
    g.add_argument('--keep-partial', action='store_true',
                   help='keep OUT.partial.jsonl after success')
    g.add_argument('--log-every', type=int, default=100,
                   help='progress line every N images when no progress bar is shown')
    g.add_argument('--no-progress', action='store_true',
                   help='no progress bar (default: a bar when stderr is a terminal)')
    return p.parse_args(argv)


def list_images(img_dir: str, ann_file: str = ''):
    """``(path, file_name)`` pairs, listed by the pre-training dataset class itself, so the json
    keys are exactly the names :class:`ProposalImageDataset` looks up."""
    from mcl_plugin.datasets import UnlabeledImageDataset
    ds = UnlabeledImageDataset(data_prefix=img_dir, ann_file=ann_file, serialize_data=False)
    prefix = ds.img_prefix
    return [(d['img_path'], osp.relpath(d['img_path'], prefix).replace(osp.sep, '/'))
            for d in ds.data_list]


def main(argv=None) -> int:
    args = parse_args(argv)
    from tools.proposals import (OfficialSearchConfig, ProposalFilter, SelectiveSearchConfig,
                                 generate_proposals, require_skimage, require_ximgproc)
    official = args.method == 'official'
    side_fallback = official if args.side_fallback is None else args.side_fallback

    def given(*names: str) -> list:
        return ['--' + n.replace('_', '-') for n in names if getattr(args, n) is not None]

    try:
        other = given('mode', 'base_k', 'inc_k') if official else given('scale', 'min_size')
        if other:
            raise ValueError(f'{", ".join(other)} do(es) not apply to --method {args.method}')
        if official:
            ss_cfg = OfficialSearchConfig(300.0 if args.scale is None else args.scale,
                                          0.9 if args.sigma is None else args.sigma,
                                          100 if args.min_size is None else args.min_size,
                                          args.max_side)
            require_skimage()
        else:
            ss_cfg = SelectiveSearchConfig(args.mode or 'fast',
                                           150 if args.base_k is None else args.base_k,
                                           150 if args.inc_k is None else args.inc_k,
                                           0.8 if args.sigma is None else args.sigma,
                                           args.max_side)
            require_ximgproc()
        filt = ProposalFilter(args.min_ratio, args.max_ratio, args.min_rel_size,
                              args.max_rel_size, args.min_side, args.max_per_image,
                              args.max_overlap, side_fallback)
        items = list_images(args.img_dir, args.ann_file)
        if args.limit is not None:
            items = items[:args.limit]
        summary = generate_proposals(items, args.out, ss_cfg, filt, workers=args.workers,
                                     restart=args.restart, keep_partial=args.keep_partial,
                                     log_every=args.log_every,
                                     progress=False if args.no_progress else None)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f'generate_proposals: error: {e}', file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in summary.items() if k not in ('generator', 'filter')},
                     indent=2))
    if summary['failed']:
        print(f'generate_proposals: {summary["failed"]} image(s) could not be read (see '
              f'failed_files); run again to retry them', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
