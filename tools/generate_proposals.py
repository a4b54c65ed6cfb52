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

Two output forms:

* ``--out FILE.json``: one json for all images (fine up to ~100k images);
* ``--out DIR`` (any path not ending in ``.json``; ``--shard-size N``, default 10,000): a
  directory of shards, one compact ``.npz`` per N images of the sorted image list plus a small
  ``manifest.json`` (:mod:`tools.proposals.shards`). Each shard is written atomically and
  recorded with its sha256; a rerun skips the finished shards and redoes a missing or damaged
  one; another image list or other settings are refused (``--overwrite`` discards the shards).
  Before starting, the first ``--calibrate`` images are timed and the wall time and disk for the
  run and for ImageNet (1.28 M images) are projected. ``ProposalImageDataset`` reads such a
  directory lazily, one shard at a time.

``--from-annotations COCO_JSON`` writes the ground-truth boxes of a COCO file as the proposals
(either form; the image list defaults to that file's images; only ``--min-side``,
``--max-overlap`` and ``--max-per-image`` apply; crowd boxes are dropped; an image with no box
left gets the whole image, see :mod:`tools.proposals.annotations`).

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

    # ImageNet as shards of 10,000 images (resumable per shard; a throughput / disk projection
    # is printed first)
    python tools/generate_proposals.py data/imagenet/train \\
        --ann-file data/imagenet/meta/train.txt --method official \\
        --out data/imagenet/meta/train_proposals_ss-official --shard-size 10000 --workers 48

    # COCO's ground-truth boxes as proposals
    python tools/generate_proposals.py data/coco/train2017 \\
        --from-annotations data/coco/annotations/instances_train2017.json \\
        --out data/coco/proposals_gt_train2017

Exit status: 0 success (also when ``--max-shards`` stopped early: the summary says
``complete: false``); 1 some images could not be read (the json holds the others; re-run to
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
    p.add_argument('--out', required=True,
                   help='output: a .json file, or a shard directory (any other path)')
    p.add_argument('--from-annotations', default='', metavar='COCO_JSON',
                   help='use the ground-truth boxes of this COCO file instead of selective '
                   'search (image list: --ann-file, default this file\'s images)')
    p.add_argument('--method', default=None, choices=('opencv', 'official'),
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
    g.add_argument('--min-ratio', type=float, default=None, help='default 1/3')
    g.add_argument('--max-ratio', type=float, default=None, help='default 3')
    g.add_argument('--min-rel-size', type=float, default=None, help='default 0.3')
    g.add_argument('--max-rel-size', type=float, default=None, help='default 0.8')
    g.add_argument('--min-side', type=float, default=32.0)
    g.add_argument('--max-overlap', type=float, default=None,
                   help='drop near-duplicates: a box with IoU >= this with an earlier kept box '
                   '(e.g. 0.8 for ImageNet-scale files; default: keep all, as the paper)')
    g.add_argument('--max-per-image', type=int, default=None)
    g.add_argument('--side-fallback', action=argparse.BooleanOptionalAction, default=None,
                   help='fall back to the boxes with sides >= --min-side (any aspect) before '
                   'the whole image, as SoCo\'s post-filter (default: on for official, off for '
                   'opencv)')
    g = p.add_argument_group('shard directory (--out DIR)')
    g.add_argument('--shard-size', type=int, default=None,
                   help='images per shard (default 10,000)')
    g.add_argument('--max-shards', type=int, default=None,
                   help='stop after writing this many shards (rerun to continue)')
    g.add_argument('--calibrate', type=int, default=8,
                   help='images timed first for the throughput / disk projection (0: none)')
    g.add_argument('--overwrite', action='store_true',
                   help='discard an existing shard directory (or partial json run) first')
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


def _given(args: argparse.Namespace, *names: str) -> list:
    return ['--' + n.replace('_', '-') for n in names if getattr(args, n) is not None]


def _search_settings(args: argparse.Namespace):
    """``(search config, filter)`` of a selective-search run, options checked."""
    from tools.proposals import (OfficialSearchConfig, ProposalFilter, SelectiveSearchConfig,
                                 require_skimage, require_ximgproc)
    official = args.method == 'official'
    other = (_given(args, 'mode', 'base_k', 'inc_k') if official else
             _given(args, 'scale', 'min_size'))
    if other:
        raise ValueError(f'{", ".join(other)} do(es) not apply to --method '
                         f'{args.method or "opencv"}')
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

    def val(name: str, default: float) -> float:
        return default if getattr(args, name) is None else getattr(args, name)

    side_fallback = official if args.side_fallback is None else args.side_fallback
    filt = ProposalFilter(val('min_ratio', 1 / 3), val('max_ratio', 3.0),
                          val('min_rel_size', 0.3), val('max_rel_size', 0.8), args.min_side,
                          args.max_per_image, args.max_overlap, side_fallback)
    return ss_cfg, filt


def _write_json(path: str, obj: dict, indent=None) -> None:
    import os
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=indent)
    os.replace(tmp, path)


def _from_annotations(args: argparse.Namespace, sharded: bool, shard_kw: dict) -> dict:
    """``--from-annotations``: the COCO file's boxes as proposals (json or shards)."""
    import time

    from tools.proposals import (ProposalFilter, annotation_records, annotation_settings,
                                 build_proposals_json, load_coco, summarize, summary_path,
                                 write_shards)
    other = _given(args, 'method', 'scale', 'min_size', 'mode', 'base_k', 'inc_k', 'sigma',
                   'max_side', 'min_ratio', 'max_ratio', 'min_rel_size', 'max_rel_size',
                   'side_fallback')
    if other:
        raise ValueError(f'{", ".join(other)} do(es) not apply to --from-annotations (only '
                         '--min-side, --max-overlap and --max-per-image filter its boxes)')
    start = time.perf_counter()
    filt = ProposalFilter(min_side=args.min_side, max_per_image=args.max_per_image,
                          max_overlap=args.max_overlap)
    coco = load_coco(args.from_annotations)
    items = list_images(args.img_dir, args.ann_file or args.from_annotations)
    if args.limit is not None:
        items = items[:args.limit]
    records, absent = annotation_records(coco, [k for _, k in items], filt,
                                         repr(args.from_annotations))
    if not records:
        raise ValueError(f'not one of the {len(items)} listed images is in '
                         f'{args.from_annotations!r} (e.g. {[k for _, k in items][:3]}); its '
                         'file_names must be relative to IMG_DIR')
    if absent:
        print(f'[generate_proposals] {len(absent)} listed image(s) are not in '
              f'{args.from_annotations} and get no entry (the dataset\'s on_missing decides), '
              f'e.g. {absent[:3]}', file=sys.stderr)
    generator, filter_cfg = annotation_settings(args.from_annotations, filt)
    kept = [it for it in items if it[1] in records]
    if sharded:
        summary = write_shards(kept, args.out, lambda its: (records[k] for _, k in its),
                               f'annotations:{osp.basename(args.from_annotations)}', generator,
                               filter_cfg, **shard_kw)
    else:
        ordered = [records[k] for _, k in kept]
        _write_json(args.out, build_proposals_json(ordered, generator, filter_cfg, decimals=2))
        summary = summarize(ordered, time.perf_counter() - start)
        summary.update(output=args.out, generator=generator, filter=filter_cfg)
        _write_json(summary_path(args.out), summary, indent=2)
    summary.update(not_in_annotations=len(absent), not_in_annotations_files=absent[:20])
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    from tools.proposals import DEFAULT_SHARD_SIZE, generate_proposals, generate_sharded
    sharded = args.shard_size is not None or not args.out.lower().endswith('.json')
    try:
        if args.shard_size is not None and args.out.lower().endswith('.json'):
            raise ValueError(f'--shard-size writes a directory; --out {args.out!r} ends in '
                             '.json (give a folder, or drop --shard-size for one json file)')
        if not sharded and args.max_shards is not None:
            raise ValueError('--max-shards needs a shard directory (--out DIR --shard-size N)')
        shard_kw = dict(shard_size=args.shard_size or DEFAULT_SHARD_SIZE,
                        overwrite=args.overwrite or args.restart, max_shards=args.max_shards,
                        log_every=args.log_every,
                        progress=False if args.no_progress else None)
        if args.from_annotations:
            summary = _from_annotations(args, sharded, shard_kw)
        else:
            ss_cfg, filt = _search_settings(args)
            items = list_images(args.img_dir, args.ann_file)
            if args.limit is not None:
                items = items[:args.limit]
            if sharded:
                summary = generate_sharded(items, args.out, ss_cfg, filt, workers=args.workers,
                                           calibrate_images=args.calibrate, **shard_kw)
            else:
                summary = generate_proposals(items, args.out, ss_cfg, filt,
                                             workers=args.workers,
                                             restart=args.restart or args.overwrite,
                                             keep_partial=args.keep_partial,
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
