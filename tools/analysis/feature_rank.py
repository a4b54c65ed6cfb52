#!/usr/bin/env python
# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Effective rank of the cached probe features: is a representation collapsed?

Reads the rows of a linear-probe folder (``OUT_DIR/linear.json`` of
``tools/analysis/linear_probe.py`` or ``tools/run_protocol.py``) and the features it cached, and
prints per (checkpoint, seed) the effective rank (RankMe: ``exp`` of the entropy of the
normalised squared singular values of the centred features of every train + val crop) and the
share of the variance in the 10 largest directions. Nothing is extracted again: a row whose
features are not in the cache is reported as missing.

Example::

    python tools/analysis/feature_rank.py work_dirs/protocol64/probes/linear \\
        work_dirs/protocol64/probes/linear-ema --out work_dirs/protocol64/feature_rank.md

Exit status: 0 success; 2 no linear.json in a folder or a cached feature file missing.
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)


def rank_rows(probe_dir: str, cache_dir: Optional[str] = None) -> List[dict]:
    """Effective rank and top-10 variance share of every row of ``probe_dir/linear.json``."""
    import torch
    from tools.analysis.knn.cache import cache_path
    from tools.analysis.knn.linear import effective_rank, feature_key
    path = osp.join(probe_dir, 'linear.json')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: run tools/analysis/linear_probe.py '
                                f'with --out-dir {probe_dir} first')
    with open(path, encoding='utf-8') as f:
        doc = json.load(f)
    out, seen = [], set()
    for r in doc['results']:
        cache = cache_path(cache_dir or osp.join(probe_dir, 'cache'), r['name'],
                           feature_key(doc['settings'], r['source'], r['seed']))
        if cache in seen:  # a checkpoint's probe seeds share its features
            continue
        seen.add(cache)
        if not osp.isfile(cache):
            raise FileNotFoundError(f'{cache} (features of {r["name"]} seed {r["seed"]}) does not '
                                    'exist: probe the checkpoint again to cache them')
        feats = torch.load(cache, map_location='cpu', weights_only=True)
        x = torch.cat([feats['train'], feats['val']]).double()
        var = torch.linalg.svdvals(x - x.mean(0))**2
        out.append(dict(name=r['name'], seed=r['seed'], ema=doc['settings']['use_ema'],
                        crops=len(x), rank=effective_rank(x),
                        top10=float(var[:10].sum() / var.sum())))
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('probe_dirs', nargs='+', help='linear-probe output folders')
    p.add_argument('--out', help='also write the Markdown table here')
    args = p.parse_args(argv)
    lines = ['| checkpoint | seed | backbone | crops | effective rank | top-10 variance share |',
             '|---|---|---|---|---|---|']
    try:
        for d in args.probe_dirs:
            for r in rank_rows(d):
                lines.append(f'| {r["name"]} | {r["seed"]} | {"EMA" if r["ema"] else "online"} | '
                             f'{r["crops"]} | {r["rank"]:.1f} | {r["top10"]:.2f} |')
    except FileNotFoundError as e:
        print(f'feature_rank: error: {e}', file=sys.stderr)
        return 2
    text = '\n'.join(lines)
    print(text)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(text + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
