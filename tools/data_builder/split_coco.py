#!/usr/bin/env python
"""Seeded, deterministic low-data subsets of a COCO annotation file (MCL's 1 / 5 / 10 % label
regimes for RetinaNet, ``configs/benchmarks/mmdet/retinanet_r50-fpn_syncbn_12k_coco-*pct*.py``).

For each percentage ``p`` and fold ``k`` it writes ``<stem>_<p>pct_fold<k>.json`` next to (or in
``--out-dir``) the source, e.g. ``instances_train2017_10pct_fold0.json``.

Semantics (the same for every percentage, the same bytes for the same input and seed):

* **Pool.** ``--pool annotated`` (default) samples among the images that have at least one
  annotation (``iscrowd`` ones included), so every selected image is trainable: mmdet's
  ``filter_empty_gt`` would drop an unannotated one and the subset would be smaller than
  stated. ``--pool all`` samples among all images, unannotated ones included, and keeps
  them in the output. The percentage is of the pool.
* **Size.** ``n = round(p / 100 * len(pool))``, at least 1.
* **Folds.** One permutation of the pool's image ids (sorted first, so the order of the input
  file does not matter) is drawn with ``random.Random(seed)``; fold ``k`` is the ``k``-th block
  of ``n`` ids of it. Folds of one percentage are therefore **disjoint**, and a request for
  more folds than ``len(pool) // n`` fails. Across percentages, fold 0 is nested
  (the 1 % fold 0 lies inside the 5 % fold 0); other folds are not.
* **Content.** ``images`` and ``annotations`` are the source's entries of the selected images,
  in the source's order; ``categories`` (all of them, also those without an instance in the
  subset), ``licenses`` and any other top-level key are copied unchanged; ``info`` gains a
  ``mcl_plugin_split`` record (source name and SHA-256, percent, fold, seed, pool, counts).
  Annotation and image ids are kept, so an image of a subset is the same record as in the
  source.

Example::

    python tools/data_builder/split_coco.py data/coco/annotations/instances_train2017.json \
        --percents 1 5 10 --folds 5 --seed 1
"""
import argparse
import copy
import hashlib
import json
import os
import os.path as osp
import random
import sys
from typing import Dict, Iterable, List, Optional, Sequence

POOLS = ('annotated', 'all')


def percent_tag(percent: float) -> str:
    """``1`` -> ``'1'``, ``0.5`` -> ``'0.5'`` (the file-name form of a percentage)."""
    return f'{percent:g}'


def split_name(src: str, percent: float, fold: int) -> str:
    """``instances_train2017.json`` -> ``instances_train2017_<p>pct_fold<k>.json``."""
    stem, ext = osp.splitext(osp.basename(src))
    return f'{stem}_{percent_tag(percent)}pct_fold{fold}{ext or ".json"}'


def image_pool(coco: dict, pool: str = 'annotated') -> List[int]:
    """Sorted ids of the images a subset is drawn from.

    Args:
        coco (dict): COCO annotation dict.
        pool (str): ``'annotated'`` (images with >= 1 annotation) or ``'all'``.

    Returns:
        list[int]: Sorted image ids.
    """
    if pool not in POOLS:
        raise ValueError(f'pool must be one of {POOLS}, got {pool!r}')
    ids = [img['id'] for img in coco['images']]
    if len(set(ids)) != len(ids):
        raise ValueError('duplicate image ids in the source file')
    known = set(ids)
    annotated = {ann['image_id'] for ann in coco['annotations']}
    unknown = annotated - known
    if unknown:
        raise ValueError(f'{len(unknown)} annotated image ids are not in "images", e.g. '
                         f'{sorted(unknown)[:5]}')
    return sorted(known if pool == 'all' else annotated)


def subset_size(num_pool: int, percent: float) -> int:
    """``round(percent / 100 * num_pool)``, at least 1."""
    if not 0 < percent <= 100:
        raise ValueError(f'percent must be in (0, 100], got {percent}')
    return max(1, int(round(num_pool * percent / 100.0)))


def select_images(ids: Sequence[int], percent: float, fold: int, seed: int) -> List[int]:
    """The image ids of one fold: the ``fold``-th block of a seeded permutation of ``ids``.

    Args:
        ids (Sequence[int]): The pool (any order; it is sorted first).
        percent (float): Percentage of the pool.
        fold (int): Fold index, from 0.
        seed (int): Seed of the permutation (shared by all folds and percentages).

    Returns:
        list[int]: Sorted selected ids.
    """
    order = sorted(ids)
    n = subset_size(len(order), percent)
    max_folds = len(order) // n
    if not 0 <= fold < max_folds:
        raise ValueError(f'fold {fold} of {percent_tag(percent)} % does not exist: '
                         f'{len(order)} images in the pool give {max_folds} disjoint folds of '
                         f'{n} images')
    random.Random(seed).shuffle(order)
    return sorted(order[fold * n:(fold + 1) * n])


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def make_subset(coco: dict,
                percent: float,
                fold: int,
                seed: int,
                pool: str = 'annotated',
                source: Optional[Dict[str, str]] = None) -> dict:
    """The COCO dict of one subset (see the module docstring for the semantics).

    Args:
        coco (dict): Source COCO dict (not modified).
        percent (float): Percentage of the pool.
        fold (int): Fold index.
        seed (int): Seed.
        pool (str): ``'annotated'`` or ``'all'``.
        source (dict, optional): ``name`` / ``sha256`` of the source file, for the record.

    Returns:
        dict: The subset.
    """
    ids = image_pool(coco, pool)
    chosen = set(select_images(ids, percent, fold, seed))
    out = {}
    for key, value in coco.items():
        if key == 'images':
            out[key] = [img for img in value if img['id'] in chosen]
        elif key == 'annotations':
            out[key] = [ann for ann in value if ann['image_id'] in chosen]
        else:
            out[key] = copy.deepcopy(value)
    info = out.get('info') if isinstance(out.get('info'), dict) else {}
    info['mcl_plugin_split'] = dict(
        source=dict(source or {}),
        percent=percent,
        fold=fold,
        seed=seed,
        pool=pool,
        num_pool_images=len(ids),
        num_images=len(out['images']),
        num_annotations=len(out['annotations']),
        folds='disjoint blocks of one seeded permutation (tools/data_builder/split_coco.py)')
    out['info'] = info
    return out


def write_splits(src: str,
                 percents: Iterable[float],
                 folds: int,
                 seed: int,
                 pool: str = 'annotated',
                 out_dir: Optional[str] = None) -> List[str]:
    """Writes every (percent, fold) subset of ``src``; returns the written paths."""
    with open(src, encoding='utf-8') as f:
        coco = json.load(f)
    source = dict(name=osp.basename(src), sha256=_sha256(src))
    out_dir = out_dir or osp.dirname(osp.abspath(src))
    ids = image_pool(coco, pool)
    for percent in percents:  # fail before writing anything
        select_images(ids, percent, folds - 1, seed)
    written = []
    for percent in percents:
        for fold in range(folds):
            subset = make_subset(coco, percent, fold, seed, pool, source)
            path = osp.join(out_dir, split_name(src, percent, fold))
            tmp = path + '.tmp'
            with open(tmp, 'w', encoding='utf-8') as f:
                json.dump(subset, f, separators=(',', ':'))
            os.replace(tmp, path)
            info = subset['info']['mcl_plugin_split']
            print(f'[split_coco] {path}: {info["num_images"]} / {info["num_pool_images"]} '
                  f'images ({pool}), {info["num_annotations"]} annotations')
            written.append(path)
    return written


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Seeded low-data subsets of a COCO annotation file: '
        '<stem>_<p>pct_fold<k>.json, disjoint folds of one permutation.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('ann_file', help='source COCO json, e.g. instances_train2017.json')
    parser.add_argument('--percents', type=float, nargs='+', default=[1, 5, 10],
                        help='percentages of the pool')
    parser.add_argument('--folds', type=int, default=5, help='folds per percentage')
    parser.add_argument('--seed', type=int, default=1, help='seed of the permutation')
    parser.add_argument('--pool', choices=POOLS, default='annotated',
                        help='sample among annotated images only, or among all images')
    parser.add_argument('--out-dir', default=None, help='output folder (default: next to ann_file)')
    args = parser.parse_args(argv)
    if args.folds < 1:
        parser.error('--folds must be >= 1')
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    try:
        write_splits(args.ann_file, args.percents, args.folds, args.seed, args.pool,
                     args.out_dir)
    except ValueError as err:
        print(f'[split_coco] error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
