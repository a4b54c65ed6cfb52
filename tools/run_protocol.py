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
checkpoint of an earlier fine-tune run is reused), then probed with the same seed as soon as
its pre-training has finished (probes overlap the remaining pre-training): the linear
probe on object crops (``tools/analysis/linear_probe.py``) and the frozen-feature detection probe
(``tools/analysis/det_probe.py``, variants ``backbone`` and ``all``); ``random`` takes the seed
for its weights. Rows already in ``WORK/probes/{linear,det}/*.json`` are skipped. The table
(``WORK/probes.md``, ``WORK/probes.json``) holds mean ± half-range over seeds per row and probe,
and per method pair and probe whether the difference of the means exceeds 3x the larger of the
two seed spreads.

Equal wall-clock budget (``--budget-s``): each pre-trained row's seconds per iteration are
measured once (``--calib-iters`` iterations, ``--jobs`` copies side by side,
``WORK/calibration.json``) and its run gets
``budget / seconds`` iterations; ``--pretrain-img`` / ``--pretrain-batch`` set the views and batch
of the rows whose views are RandomResizedCrop pairs (MCL and its ablations, BYOL). The linear
stage also scores the nearest class centroid (NCM), a cross-validated logistic regression, both
again pooled over every crop with folds of whole object instances (the val split's 58 instances
alone make a noisy score), and, with ``--probe-backbones online,ema``, probes the EMA backbone
too (``docs/results/probe_protocol.md``).

Examples::

    # the probe table of README "Results" (main rows; add --rows soco,detco,plrc --seeds 0,1
    # --all-seeds for the others)
    python tools/run_protocol.py --rows main --seeds 0,1,2 --stages linear --budget-s 600 \
        --pretrain-img 64 --pretrain-batch 32 --probe-img 64 --probe-backbones online,ema \
        --jobs 2 --threads 1 --work-dir work_dirs/protocol64
    # probe table: random, BYOL, MCL with 3 seeds each
    python tools/run_protocol.py --rows main --seeds 0,1,2 --stages linear,det
    # the table in README: main rows with 2 seeds, the rest with 1 (2-core CPU: ~30 min per
    # run with two runs side by side, ~4 h for all 16 runs)
    python tools/run_protocol.py --rows all --jobs 2 --threads 1
    # only re-write the table from finished runs
    python tools/run_protocol.py --rows all --table-only
    # print the commands without running them
    python tools/run_protocol.py --rows mcl,byol --dry-run
    # one table over two runs with disjoint seeds (e.g. a confirmatory run)
    python tools/run_protocol.py --merge A/probes.json,B/probes.json --work-dir work_dirs/both
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Dict, List, Optional, Sequence, Tuple

from tools.analysis.probe_common import exceeds
from tools.analysis.probe_common import mean_half_range as summarize

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MCL = 'configs/mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'
FT = 'configs/benchmarks/mmdet/mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py'
#: Serialises writes of WORK/calibration.json.
CALIB_LOCK = threading.Lock()
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
    'byol-lr': ('BYOL at its recipe lr (0.3 x batch / 256)',
                'configs/baselines/byol-recipe-lr_r18_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'),
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
                        help='images seen by every pre-training (%(default)s; see --budget-s)')
    parser.add_argument('--budget-s', type=float, default=None,
                        help='equal wall-clock pre-training budget per row in seconds instead of '
                        'equal images: iterations = budget / the row\'s measured seconds per '
                        'iteration (calibrated once, WORK/calibration.json)')
    parser.add_argument('--pretrain-img', type=int, default=None,
                        help='view size in pixels for the rows whose pipeline is MultiView of '
                        'RandomResizedCrop views (MCL and its ablations, BYOL); MCL tiles read '
                        'img / 32 cells. Other rows keep their config\'s (the table says which)')
    parser.add_argument('--pretrain-batch', type=int, default=None,
                        help='pre-training batch for the same rows, lr scaled linearly from the '
                        'config\'s')
    parser.add_argument('--calib-iters', type=int, default=8,
                        help='iterations of a calibration run; the first 3 are not timed '
                        '(%(default)s)')
    parser.add_argument('--ft-epochs', type=int, default=2, help='fine-tune epochs (%(default)s)')
    parser.add_argument('--ft-scale', default='160,120',
                        help='fine-tune image scale W,H (%(default)s)')
    parser.add_argument('--jobs', type=int, default=1, help='runs side by side')
    parser.add_argument('--threads', type=int, default=1, help='torch threads per run')
    parser.add_argument('--stages', default='finetune',
                        help='comma-separated: finetune, linear, det (%(default)s)')
    parser.add_argument('--probe-img', type=int, default=128,
                        help='crop size of the linear / NCM probe (%(default)s)')
    parser.add_argument('--probe-backbones', default='online',
                        help='comma-separated: online, ema (the EMA / momentum target; random '
                        'init has one backbone for both) (%(default)s)')
    parser.add_argument('--det-iters', type=int, default=300,
                        help='detection-probe iterations (%(default)s)')
    parser.add_argument('--det-batch', type=int, default=2,
                        help='detection-probe batch (%(default)s)')
    parser.add_argument('--det-variants', default='backbone,all',
                        help='detection-probe variants (%(default)s)')
    parser.add_argument('--table-only', action='store_true', help='only write the table')
    parser.add_argument('--dry-run', action='store_true', help='print the commands only')
    parser.add_argument('--merge', default=None, metavar='A/probes.json,B/probes.json',
                        help='write one probe table (WORK/probes.{md,json}) from the tables of '
                        'runs with disjoint seeds; runs nothing')
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


def resizable(config: str) -> bool:
    """Whether ``--pretrain-img`` / ``--pretrain-batch`` apply to a pre-training config: its
    second pipeline step is ``MultiView`` of views that start with ``RandomResizedCrop``."""
    from mmengine.config import Config
    pipeline = Config.fromfile(osp.join(ROOT, config)).train_dataloader.dataset.pipeline
    return (len(pipeline) > 1 and pipeline[1].type == 'MultiView'
            and all(v[0].type == 'RandomResizedCrop' for v in pipeline[1].transforms))


def row_batch(row: str, args: argparse.Namespace) -> int:
    """The pre-training batch of a row in this protocol (``--pretrain-batch`` or the config's)."""
    config = ROWS[row][1]
    if args.pretrain_batch and resizable(config):
        return args.pretrain_batch
    return batch_size(config)


def row_views(row: str, args: argparse.Namespace) -> str:
    """The view size of a row in this protocol, for the table (``'config'``: its own)."""
    config = ROWS[row][1]
    return f'{args.pretrain_img} px' if args.pretrain_img and resizable(config) else 'config'


def view_options(config: str, img: Optional[int], batch: Optional[int]) -> List[str]:
    """``--cfg-options`` that set the views' size (and MCL's tile cells) and the batch (lr
    scaled linearly) of a :func:`resizable` config."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config))
    opts = []
    if img is not None:
        views = cfg.train_dataloader.dataset.pipeline[1].transforms
        opts += [f'train_dataloader.dataset.pipeline.1.transforms.{i}.0.scale={img}'
                 for i in range(len(views))]
        if 'tile_pooler' in cfg.model:
            if img % 32:
                raise SystemExit(f'run_protocol: --pretrain-img {img} is not a multiple of 32 '
                                 f'(the P5 stride of the MCL tiles of {config})')
            opts.append(f'model.tile_pooler.out_size={img // 32}')
    if batch is not None:
        lr = cfg.optim_wrapper.optimizer.lr * batch / cfg.train_dataloader.batch_size
        opts += [f'train_dataloader.batch_size={batch}', f'optim_wrapper.optimizer.lr={lr:g}']
    return opts


def pretrain_cfg_options(row: str, seed: int, args: argparse.Namespace) -> List[str]:
    """The pre-training ``--cfg-options`` of a row: seed, data (checked), and the views and
    batch of ``--pretrain-img`` / ``--pretrain-batch`` where the row's config takes them."""
    data_root = osp.join(args.data, 'objects_coco' if row == 'mcl-sup' else 'pretrain')
    opts = [f'randomness.seed={seed}', f'train_dataloader.dataset.data_root={data_root}']
    config = ROWS[row][1]
    if (args.pretrain_img or args.pretrain_batch) and config and resizable(config):
        opts += view_options(config, args.pretrain_img, args.pretrain_batch)
    if row == 'soco':
        proposals = osp.join(data_root, 'meta', 'train_proposals_ss-fast.json')
        if not osp.exists(proposals):
            raise SystemExit(
                f'run_protocol: SoCo needs {proposals}; make it with: python '
                f'tools/generate_proposals.py {data_root}/train --ann-file '
                f'{data_root}/meta/train.txt --out {proposals} --max-side 320')
    return opts


#: Timed iterations of a calibration run start after this many (data workers, allocator).
CALIB_SKIP = 3


def calibration_file(args: argparse.Namespace) -> str:
    return osp.join(args.work_dir, 'calibration.json')


def seconds_per_iteration(scalars: str, skip: int = CALIB_SKIP) -> float:
    """Median per-iteration ``time`` after ``skip`` iterations in an mmengine ``scalars.json``
    written with ``log_processor.window_size=1`` and a logger interval of 1."""
    times = []
    with open(scalars) as f:
        for line in f:
            rec = json.loads(line)
            if 'time' in rec and int(rec.get('step', rec.get('iter', 0))) > skip:
                times.append(float(rec['time']))
    if not times:
        raise SystemExit(f'run_protocol: no timed iteration after the first {skip} in {scalars}; '
                         'raise --calib-iters')
    times.sort()
    mid = len(times) // 2
    return times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2


def calibrate(row: str, args: argparse.Namespace) -> Tuple[str, int]:
    """Measure a row's seconds per pre-training iteration, unless ``WORK/calibration.json`` holds
    it for the same thread count; returns ``(row, exit code)``.

    ``--jobs`` copies of the row's config run ``--calib-iters`` iterations side by side with
    ``--threads`` threads each, so the row is timed under the load its runs will see, whatever
    row shares the machine with it and however many rows there are; the recorded value is the
    mean of the copies' medians.
    """
    _, config = ROWS[row]
    if config is None or calibrated(row, args) is not None:
        return row, 0
    iters = args.calib_iters
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    works = [osp.join(args.work_dir, 'calibration', row if k == 0 else f'{row}-copy{k}')
             for k in range(max(1, args.jobs))]
    print(f'[protocol] {row}: calibrating ({iters} iterations, {len(works)} side by side, log '
          f'{works[0]}.log)\n', end='', flush=True)
    procs = []
    for work in works:
        cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir', work,
               '--cfg-options', *pretrain_cfg_options(row, 0, args),
               f'train_cfg.max_iters={iters}', 'default_hooks.logger.interval=1',
               'log_processor.window_size=1', f'default_hooks.checkpoint.interval={iters + 1}',
               'default_hooks.checkpoint.save_last=False']
        os.makedirs(work, exist_ok=True)
        log = open(f'{work}.log', 'w')
        procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       cwd=ROOT), log))
    codes = []
    for proc, log in procs:
        codes.append(proc.wait())
        log.close()
    if any(codes):
        return row, next(c for c in codes if c)
    medians = []
    for work in works:
        scalars = sorted(glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json')))
        if not scalars:
            raise SystemExit(f'run_protocol: the calibration of {row} wrote no scalars.json '
                             f'under {work}')
        medians.append(seconds_per_iteration(scalars[-1]))
    seconds = sum(medians) / len(medians)
    path = calibration_file(args)
    with CALIB_LOCK:
        record = json.load(open(path)) if osp.exists(path) else {}
        record[row] = dict(seconds_per_iter=seconds, threads=args.threads, iters=iters,
                           skip=CALIB_SKIP, config=config,
                           side_by_side=[round(m, 4) for m in medians])
        with open(path, 'w') as f:
            json.dump(record, f, indent=2)
    print(f'[protocol] {row}: {seconds:.2f} s per iteration\n', end='', flush=True)
    return row, 0


def calibrated(row: str, args: argparse.Namespace) -> Optional[float]:
    """The recorded seconds per iteration of a row at ``--threads`` (None: not measured)."""
    path = calibration_file(args)
    if not osp.exists(path):
        return None
    with open(path) as f:
        rec = json.load(f).get(row)
    return None if rec is None or rec['threads'] != args.threads else rec['seconds_per_iter']


def pretrain_iterations(row: str, args: argparse.Namespace) -> int:
    """Pre-training iterations of a row: ``--pretrain-images / batch`` or, with ``--budget-s``,
    the budget over the row's calibrated seconds per iteration."""
    if args.budget_s is None:
        return max(1, args.pretrain_images // row_batch(row, args))
    seconds = calibrated(row, args)
    if seconds is None:
        raise SystemExit(f'run_protocol: {row} has no calibration in {calibration_file(args)} '
                         f'for --threads {args.threads}; run without --dry-run / --table-only '
                         'first')
    return max(1, int(args.budget_s // seconds))


def command(row: str, seed: int, args: argparse.Namespace) -> Tuple[List[str], str]:
    """The ``pretrain_and_finetune.py`` command of one run and its work dir."""
    _, config = ROWS[row]
    work = osp.join(args.work_dir, row, f'seed{seed}')
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'pretrain_and_finetune.py')]
    if config is None:
        cmd += ['none', FT_RANDOM, '--no-pretrain']
    else:
        cmd += [config, FT, '--pretrain-iters', str(pretrain_iterations(row, args)),
                '--pretrain-cfg-options', *pretrain_cfg_options(row, seed, args)]
    scale = tuple(int(v) for v in args.ft_scale.split(','))
    ft_opts = finetune_options(args.data, args.ft_epochs, scale, seed)
    cmd += ['--work-dir', work, '--finetune-cfg-options', *ft_opts]
    return cmd, work


def calibrate_rows(runs: Sequence[Tuple[str, int]], args: argparse.Namespace) -> List[str]:
    """With ``--budget-s``: calibrate every pre-trained row of ``runs`` not measured yet, one
    row at a time (``--jobs`` copies of it side by side, as the runs will be); returns the
    failures."""
    if args.budget_s is None:
        return []
    rows = [r for r in ORDER if ROWS[r][1] is not None and r in {row for row, _ in runs}]
    os.makedirs(args.work_dir, exist_ok=True)
    # one row at a time: calibrate() runs --jobs copies of it side by side
    return [f'{row} calibration (log: {args.work_dir}/calibration/{row}.log)'
            for row, code in (calibrate(r, args) for r in rows) if code]


def calibrate_runs(runs: Sequence[Tuple[str, int]],
                   args: argparse.Namespace) -> Tuple[List[Tuple[str, int]], List[str]]:
    """Calibrate the rows of ``runs`` (``--budget-s``); returns the runs whose row calibrated
    and the failures."""
    failed = calibrate_rows(runs, args)
    return [(row, seed) for row, seed in runs
            if not any(f.startswith(f'{row} ') for f in failed)], failed


def calibrated_runs(runs: Sequence[Tuple[str, int]], fn, log_suffix: str,
                    args: argparse.Namespace) -> Tuple[List[Tuple[str, int]], List[str]]:
    """Calibrate (``--budget-s``), then ``fn(row, seed, args)`` for every (row, seed) whose row
    calibrated, ``--jobs`` side by side; returns the runs that ran and the failures."""
    runs, failed = calibrate_runs(runs, args)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for row, seed, code in pool.map(lambda rs: fn(*rs, args), runs):
            if code:
                failed.append(f'{row} seed {seed} (log: {args.work_dir}/{row}/seed{seed}'
                              f'{log_suffix})')
    return runs, failed


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
    seconds = time.time() - start
    print(f'[protocol] {row} seed {seed}: pre-training exit {code} after {seconds:.0f} s\n',
          end='', flush=True)
    if code == 0:
        iters = int(cmd[cmd.index('--pretrain-iters') + 1])
        with open(osp.join(work, 'budget.json'), 'w') as f:
            json.dump(dict(iters=iters, batch=row_batch(row, args), views=row_views(row, args),
                           images=iters * row_batch(row, args), seconds=round(seconds, 1),
                           budget_s=args.budget_s, threads=args.threads), f, indent=2)
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
            for which in probe_backbones(args):
                run_linear_probe([spec], coco, linear_dir(args.work_dir, which), seeds=[seed],
                                 img_size=args.probe_img, use_ema=which == 'ema',
                                 progress=False)
        if 'det' in stages:
            run_det_probe([spec], coco, osp.join(args.work_dir, 'probes', 'det'), seeds=[seed],
                          variants=args.det_variants.split(','),
                          cfg=DetProbeConfig(iters=args.det_iters, batch_size=args.det_batch),
                          progress=False)
    return missing


#: Backbones the linear / NCM probe can read.
PROBE_BACKBONES = ('online', 'ema')


def probe_backbones(args: argparse.Namespace) -> List[str]:
    names = [b.strip() for b in args.probe_backbones.split(',') if b.strip()]
    unknown = sorted(set(names) - set(PROBE_BACKBONES))
    if unknown or not names:
        raise SystemExit(f'run_protocol: --probe-backbones {args.probe_backbones!r}: choose from '
                         f'{", ".join(PROBE_BACKBONES)}')
    return names


def linear_dir(work_dir: str, which: str) -> str:
    """Result folder of the linear / NCM probe of the online or the EMA backbone."""
    return osp.join(work_dir, 'probes', 'linear' if which == 'online' else 'linear-ema')


def collect_probes(work_dir: str) -> Dict[str, Dict[str, Dict[int, float]]]:
    """Probe scores: ``{probe column: {row: {seed: value}}}`` from the probes' JSON files
    (linear, NCM and CV-linear top-1 in % of the online and the EMA backbone, detection-probe
    box AP per variant)."""
    out: Dict[str, Dict[str, Dict[int, float]]] = {}
    for which in PROBE_BACKBONES:
        path = osp.join(linear_dir(work_dir, which), 'linear.json')
        if not osp.exists(path):
            continue
        tag = '' if which == 'online' else ', EMA'
        with open(path) as f:
            for r in json.load(f)['results']:
                scores = {f'linear top-1 (%{tag})': r['top1'], f'NCM top-1 (%{tag})':
                          r.get('ncm_top1'), f'CV linear top-1 (%{tag})': r.get('cv_top1'),
                          f'pooled NCM top-1 (%{tag})': r.get('pooled_ncm_top1'),
                          f'pooled CV linear top-1 (%{tag})': r.get('pooled_cv_top1')}
                for column, value in scores.items():
                    if value is not None:
                        out.setdefault(column, {}).setdefault(r['name'], {})[r['seed']] = \
                            100 * value
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
    return delta, threshold, 'yes' if exceeds(delta, threshold) else 'no'


def collect_budgets(work_dir: str) -> Dict[str, List[dict]]:
    """The ``budget.json`` records (iterations, batch, views, images, seconds) of every
    pre-trained (row, seed) in the work dir."""
    out: Dict[str, List[dict]] = {}
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'seed*', 'budget.json'))):
        row = osp.basename(osp.dirname(osp.dirname(path)))
        with open(path) as f:
            out.setdefault(row, []).append(json.load(f))
    return out


def budget_cell(records: Sequence[dict]) -> str:
    """``views, iters x batch = images, seconds`` of a row (ranges when the seeds differ)."""
    if not records:
        return '-'

    def span(key: str, fmt: str = '{:.0f}') -> str:
        lo, hi = min(r[key] for r in records), max(r[key] for r in records)
        return fmt.format(lo) if lo == hi else f'{fmt.format(lo)}-{fmt.format(hi)}'

    return (f'{records[0]["views"]}, {span("iters")} x {records[0]["batch"]} = '
            f'{span("images")} images, {span("seconds")} s')


def probe_table(found: Dict[str, Dict[str, Dict[int, float]]],
                budgets: Optional[Dict[str, List[dict]]] = None) -> Tuple[str, dict]:
    """Markdown tables (rows x probes with each row's pre-training budget, then method pairs)
    and a JSON summary."""
    budgets = budgets or {}
    columns = list(found)
    rows = [r for r in ORDER if any(r in found[c] for c in columns)]
    head = ('| pre-training | ' + ' | '.join(f'{c} (seeds)' for c in columns) +
            ' | pre-training budget per seed |')
    lines = [head, '|' + '---|' * (len(columns) + 2)]
    summary: dict = dict(rows={}, pairs=[], budgets=budgets)
    for row in rows:
        cells = []
        for c in columns:
            vals = found[c].get(row, {})
            cells.append(f'{_fmt2(list(vals.values()))} ({",".join(map(str, sorted(vals)))})'
                         if vals else '-')
        budget = 'none' if ROWS[row][1] is None else budget_cell(budgets.get(row, []))
        lines.append(f'| {ROWS[row][0]} | ' + ' | '.join(cells) + f' | {budget} |')
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


def merge_summaries(paths: Sequence[str]) -> Tuple[Dict[str, Dict[str, Dict[int, float]]],
                                                   Dict[str, List[dict]]]:
    """The probe scores and budgets of several ``probes.json`` tables (e.g. a first run with
    seeds 0-2 and a confirmatory run with seeds 3-5), for one table over all their seeds.
    A (row, probe, seed) present in two files is an error: merge runs with disjoint seeds."""
    found: Dict[str, Dict[str, Dict[int, float]]] = {}
    budgets: Dict[str, List[dict]] = {}
    for path in paths:
        if not osp.exists(path):
            raise SystemExit(f'run_protocol: --merge: no file {path} (a probes.json written by '
                             'a run of the probe stages)')
        with open(path) as f:
            doc = json.load(f)
        for row, columns in doc.get('rows', {}).items():
            if row not in ROWS:
                raise SystemExit(f'run_protocol: --merge: {path}: unknown row {row!r}')
            for column, values in columns.items():
                cell = found.setdefault(column, {}).setdefault(row, {})
                for seed, value in values.items():
                    if int(seed) in cell:
                        raise SystemExit(f'run_protocol: --merge: {path}: {row} seed {seed} '
                                         f'({column}) is in an earlier file too; merge runs '
                                         'with disjoint seeds')
                    cell[int(seed)] = value
        for row, records in doc.get('budgets', {}).items():
            budgets.setdefault(row, []).extend(records)
    return found, budgets


def _fmt2(values: Sequence[float]) -> str:
    mean, half = summarize(values)
    return f'{mean:.2f}' if len(values) == 1 else f'{mean:.2f} ± {half:.2f}'


def pretrain_and_probe(runs: Sequence[Tuple[str, int]], stages: Sequence[str],
                       args: argparse.Namespace) -> List[str]:
    """Pre-train ``runs`` (``--jobs`` side by side) and probe each (row, seed) in this process
    as soon as its pre-training has finished (random init at once), so the probes of finished
    runs overlap the pre-training of the others; returns the failures. The pre-trainings' work
    is fixed by their iterations and the probes are deterministic per checkpoint and seed, so
    the overlap changes the wall time only."""
    failed: List[str] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(pretrain_one, row, seed, args) for row, seed in runs]
        for future in as_completed(futures):
            row, seed, code = future.result()
            if code:
                failed.append(f'{row} seed {seed} (log: {args.work_dir}/{row}/seed{seed}'
                              '.pretrain.log)')
            else:
                failed += run_probes([(row, seed)], stages, args)
    return failed


def main_probes(args: argparse.Namespace, runs: Sequence[Tuple[str, int]],
                stages: Sequence[str]) -> int:
    """The probe stages: pre-train what is missing, probe, write WORK/probes.{md,json}."""
    failed: List[str] = []
    if args.merge:
        found, budgets = merge_summaries([p for p in args.merge.split(',') if p])
    if not args.table_only and not args.merge:
        runs, failed = calibrate_runs(runs, args)
        failed += pretrain_and_probe(runs, stages, args)
    if not args.merge:
        found, budgets = collect_probes(args.work_dir), collect_budgets(args.work_dir)
    text, summary = probe_table(found, budgets)
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
    if args.merge:
        return main_probes(args, runs, probe_stages)
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
        _, failed = calibrated_runs(runs, run_one, '.log', args)
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
