"""Training-step cost of every pre-training method of the plugin and of two mmpretrain baselines.

:mod:`tools/benchmark.py <tools.benchmark>` is the command-line front-end; this module holds the
pieces it runs: the model configs at one backbone depth (:func:`model_cfg`), synthetic batches
with the structure each method's data pipeline produces (:func:`make_batch`), the timed worker
(:func:`run_worker`, one algorithm per fresh process), the selective-search timing for SoCo's
proposals (:func:`bench_selective_search`), the montage-assembler timing
(:func:`bench_assembler`) and the summary / Markdown table (:func:`summarize`,
:func:`markdown_table`).

Equal budget: every algorithm gets the same backbone (ResNet-``depth``, BN), the same number of
source images per step (``batch``) and the same image size ``img``. What ``img`` is, per method
(each method's own extra inputs are part of its cost):

- ``byol``, ``mocov2`` (mmpretrain): two views of ``img x img``.
- ``mcl``: ``2 x S`` views of ``img x img`` per image; the model assembles them into montages of
  ``img x img`` (level ``s`` tiles are ``img / 2^s``; ``ceil(batch / 4^s)`` montages per level and
  branch, the last one completed with repeated tiles) that go through the online and the EMA
  network. ``TilePooler.out_size = img // 32``.
- ``mcl-sup``: ``S`` views of ``img x img`` -> montages as MCL, one branch, no EMA network.
- ``vanilla-sup`` (only for ``--pair sup``): one ``img x img`` view, the same backbone + GAP +
  linear classifier.
- ``soco``: views V1, V2 of ``img`` and V3 of ``img / 2`` (the paper's 224/224/112), ``K = 4``
  proposal boxes per image and view (sides 30-90 % of the view), RoIAlign scale thresholds
  ``(48, 96, 192) * img / 224``.
- ``detco``: two global views of ``img`` + two sets of 9 jigsaw patches of
  ``round(64 * img / 224)`` px (the paper's 64 px patches for 224 px views).
- ``plrc``: two views of ``img`` with ``2 x R x R`` grid region maps, ``R = img // 4`` (the
  paper's 56 for 224).

A step is ``model.train_step``: data preprocessor (uint8 -> normalised float) + forward incl.
the EMA / momentum update + loss + backward + SGD step (momentum 0.9, same for every method; the
configs' LARS costs about the same).
"""
import math
import os
import os.path as osp
import resource
import statistics
import time
from typing import Dict, List, Optional, Sequence

ALGOS = ('mcl', 'mcl-sup', 'soco', 'detco', 'plrc', 'byol', 'mocov2')
EXTRA_ALGOS = ('vanilla-sup', )
BASELINES = ('byol', 'mocov2')
FPN_IN = {18: [64, 128, 256, 512], 34: [64, 128, 256, 512], 50: [256, 512, 1024, 2048],
          101: [256, 512, 1024, 2048]}
NUM_CLASSES = 1000
SOCO_PROPOSALS = 4
DETCO_PATCHES = 9
LABELS = {'mcl': 'MCL', 'mcl-sup': 'MCL-sup', 'soco': 'SoCo', 'detco': 'DetCo', 'plrc': 'PLRC',
          'byol': 'BYOL (mmpretrain)', 'mocov2': 'MoCo v2 (mmpretrain)',
          'vanilla-sup': 'supervised (mmpretrain ImageClassifier)'}
# (paper recipe every leaf config inherits, R18 CPU demo config)
CONFIGS = {
    'mcl': ('_base_/models/mcl_r50-fpn.py', 'mcl/mcl_r18-fpn_1xb16-lars-cpu-demo_pretrain.py'),
    'mcl-sup': ('_base_/models/mcl-sup_r50-fpn.py',
                'mcl_sup/mcl-sup_r18-fpn_1xb16-sgd-cpu-demo_objects.py'),
    'soco': ('_base_/models/soco_r50-fpn.py', 'soco/soco_r18-fpn_1xb8-lars-cpu-demo_pretrain.py'),
    'detco': ('_base_/models/detco_r50.py', 'detco/detco_r18_1xb8-coslr-300i_cpu-demo.py'),
    'plrc': ('_base_/models/plrc_r50.py', 'plrc/plrc_r18_1xb8-cpu-demo_pretrain.py'),
}
PREPROCESSOR = dict(type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
                    std=[58.395, 57.12, 57.375], to_rgb=True)


def config_root() -> str:
    """The plugin's ``configs/`` folder (``mcl_plugin/.mim/configs`` links to it)."""
    import mcl_plugin
    pkg = osp.dirname(osp.abspath(mcl_plugin.__file__))
    for root in (osp.join(pkg, '.mim', 'configs'), osp.join(osp.dirname(pkg), 'configs')):
        if osp.isdir(root):
            return root
    raise FileNotFoundError(f'no configs folder next to {pkg}')


def detco_patch_size(img: int) -> int:
    """DetCo's jigsaw patch side for global views of ``img`` px (64 px at 224)."""
    return max(8, round(64 * img / 224))


def montage_counts(batch: int, levels: int) -> List[int]:
    """Montages per level and branch: ``ceil(batch / 4^s)``."""
    return [math.ceil(batch / 4**s) for s in range(levels)]


def baseline_cfg(name: str, depth: int) -> dict:
    """mmpretrain's BYOL / MoCo v2 (their published head settings) or a plain classifier, on
    ResNet-``depth`` with BN."""
    feat = FPN_IN[depth][-1]
    backbone = dict(type='mmpretrain.ResNet', depth=depth, norm_cfg=dict(type='BN'),
                    zero_init_residual=False)
    if name == 'byol':
        return dict(
            type='mmpretrain.BYOL', base_momentum=0.01, backbone=backbone,
            data_preprocessor=PREPROCESSOR,
            neck=dict(type='NonLinearNeck', in_channels=feat, hid_channels=4096, out_channels=256,
                      num_layers=2, with_bias=True, with_last_bn=False, with_avg_pool=True,
                      norm_cfg=dict(type='BN1d')),
            head=dict(type='LatentPredictHead', loss=dict(type='CosineSimilarityLoss'),
                      predictor=dict(type='NonLinearNeck', in_channels=256, hid_channels=4096,
                                     out_channels=256, num_layers=2, with_bias=True,
                                     with_last_bn=False, with_avg_pool=False,
                                     norm_cfg=dict(type='BN1d'))))
    if name == 'mocov2':
        # mmpretrain configs/mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py
        return dict(
            type='mmpretrain.MoCo', queue_len=65536, feat_dim=128, momentum=0.001,
            backbone=backbone, data_preprocessor=PREPROCESSOR,
            neck=dict(type='MoCoV2Neck', in_channels=feat, hid_channels=2048, out_channels=128,
                      with_avg_pool=True),
            head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                      temperature=0.2))
    if name == 'vanilla-sup':
        return dict(
            type='mmpretrain.ImageClassifier',
            backbone=dict(type='mmdet.ResNet', depth=depth, out_indices=(3, ),
                          norm_cfg=dict(type='BN', requires_grad=True), zero_init_residual=False),
            data_preprocessor=dict(PREPROCESSOR, type='mmpretrain.ClsDataPreprocessor'),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=NUM_CLASSES, in_channels=feat,
                      loss=dict(type='CrossEntropyLoss')))
    raise KeyError(f'unknown baseline {name!r}')


def model_cfg(name: str, depth: int, img: int, levels: Optional[int] = None,
              heads: str = 'paper') -> dict:
    """Model config of one algorithm at ResNet-``depth`` for ``img``-px inputs.

    The plugin's algorithms come from their configs: ``heads='paper'`` reads the paper recipe
    in ``configs/_base_/models`` (projector / queue sizes as published, like the baselines),
    ``heads='demo'`` the R18 CPU demo config (smaller MLPs and queues). Either way the backbone
    depth and everything tied to the backbone width or to the image size is set from the
    arguments, with the rules the demo configs use (``TilePooler.out_size = img // 32``, SoCo's
    scale thresholds ``* img / 224``, PLRC's ``R = img // 4``), and SyncBN is left to
    :func:`build_model` (reverted to BN, as mmengine's Runner does on one process).

    Args:
        name (str): One of :data:`ALGOS` or :data:`EXTRA_ALGOS`.
        depth (int): ResNet depth.
        img (int): Image size (see the module docstring).
        levels (int, optional): MCL / MCL-sup ``num_levels``; None keeps the config's.
        heads (str): ``paper`` or ``demo``.

    Returns:
        dict: The model config.
    """
    if name not in CONFIGS:
        return baseline_cfg(name, depth)
    from mmengine.config import Config
    if heads not in ('paper', 'demo'):
        raise ValueError(f"heads must be 'paper' or 'demo', got {heads!r}")
    path = osp.join(config_root(), CONFIGS[name][heads == 'demo'])
    cfg = Config.fromfile(path).model.to_dict()
    chans = FPN_IN[depth]
    cfg['backbone']['depth'] = depth
    if name in ('mcl', 'mcl-sup', 'soco'):
        cfg['neck']['in_channels'] = list(chans)
    if name in ('mcl', 'mcl-sup'):
        cfg['tile_pooler']['out_size'] = max(1, img // 32)
        if levels is not None:
            cfg['num_levels'] = levels
    elif name == 'soco':
        cfg['roi_pooler']['scale_thresholds'] = [t * img / 224 for t in (48, 96, 192)]
    elif name == 'detco':
        cfg['neck']['in_channels'] = tuple(chans)
    elif name == 'plrc':
        cfg['neck']['in_channels'] = chans[-1]
        cfg['projector']['in_channels'] = chans[-1]
        cfg['resolution'] = max(1, img // 4)
    return cfg


def build_model(cfg: dict, device: str = 'cpu'):
    """Build in the plugin's scope; SyncBN reverted to BN (one process, as the Runner does)."""
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    from mcl_plugin.registry import MODELS
    init_default_scope('mcl_plugin')
    model = revert_sync_batchnorm(MODELS.build(cfg)).to(device)
    model.train()
    return model


def describe_inputs(name: str, img: int, batch: int, levels: int) -> str:
    """What one source image contributes to a step (the table's ``inputs`` column)."""
    if name == 'mcl':
        return (f'2x{levels} views {img} px -> {2 * sum(montage_counts(batch, levels))} '
                f'montages {img} px / {batch} img (S={levels})')
    if name == 'mcl-sup':
        return (f'{levels} views {img} px -> {sum(montage_counts(batch, levels))} montages '
                f'{img} px / {batch} img (S={levels})')
    if name == 'soco':
        return f'views {img}/{img}/{img // 2} px, {SOCO_PROPOSALS} boxes each'
    if name == 'detco':
        p = detco_patch_size(img)
        return f'2 views {img} px + 2x{DETCO_PATCHES} patches {p} px'
    if name == 'plrc':
        return f'2 views {img} px + region maps {img // 4}x{img // 4}'
    if name == 'vanilla-sup':
        return f'1 view {img} px'
    return f'2 views {img} px'


def online_pixels(name: str, img: int, batch: int, levels: int) -> float:
    """Pixels per source image through the online backbone, in units of ``img^2``."""
    if name == 'mcl':
        return 2 * sum(montage_counts(batch, levels)) / batch
    if name == 'mcl-sup':
        return sum(montage_counts(batch, levels)) / batch
    if name == 'soco':
        return 1 + 1 + (img // 2)**2 / img**2  # every view is an online (and a target) view
    if name == 'detco':
        return 1 + DETCO_PATCHES * detco_patch_size(img)**2 / img**2
    if name in ('plrc', 'mocov2', 'vanilla-sup'):
        return 1.
    return 2.  # byol: both views through the online network


def make_batch(name: str, model, batch: int, img: int, seed: int = 0) -> dict:
    """A ``train_step`` data dict with the structure the method's pipeline + collate give.

    Images are random uint8 (BGR, like ``LoadImageFromFile``), one stacked ``(B, 3, H, W)``
    tensor per view; data samples carry what the model reads (labels, SoCo's ``view_boxes``,
    PLRC's ``region_masks``).
    """
    import torch
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)

    def views(*sizes: int) -> List:
        return [torch.randint(0, 256, (batch, 3, s, s), generator=g, dtype=torch.uint8)
                for s in sizes]

    samples = [DataSample() for _ in range(batch)]
    if name == 'mcl':
        inputs = views(*[img] * (2 * model.num_levels))
    elif name == 'mcl-sup':
        inputs = views(*[img] * model.num_levels)
        samples = [DataSample().set_gt_label(i % NUM_CLASSES) for i in range(batch)]
    elif name == 'vanilla-sup':
        inputs = views(img)[0]
        samples = [DataSample().set_gt_label(i % NUM_CLASSES) for i in range(batch)]
    elif name == 'soco':
        sizes = (img, img, img // 2)
        inputs = views(*sizes)
        for ds in samples:
            boxes = []
            for s in sizes:  # xyxy in the view's pixels, sides 30-90 % of the view
                wh = (0.3 + 0.6 * torch.rand(SOCO_PROPOSALS, 2, generator=g)) * s
                xy = torch.rand(SOCO_PROPOSALS, 2, generator=g) * (s - wh)
                boxes.append(torch.cat([xy, xy + wh], 1))
            ds.set_field(torch.stack(boxes), 'view_boxes')
    elif name == 'detco':
        p = detco_patch_size(img)
        inputs = views(img, img, *[p] * (2 * DETCO_PATCHES))
    elif name == 'plrc':
        inputs = views(img, img)
        n, r = model.grid_size, model.resolution
        cells = (torch.arange(r) + 0.5) / r
        for ds in samples:
            masks = []
            for _ in range(2):  # a crop of 50-100 % of the image side, like GridRegionTwoView
                side = 0.5 + 0.5 * torch.rand(1, generator=g)
                x0, y0 = (torch.rand(2, generator=g) * (1 - side)).tolist()
                rows = ((y0 + cells * side) * n).long().clamp(max=n - 1)
                cols = ((x0 + cells * side) * n).long().clamp(max=n - 1)
                masks.append((rows[:, None] * n + cols[None, :]).to(torch.uint8))
            ds.set_field(torch.stack(masks), 'region_masks')
    else:  # byol, mocov2
        inputs = views(img, img)
    return dict(inputs=inputs, data_samples=samples)


def rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def max_rss_mb() -> float:
    """Peak resident set size of this process so far (MB; Linux ``ru_maxrss`` is in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_worker(name: str,
               depth: int,
               img: int,
               batch: int,
               steps: int,
               warmup: int = 1,
               levels: Optional[int] = None,
               heads: str = 'paper',
               device: str = 'cpu',
               threads: Optional[int] = None,
               seed: int = 0) -> dict:
    """Time ``steps`` training steps of one algorithm after ``warmup`` untimed ones.

    Meant to run alone in a fresh process: the peak-memory numbers are this process's.
    ``rss_ready_mb`` is the RSS with the model, its EMA copy, queues and the batch in memory;
    ``peak_delta_mb`` is the peak during the steps above that (activations, gradients, SGD
    momentum, temporaries). On CUDA both come from the caching allocator instead.

    Returns:
        dict: ``model, times (s), rss_import_mb, rss_ready_mb, peak_mb, peak_delta_mb,
        peak_is_lower_bound, params_m, num_levels, threads``.
    """
    import torch
    from mmengine.logging import MessageHub
    from mmengine.optim import OptimWrapper
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rss_import = rss_mb()
    MessageHub.get_current_instance().update_info('max_iters', 10**6)  # CosineEMA schedules
    model = build_model(model_cfg(name, depth, img, levels, heads), device)
    optim = OptimWrapper(torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                         lr=1e-3, momentum=0.9))
    data = make_batch(name, model, batch, img, seed)
    cuda = device.startswith('cuda')
    if cuda:
        torch.cuda.synchronize()
        ready = torch.cuda.memory_allocated() / 2**20
        torch.cuda.reset_peak_memory_stats()
    else:
        ready, max_ready = rss_mb(), max_rss_mb()
    times = []
    for i in range(warmup + steps):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.train_step(data, optim)
        if cuda:
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else max_rss_mb()
    return dict(model=name, times=times, rss_import_mb=rss_import, rss_ready_mb=ready,
                peak_mb=peak, peak_delta_mb=peak - ready,
                # the steps did not raise the process's earlier peak (import / build)
                peak_is_lower_bound=bool(not cuda and peak <= max_ready),
                params_m=sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6,
                num_levels=getattr(model, 'num_levels', None), threads=torch.get_num_threads())


def _worker_entry(conn, kwargs: dict) -> None:
    """Child side of :func:`run_isolated`: run the worker, send ``('ok', record)`` or
    ``('error', traceback)``."""
    import traceback
    try:
        conn.send(('ok', run_worker(**kwargs)))
    except BaseException:  # noqa: BLE001 - reported by the parent
        conn.send(('error', traceback.format_exc()))
    finally:
        conn.close()


def run_isolated(kwargs: dict, context=None) -> dict:
    """:func:`run_worker` in a fresh child process (so its peak memory is its own).

    Args:
        kwargs (dict): Arguments of :func:`run_worker`.
        context: A ``multiprocessing`` context. Defaults to ``forkserver`` with this module
            preloaded, so every child starts from a process that has imported torch and the
            OpenMMLab stack but has built no model (no import cost per child, and the child's
            ``ru_maxrss`` starts at its own RSS: Linux resets the high-water mark on fork).

    Returns:
        dict: The worker's record.
    """
    import multiprocessing as mp
    if context is None:
        context = mp.get_context('forkserver')
        context.set_forkserver_preload([__name__])
    parent, child = context.Pipe(duplex=False)
    proc = context.Process(target=_worker_entry, args=(child, kwargs), daemon=True)
    proc.start()
    child.close()
    try:
        status, payload = parent.recv()
    except EOFError:
        status, payload = 'error', 'the worker died without a result'
    proc.join()
    if status != 'ok':
        raise RuntimeError(f"worker {kwargs.get('name')} failed (exit code {proc.exitcode}):\n"
                           f'{payload}')
    return payload


def sample_images(root: str, count: int) -> List[str]:
    """``count`` image files spread evenly over the sorted files under ``root``."""
    exts = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')
    files = sorted(osp.join(d, f) for d, _, fs in os.walk(root) for f in fs
                   if f.lower().endswith(exts))
    if not files:
        raise FileNotFoundError(f'no images under {root}')
    step = max(1, len(files) // max(1, count))
    return files[::step][:count]


def bench_selective_search(paths: Sequence[str],
                           max_side: Optional[int] = None,
                           threads: int = 1) -> dict:
    """Images/s of SoCo's proposal generation: ``process_image`` of
    ``tools/generate_proposals.py`` (read + OpenCV selective search, fast mode + SoCo's filters)
    in this process, one image after the other, after one untimed image.

    Args:
        paths (Sequence[str]): Image files.
        max_side (int, optional): ``--max-side`` of the generator (None: its default, original
            resolution).
        threads (int): ``cv2.setNumThreads`` (the generator's workers use 1).

    Returns:
        dict: ``mode, max_side, images, seconds (per image), images_per_s, mean_pixels,
        mean_boxes_raw, mean_boxes_final``.
    """
    import cv2

    from mcl_plugin.datasets.proposals import (ProposalFilter, SelectiveSearchConfig,
                                               process_image)
    cv2.setNumThreads(threads)
    cfg, filt = SelectiveSearchConfig(mode='fast', max_side=max_side), ProposalFilter()
    process_image(paths[0], 'warmup', cfg, filt)
    recs = [process_image(p, osp.basename(p), cfg, filt) for p in paths]
    bad = [r for r in recs if 'error' in r]
    if bad:
        raise RuntimeError(f'selective search failed: {bad}')
    secs = [r['seconds'] for r in recs]
    return dict(mode='fast', max_side=max_side, images=len(recs), seconds=secs,
                images_per_s=len(secs) / sum(secs),
                mean_pixels=statistics.mean(r['width'] * r['height'] for r in recs),
                mean_boxes_raw=statistics.mean(r['num_raw'] for r in recs),
                mean_boxes_final=statistics.mean(len(r['boxes']) for r in recs))


def bench_assembler(batch: int, img: int, levels: int, reps: int, device: str = 'cpu') -> dict:
    """Median time of the S-level montage assembly vs ``clone()`` of the same S views."""
    import torch

    from mcl_plugin.models.utils import MontageAssembler
    views = [torch.rand(batch, 3, img, img, device=device) for _ in range(levels)]
    out = {}
    for mode in ('bilinear', 'area'):
        asm = MontageAssembler(mode=mode)
        t_asm, t_copy = [], []
        for i in range(3 + reps):
            t0 = time.perf_counter()
            asm(views)
            t1 = time.perf_counter()
            [v.clone() for v in views]
            t2 = time.perf_counter()
            if i >= 3:
                t_asm.append(t1 - t0)
                t_copy.append(t2 - t1)
        a, c = statistics.median(t_asm), statistics.median(t_copy)
        out[mode] = dict(assemble_ms=a * 1e3, copy_ms=c * 1e3, ratio=a / c, levels=levels)
    return out


def summarize(records: Dict[str, List[dict]], batch: int) -> Dict[str, dict]:
    """Per-algorithm statistics over all rounds, and ratios vs the baselines present.

    Args:
        records (dict): Algorithm -> the :func:`run_worker` results of its rounds.
        batch (int): Source images per step.

    Returns:
        dict: Algorithm -> ``step_s`` (median), ``step_mean_s``, ``step_min_s``, ``steps``,
        ``round_medians_s``, ``images_per_s`` (``batch / step_s``), ``peak_delta_mb`` (max over
        rounds), ``peak_mb``, ``rss_ready_mb``, ``params_m`` and, for each baseline ``b``
        measured, ``step_vs_{b}`` and ``mem_vs_{b}`` (ratios of ``step_s`` / of
        ``peak_delta_mb``).
    """
    out: Dict[str, dict] = {}
    for name, recs in records.items():
        times = [t for r in recs for t in r['times']]
        med = statistics.median(times)
        out[name] = dict(step_s=med, step_mean_s=statistics.mean(times), step_min_s=min(times),
                         steps=times,
                         round_medians_s=[statistics.median(r['times']) for r in recs],
                         images_per_s=batch / med,
                         peak_delta_mb=max(r['peak_delta_mb'] for r in recs),
                         peak_mb=max(r['peak_mb'] for r in recs),
                         rss_ready_mb=max(r['rss_ready_mb'] for r in recs),
                         peak_is_lower_bound=any(r['peak_is_lower_bound'] for r in recs),
                         params_m=recs[0]['params_m'], num_levels=recs[0]['num_levels'])
    return add_ratios(out)


def add_ratios(algos: Dict[str, dict]) -> Dict[str, dict]:
    """Set ``step_vs_{b}`` (median step ratio), ``step_min_vs_{b}`` (ratio of the fastest steps,
    the least disturbed by other load) and ``mem_vs_{b}`` (``peak_delta_mb`` ratio) for each
    baseline ``b`` in ``algos``; returns ``algos``."""
    for base in BASELINES:
        if base not in algos:
            continue
        ref = algos[base]
        for res in algos.values():
            res[f'step_vs_{base}'] = res['step_s'] / ref['step_s']
            res[f'step_min_vs_{base}'] = res['step_min_s'] / ref['step_min_s']
            res[f'mem_vs_{base}'] = res['peak_delta_mb'] / ref['peak_delta_mb']
    return algos


def markdown_table(results: dict) -> str:
    """The Markdown report: one row per algorithm, then SoCo's selective search, the run
    conditions, the legacy two-model table (``--pair``) and the montage assembler timing."""
    cfg, algos = results['config'], results['algorithms']
    cuda = cfg['device'].startswith('cuda')
    mem = 'peak CUDA alloc. above ready (MB)' if cuda else 'peak RSS above ready (MB)'
    bases = [b for b in BASELINES if b in algos]
    short = {b: LABELS[b].split(' (')[0] for b in bases}
    head = (['algorithm', 'inputs per step', 'online px/img (img^2)', 'mean step (s)',
             'median step (s)', 'min step (s)', 'images/s', mem]
            + [f'step vs {short[b]}: median (min)' for b in bases]
            + [f'mem vs {short[b]}' for b in bases])
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for name, r in algos.items():
        row = [LABELS.get(name, name), r['inputs'], f"{r['online_px_per_image']:.2f}",
               f"{r['step_mean_s']:.3f}", f"{r['step_s']:.3f}", f"{r['step_min_s']:.3f}",
               f"{r['images_per_s']:.2f}",
               f"{r['peak_delta_mb']:.0f}" + (' (>=)' if r['peak_is_lower_bound'] else '')]
        row += [f"{r[f'step_vs_{b}']:.2f}x ({r[f'step_min_vs_{b}']:.2f}x)" for b in bases]
        row += [f"{r[f'mem_vs_{b}']:.2f}x" for b in bases]
        lines.append('| ' + ' | '.join(row) + ' |')
    text = [f"ResNet-{cfg['depth']}, img {cfg['img']}, batch {cfg['batch']}, {cfg['heads']} "
            f"heads, {cfg['steps']} timed steps x {cfg['rounds']} interleaved rounds after "
            f"{cfg['warmup']} warm-up step(s), device {cfg['device']}, "
            f"{results['threads']} torch thread(s) per process, one process per algorithm and "
            'round; images/s = batch / median step.', '', *lines]
    ss = results.get('selective_search') or []
    if ss:
        text += ['', '| SoCo proposals (OpenCV selective search, fast) | images | mean px '
                 '| raw / kept boxes | s/image | images/s |', '|---|---|---|---|---|---|']
        for s in ss:
            text.append(f"| max_side={s['max_side']} | {s['images']} | {s['mean_pixels']:.0f} | "
                        f"{s['mean_boxes_raw']:.0f} / {s['mean_boxes_final']:.0f} | "
                        f"{statistics.mean(s['seconds']):.3f} | {s['images_per_s']:.2f} |")
    load = results.get('loadavg')
    if load:
        text += ['', f"Load average (1/5/15 min) before: {load['before']}, after: "
                 f"{load['after']} on {results['cpus']} CPUs."]
    if 'step_ratio' in results:
        base, ours = results['pair']
        text += ['', f'| | {base} | {ours} | ratio |', '|---|---|---|---|',
                 f"| step time (s) | {algos[base]['step_s']:.3f} | {algos[ours]['step_s']:.3f} "
                 f"| {results['step_ratio']:.2f} |",
                 f"| peak memory (MB, absolute) | {algos[base]['peak_mb']:.0f} | "
                 f"{algos[ours]['peak_mb']:.0f} | {results['mem_ratio']:.2f} |"]
    for mode, a in (results.get('assembler') or {}).items():
        text += ['', f"Montage assembler ({mode}, S={a.get('levels', '?')}): "
                 f"{a['assemble_ms']:.2f} ms vs copy {a['copy_ms']:.2f} ms -> {a['ratio']:.2f}x"]
    return '\n'.join(text)
