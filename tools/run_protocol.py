#!/usr/bin/env python
# Copyright (c) mcl_plugin contributors. All rights reserved.
"""One protocol, one table: every method pre-trained on the same data with the same budget, then
fine-tuned with the identical Mask R-CNN protocol, several seeds for the main rows.

Each (row, seed) is one ``tools/pretrain_and_finetune.py`` run in ``WORK/<row>/seed<k>/``; runs
that already wrote ``metrics.json`` are skipped, so the script resumes after an interruption and a
later call with more rows or seeds only runs what is missing. ``--jobs`` runs go side by side
(``--threads`` torch threads each). The table (``WORK/results.md``, ``WORK/results.json``) holds
every row with its seeds: mean and half-range of COCO box / mask AP, AP50, AP75, APs/m/l, the
pre-training budget (iterations x batch = images seen) and wall times, and a reading that says
which differences to random init exceed the seed spread.

Budget: every pre-training sees ``--pretrain-images`` images (iterations = images / the config's
batch size; warm-up and cosine are rescaled by ``pretrain_and_finetune.py``). Fine-tuning: the R18
demo Mask R-CNN (``configs/benchmarks/mmdet/``
``mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py``) for ``--ft-epochs`` epochs
(50-iteration warm-up, lr x0.1 after 2/3) on ``DATA/objects_coco`` at ``--ft-scale`` (default
160x120: the 512x384 photos shrink 3.2x, median object ~29x22 px), 32 sampled RoIs per image (the
4-conv box head and the mask head cost ~1 GFLOP per RoI and dominate a CPU step: 128 RoIs per image
made a 160x120 step 3.3x slower), at most 30 detections per image, tested on its val split.

Probe stages (``--stages linear,det``; ``finetune`` is the fine-tune table above): every
pre-trained (row, seed) is pre-trained once (``pretrain_and_finetune.py --pretrain-only``, or the
checkpoint of an earlier fine-tune run is reused), then probed with the same seed: the linear
probe on object crops (``tools/analysis/linear_probe.py``) and the frozen-feature detection probe
(``tools/analysis/det_probe.py``, variants ``backbone`` and ``all``); ``random`` takes the seed
for its weights. Rows already in ``WORK/probes/{linear,det}/*.json`` are skipped. The table
(``WORK/probes.md``, ``WORK/probes.json``) holds mean ± half-range over seeds per row and probe,
and per method pair and probe whether the difference of the means exceeds 3x the larger of the
two seed spreads.

Examples::

    # probe table: random, BYOL, MCL with 3 seeds each
    python tools/run_protocol.py --rows main --seeds 0,1,2 --stages linear,det
    # the table in README: main rows with 2 seeds, the rest with 1 (2-core CPU: ~30 min per
    # run with two runs side by side, ~4 h for all 16 runs)
    python tools/run_protocol.py --rows all --jobs 2 --threads 1
    # only re-write the table from finished runs
    python tools/run_protocol.py --rows all --table-only
    # print the commands without running them
    python tools/run_protocol.py --rows mcl,byol --dry-run
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MCL = 'configs/mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'
FT = 'configs/benchmarks/mmdet/mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py'
FT_RANDOM = ('configs/benchmarks/mmdet/'
             'mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco_random-init.py')


def _ablation(name: str) -> str:
    """An MCL ablation config (``configs/mcl/ablations/``): the S = 3, mode (a) demo with one
    setting changed."""
    return f'configs/mcl/ablations/mcl-{name}_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'


#: row name -> (label, pre-training config or None for random init).
ROWS: Dict[str, Tuple[str, Optional[str]]] = {
    'random': ('random init', None),
    'byol': ('BYOL (mmpretrain), R18',
             'configs/baselines/byol_r18_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'),
    'mcl': ('MCL S=3, mode a', MCL),
    'soco': ('SoCo', 'configs/soco/soco_r18-fpn_1xb8-lars-coslr-300i_cpu-demo_pretrain.py'),
    'detco': ('DetCo', 'configs/detco/detco_r18_1xb8-coslr-300i_cpu-demo_pretrain.py'),
    'plrc': ('PLRC', 'configs/plrc/plrc_r18_1xb8-coslr-300i_cpu-demo_pretrain.py'),
    'mcl-sup': ('MCL-sup (labels of the objects_coco train crops)',
                'configs/mcl_sup/mcl-sup_r18-fpn_1xb16-sgd-coslr-300i_cpu-demo_objects.py'),
    'mcl-s1': ('MCL S=1, mode a', _ablation('s1')),
    'mcl-s2': ('MCL S=2, mode a', _ablation('s2')),
    'mcl-s4': ('MCL S=4, mode a', _ablation('s4')),
    'mcl-b': ('MCL S=3, mode b', _ablation('mode-b')),
    'mcl-c': ('MCL S=3, mode c', _ablation('mode-c')),
    'mcl-d': ('MCL S=3, mode d', _ablation('mode-d')),
}
#: Rows that get every seed of --seeds; the others run the first seed only.
MAIN_ROWS = ('random', 'byol', 'mcl')
#: Table order (runs: main rows with every seed first, then the others in this order).
ORDER = tuple(ROWS)
METRICS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl')
#: pretrain_and_finetune.py reports COCO metrics in % rounded to 0.1.
RESOLUTION = 0.1


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rows', default='all',
                        help=f'comma-separated rows or "all" / "main"; rows: {", ".join(ROWS)}')
    parser.add_argument('--seeds', default='0,1', help='seeds of the main rows (%(default)s)')
    parser.add_argument('--all-seeds', action='store_true',
                        help='run every seed for every row, not only for the main rows')
    parser.add_argument('--work-dir', default='work_dirs/protocol')
    parser.add_argument('--data', default='data', help='folder with pretrain/ and objects_coco/')
    parser.add_argument('--pretrain-images', type=int, default=640,
                        help='images seen by every pre-training (%(default)s)')
    parser.add_argument('--ft-epochs', type=int, default=2, help='fine-tune epochs (%(default)s)')
    parser.add_argument('--ft-scale', default='160,120',
                        help='fine-tune image scale W,H (%(default)s)')
    parser.add_argument('--jobs', type=int, default=1, help='runs side by side')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--stages', default='finetune',
                        help='comma-separated: finetune, linear, det (%(default)s)')
    parser.add_argument('--det-iters', type=int, default=300,
                        help='detection-probe iterations (%(default)s)')
    parser.add_argument('--det-batch', type=int, default=2,
                        help='detection-probe batch (%(default)s)')
    parser.add_argument('--det-variants', default='backbone,all',
                        help='detection-probe variants (%(default)s)')
    parser.add_argument('--table-only', action='store_true', help='only write the table')
    parser.add_argument('--dry-run', action='store_true', help='print the commands only')
    return parser.parse_args(argv)


def select_rows(spec: str) -> List[str]:
    """Row names from ``--rows`` (``all``, ``main`` or a comma list), in table order."""
    if spec == 'all':
        return list(ORDER)
    if spec == 'main':
        return list(MAIN_ROWS)
    names = [n.strip() for n in spec.split(',') if n.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise SystemExit(f'run_protocol: unknown row(s) {unknown}; choose from {list(ROWS)}')
    return [n for n in ORDER if n in names]


def plan(rows: Sequence[str], seeds: Sequence[int], all_seeds: bool) -> List[Tuple[str, int]]:
    """(row, seed) runs in execution order: main rows with every seed, then the other rows."""
    runs = [(row, seed) for seed in seeds for row in rows if row in MAIN_ROWS]
    others = [row for row in rows if row not in MAIN_ROWS]
    return runs + [(row, seed) for seed in (seeds if all_seeds else seeds[:1]) for row in others]


def finetune_options(data: str, epochs: int, scale: Tuple[int, int], seed: int) -> List[str]:
    """The identical fine-tuning protocol of every row (mmdet ``--cfg-options``)."""
    coco = osp.join(data, 'objects_coco')
    if not osp.exists(osp.join(coco, 'classes.txt')):
        raise SystemExit(f'run_protocol: {coco}/classes.txt not found; make the data with: '
                         f'python tools/prepare_data.py --out {data}')
    with open(osp.join(coco, 'classes.txt')) as f:
        classes = [ln.strip() for ln in f if ln.strip()]
    names = '[' + ','.join(f"'{c}'" for c in classes) + ']'
    ann = osp.join(coco, 'annotations', 'instances_val.json')
    opts = [
        f'randomness.seed={seed}', f'train_cfg.max_epochs={epochs}',
        f'train_cfg.val_interval={epochs + 1}', 'param_scheduler.0.end=50',
        f'param_scheduler.1.end={epochs}',
        f'param_scheduler.1.milestones=[{max(1, epochs * 2 // 3)}]',
        f'default_hooks.checkpoint.interval={epochs}',
        f'model.roi_head.bbox_head.num_classes={len(classes)}',
        f'model.roi_head.mask_head.num_classes={len(classes)}',
        'model.train_cfg.rcnn.sampler.num=32', 'model.test_cfg.rcnn.max_per_img=30',
        f'train_dataloader.dataset.pipeline.2.scale=({scale[0]},{scale[1]})',
        f'test_dataloader.dataset.pipeline.1.scale=({scale[0]},{scale[1]})',
        f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}'
    ]
    for split in ('train', 'val', 'test'):
        opts += [f'{split}_dataloader.dataset.data_root={coco}/',
                 f'{split}_dataloader.dataset.metainfo.classes={names}']
    return opts


def batch_size(config: str) -> int:
    """``train_dataloader.batch_size`` of a pre-training config."""
    from mmengine.config import Config
    return int(Config.fromfile(osp.join(ROOT, config)).train_dataloader.batch_size)


def command(row: str, seed: int, args: argparse.Namespace) -> Tuple[List[str], str]:
    """The ``pretrain_and_finetune.py`` command of one run and its work dir."""
    _, config = ROWS[row]
    work = osp.join(args.work_dir, row, f'seed{seed}')
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'pretrain_and_finetune.py')]
    if config is None:
        cmd += ['none', FT_RANDOM, '--no-pretrain']
    else:
        iters = max(1, args.pretrain_images // batch_size(config))
        data_root = osp.join(args.data, 'objects_coco' if row == 'mcl-sup' else 'pretrain')
        pre_opts = [f'randomness.seed={seed}', f'train_dataloader.dataset.data_root={data_root}']
        if row == 'soco':
            proposals = osp.join(data_root, 'meta', 'train_proposals_ss-fast.json')
            if not osp.exists(proposals):
                raise SystemExit(
                    f'run_protocol: SoCo needs {proposals}; make it with: python '
                    f'tools/generate_proposals.py {data_root}/train --ann-file '
                    f'{data_root}/meta/train.txt --out {proposals} --max-side 320')
        cmd += [config, FT, '--pretrain-iters', str(iters), '--pretrain-cfg-options', *pre_opts]
    scale = tuple(int(v) for v in args.ft_scale.split(','))
    ft_opts = finetune_options(args.data, args.ft_epochs, scale, seed)
    cmd += ['--work-dir', work, '--finetune-cfg-options', *ft_opts]
    return cmd, work


def run_one(row: str, seed: int, args: argparse.Namespace) -> Tuple[str, int, int]:
    """Run one (row, seed) unless its metrics.json exists; returns its exit code."""
    cmd, work = command(row, seed, args)
    if osp.exists(osp.join(work, 'metrics.json')):
        print(f'[protocol] {row} seed {seed}: done before, skipped', flush=True)
        return row, seed, 0
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    start = time.time()
    # one write per line: runs print from parallel threads
    print(f'[protocol] {row} seed {seed}: start (log {work}.log)\n', end='', flush=True)
    with open(f'{work}.log', 'w') as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    print(f'[protocol] {row} seed {seed}: exit {code} after {time.time() - start:.0f} s\n',
          end='', flush=True)
    return row, seed, code


def collect(work_dir: str, rows: Sequence[str]) -> Dict[str, List[dict]]:
    """Finished runs per row: each a metrics.json record plus its seed and budget."""
    found: Dict[str, List[dict]] = {}
    for row in rows:
        folder = osp.join(work_dir, row)
        if not osp.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = osp.join(folder, name, 'metrics.json')
            if name.startswith('seed') and osp.exists(path):
                with open(path) as f:
                    record = json.load(f)
                record['seed'] = int(name[4:])
                found.setdefault(row, []).append(record)
    return found


def summarize(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and half-range (0 for one value)."""
    mean = sum(values) / len(values)
    return mean, (max(values) - min(values)) / 2


def fmt(values: Sequence[float]) -> str:
    mean, half = summarize(values)
    return f'{mean:.1f}' if len(values) == 1 else f'{mean:.1f} ± {half:.1f}'


def pretrain_budget(record: dict, row_config: Optional[str] = None) -> Tuple[str, float]:
    """``iterations x batch`` of the run's pre-training (from its log) and its wall seconds.

    ``row_config`` (the row's config now) stands in for a recorded config that no longer exists,
    e.g. a run recorded before the demo configs were renamed.
    """
    seconds = record.get('seconds', {})
    if not record.get('pretrain_config'):
        return '-', 0.0
    ckpt = record.get('pretrain_checkpoint') or ''
    iters = osp.basename(ckpt).replace('iter_', '').replace('.pth', '')
    config = record['pretrain_config']
    if row_config and not osp.exists(osp.join(ROOT, config)):
        config = row_config
    batch = batch_size(config)
    return f'{iters} x {batch}', float(seconds.get('pretrain', 0.0))


def table(found: Dict[str, List[dict]]) -> Tuple[str, dict]:
    """Markdown table and a JSON summary of the finished runs."""
    head = ('| pre-training | seeds | box AP | AP50 | AP75 | APs | APm | APl | mask AP | mask AP50 '
            '| mask AP75 | pre-train iters x batch | pre-train s | fine-tune + test s |')
    lines = [head, '|' + '---|' * (head.count('|') - 1)]
    summary = {}
    for row in ORDER:
        runs = found.get(row)
        if not runs:
            continue
        box = {k: [r['bbox'].get(k, 0.0) for r in runs] for k in METRICS}
        seg = {k: [r['segm'].get(k, 0.0) for r in runs] for k in METRICS}
        budget, pre_s = pretrain_budget(runs[0], ROWS[row][1])
        pre = [pretrain_budget(r, ROWS[row][1])[1] for r in runs]
        ft = [r['seconds'].get('finetune', 0.0) + r['seconds'].get('test', 0.0) for r in runs]
        seeds = ','.join(str(r['seed']) for r in runs)
        cells = [ROWS[row][0], seeds] + [fmt(box[k]) for k in METRICS] + [
            fmt(seg[k]) for k in ('AP', 'AP50', 'AP75')
        ] + [budget, f'{sum(pre) / len(pre):.0f}' if pre_s else '-', f'{sum(ft) / len(ft):.0f}']
        lines.append('| ' + ' | '.join(cells) + ' |')
        summary[row] = dict(label=ROWS[row][0], seeds=[r['seed'] for r in runs], bbox=box,
                            segm=seg, pretrain_budget=budget, pretrain_seconds=pre,
                            finetune_test_seconds=ft)
    return '\n'.join(lines), summary


def reading(summary: dict) -> List[str]:
    """Which rows differ from random init by more than the seed spread (box and mask AP).

    A difference counts when ``|mean_row - mean_random|`` exceeds the sum of both half-ranges
    (for a row with one seed, whose own spread is unknown, the random rows' full range instead
    of its half-range) and the 0.1 AP resolution of the reported (rounded) metrics.
    """
    if 'random' not in summary:
        return ['no random-init row: nothing to compare with']
    out = []
    for task, name in (('bbox', 'box AP'), ('segm', 'mask AP')):
        base_mean, base_half = summarize(summary['random'][task]['AP'])
        for row, rec in summary.items():
            if row == 'random':
                continue
            values = rec[task]['AP']
            mean, half = summarize(values)
            margin = max(RESOLUTION, base_half + (half if len(values) > 1 else 2 * base_half))
            delta = round(mean - base_mean, 1) + 0.0  # no '-0.0'
            verdict = 'exceeds' if abs(delta) > round(margin, 1) else 'within'
            out.append(f'{rec["label"]}: {name} {delta:+.1f} vs random init ({verdict} the seed '
                       f'spread {margin:.1f})')
    return out


#: Probe stages and their result folders under WORK/probes/.
PROBES = ('linear', 'det')
#: A difference between two rows counts when it exceeds this many seed spreads.
SPREAD_FACTOR = 3.0


def pretrained_checkpoint(row: str, seed: int, args: argparse.Namespace) -> Optional[str]:
    """The pre-training checkpoint of a finished (row, seed) run (pretrain-only or full chain)."""
    work = osp.join(args.work_dir, row, f'seed{seed}')
    for name in ('pretrain.json', 'metrics.json'):
        path = osp.join(work, name)
        if osp.exists(path):
            with open(path) as f:
                ckpt = json.load(f).get('pretrain_checkpoint')
            if ckpt and osp.exists(ckpt):
                return ckpt
    return None


def pretrain_one(row: str, seed: int, args: argparse.Namespace) -> Tuple[str, int, int]:
    """Pre-train one (row, seed) for the probes unless its checkpoint exists."""
    if ROWS[row][1] is None or pretrained_checkpoint(row, seed, args):
        return row, seed, 0
    cmd, work = command(row, seed, args)
    cmd.insert(cmd.index('--work-dir'), '--pretrain-only')
    os.makedirs(work, exist_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    start = time.time()
    print(f'[protocol] {row} seed {seed}: pre-training (log {work}.pretrain.log)\n', end='',
          flush=True)
    with open(f'{work}.pretrain.log', 'w') as log:
        code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    print(f'[protocol] {row} seed {seed}: pre-training exit {code} after '
          f'{time.time() - start:.0f} s\n', end='', flush=True)
    return row, seed, code


def run_probes(runs: Sequence[Tuple[str, int]], stages: Sequence[str],
               args: argparse.Namespace) -> List[str]:
    """Probe every (row, seed) whose checkpoint exists (``random``: always), resumably."""
    import torch
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from tools.analysis.det import DetProbeConfig, run_det_probe
    from tools.analysis.knn import run_linear_probe
    torch.set_num_threads(args.threads)
    coco = osp.join(args.data, 'objects_coco')
    missing = []
    for row, seed in runs:
        if ROWS[row][1] is None:
            spec = 'random'
        else:
            ckpt = pretrained_checkpoint(row, seed, args)
            if ckpt is None:
                missing.append(f'{row} seed {seed} (no pre-training checkpoint)')
                continue
            spec = f'{row}={ckpt}'
        if 'linear' in stages:
            run_linear_probe([spec], coco, osp.join(args.work_dir, 'probes', 'linear'),
                             seeds=[seed], progress=False)
        if 'det' in stages:
            run_det_probe([spec], coco, osp.join(args.work_dir, 'probes', 'det'), seeds=[seed],
                          variants=args.det_variants.split(','),
                          cfg=DetProbeConfig(iters=args.det_iters, batch_size=args.det_batch),
                          progress=False)
    return missing


def collect_probes(work_dir: str) -> Dict[str, Dict[str, Dict[int, float]]]:
    """Probe scores: ``{probe column: {row: {seed: value}}}`` from the probes' JSON files
    (linear top-1 in %, detection-probe box AP per variant)."""
    out: Dict[str, Dict[str, Dict[int, float]]] = {}
    path = osp.join(work_dir, 'probes', 'linear', 'linear.json')
    if osp.exists(path):
        with open(path) as f:
            for r in json.load(f)['results']:
                out.setdefault('linear top-1 (%)', {}).setdefault(r['name'], {})[r['seed']] = \
                    100 * r['top1']
    path = osp.join(work_dir, 'probes', 'det', 'det.json')
    if osp.exists(path):
        with open(path) as f:
            for r in json.load(f)['results']:
                out.setdefault(f'det probe box AP ({r["variant"]} frozen)', {}).setdefault(
                    r['name'], {})[r['seed']] = r['AP']
    return out


def pair_verdict(a: Sequence[float], b: Sequence[float],
                 factor: float = SPREAD_FACTOR) -> Tuple[float, Optional[float], str]:
    """Difference of means ``b - a``, the threshold ``factor x`` the larger half-range, and
    ``'yes'`` / ``'no'`` (``'n/a'`` when a row has a single seed: its spread is unknown)."""
    (mean_a, half_a), (mean_b, half_b) = summarize(a), summarize(b)
    delta = mean_b - mean_a
    if len(a) < 2 or len(b) < 2:
        return delta, None, 'n/a'
    threshold = factor * max(half_a, half_b)
    return delta, threshold, 'yes' if abs(delta) > threshold else 'no'


def probe_table(found: Dict[str, Dict[str, Dict[int, float]]]) -> Tuple[str, dict]:
    """Markdown tables (rows x probes, then method pairs) and a JSON summary."""
    columns = list(found)
    rows = [r for r in ORDER if any(r in found[c] for c in columns)]
    head = '| pre-training | ' + ' | '.join(f'{c} (seeds)' for c in columns) + ' |'
    lines = [head, '|' + '---|' * (len(columns) + 1)]
    summary: dict = dict(rows={}, pairs=[])
    for row in rows:
        cells = []
        for c in columns:
            vals = found[c].get(row, {})
            cells.append(f'{_fmt2(list(vals.values()))} ({",".join(map(str, sorted(vals)))})'
                         if vals else '-')
        lines.append(f'| {ROWS[row][0]} | ' + ' | '.join(cells) + ' |')
        summary['rows'][row] = {c: found[c].get(row, {}) for c in columns}
    lines += ['', f'| pair (B - A) | probe | difference | {SPREAD_FACTOR:g}x seed spread '
              f'| differs by > {SPREAD_FACTOR:g}x the seed spread |', '|---|---|---|---|---|']
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            for c in columns:
                va, vb = found[c].get(a), found[c].get(b)
                if not va or not vb:
                    continue
                delta, threshold, verdict = pair_verdict(list(va.values()), list(vb.values()))
                lines.append(f'| {ROWS[b][0]} - {ROWS[a][0]} | {c} | {delta:+.2f} | '
                             f'{"-" if threshold is None else f"{threshold:.2f}"} | {verdict} |')
                summary['pairs'].append(dict(a=a, b=b, probe=c, delta=delta,
                                             threshold=threshold, verdict=verdict))
    return '\n'.join(lines), summary


def _fmt2(values: Sequence[float]) -> str:
    mean, half = summarize(values)
    return f'{mean:.2f}' if len(values) == 1 else f'{mean:.2f} ± {half:.2f}'


def main_probes(args: argparse.Namespace, runs: Sequence[Tuple[str, int]],
                stages: Sequence[str]) -> int:
    """The probe stages: pre-train what is missing, probe, write WORK/probes.{md,json}."""
    failed: List[str] = []
    if not args.table_only:
        os.makedirs(args.work_dir, exist_ok=True)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for row, seed, code in pool.map(lambda rs: pretrain_one(*rs, args), runs):
                if code:
                    failed.append(f'{row} seed {seed} (log: {args.work_dir}/{row}/seed{seed}'
                                  '.pretrain.log)')
        failed += run_probes(runs, stages, args)
    text, summary = probe_table(collect_probes(args.work_dir))
    os.makedirs(args.work_dir, exist_ok=True)
    with open(osp.join(args.work_dir, 'probes.md'), 'w') as f:
        f.write(text + '\n')
    with open(osp.join(args.work_dir, 'probes.json'), 'w') as f:
        json.dump(dict(summary, failed=failed, args=vars(args)), f, indent=2)
    print(text)
    if failed:
        print('run_protocol: failed: ' + '; '.join(failed), file=sys.stderr)
        return 1
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    rows = select_rows(args.rows)
    seeds = [int(s) for s in args.seeds.split(',')]
    runs = plan(rows, seeds, args.all_seeds)
    stages = [s.strip() for s in args.stages.split(',') if s.strip()]
    unknown = set(stages) - {'finetune', *PROBES}
    if unknown:
        raise SystemExit(f'run_protocol: unknown stage(s) {sorted(unknown)}; choose from '
                         f'finetune, {", ".join(PROBES)}')
    probe_stages = [s for s in stages if s in PROBES]
    if probe_stages and not args.dry_run:
        code = main_probes(args, runs, probe_stages)
        if 'finetune' not in stages:
            return code
    if 'finetune' not in stages:
        for row, seed in runs:
            if ROWS[row][1] is not None:
                cmd, _ = command(row, seed, args)
                cmd.insert(cmd.index('--work-dir'), '--pretrain-only')
                print(' '.join(cmd))
        return 0
    if args.dry_run:
        for row, seed in runs:
            print(' '.join(command(row, seed, args)[0]))
        return 0
    failed = []
    if not args.table_only:
        os.makedirs(args.work_dir, exist_ok=True)
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for row, seed, code in pool.map(lambda rs: run_one(*rs, args), runs):
                if code:
                    failed.append(f'{row} seed {seed} (log: {args.work_dir}/{row}/seed{seed}.log)')
    # the table holds every finished run in the work dir, not only the rows of this call
    text, summary = table(collect(args.work_dir, list(ORDER)))
    notes = reading(summary)
    with open(osp.join(args.work_dir, 'results.md'), 'w') as f:
        f.write(text + '\n\n' + '\n'.join(f'- {n}' for n in notes) + '\n')
    with open(osp.join(args.work_dir, 'results.json'), 'w') as f:
        json.dump(dict(rows=summary, reading=notes, failed=failed, args=vars(args)), f, indent=2)
    print(text + '\n\n' + '\n'.join(notes))
    if failed:
        print('run_protocol: failed runs: ' + '; '.join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
