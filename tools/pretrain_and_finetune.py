#!/usr/bin/env python
# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Run the whole transfer chain: pre-train -> convert -> check -> fine-tune -> test.

Each stage is a subprocess with its own log under ``WORK_DIR/logs/``::

    WORK_DIR/pretrain/          tools/train.py PRETRAIN_CONFIG (skipped with --skip-pretrain CKPT)
    WORK_DIR/converted.pth      tools/convert_to_mmdet.py (coverage table: WORK_DIR/convert.md)
    WORK_DIR/check.md           tools/check_pretrained.py on the fine-tune config
    WORK_DIR/finetune/          mmdet's tools/train.py FINETUNE_CONFIG, load_from=converted.pth
    WORK_DIR/finetuned.pth      tensors-only copy of the last fine-tune checkpoint
    WORK_DIR/test/              mmdet's tools/test.py on finetuned.pth
    WORK_DIR/metrics.json       COCO box / mask AP, AP50, AP75, APs/m/l (in %), timings, paths
    WORK_DIR/result.md          the same as one Markdown table row (with its header)

Examples::

    # CPU smoke run of the chain (minutes):
    python tools/pretrain_and_finetune.py \\
        configs/mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py \\
        configs/benchmarks/mmdet/mask-rcnn_r18-fpn_bn-4conv1fc_tiny-test_objects-coco.py \\
        --work-dir work_dirs/chain_smoke --pretrain-iters 2
    # 8 GPUs, an existing pre-training checkpoint:
    python tools/pretrain_and_finetune.py PRETRAIN_CONFIG \\
        configs/benchmarks/mmdet/mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py \\
        --work-dir work_dirs/mcl_r50_coco --skip-pretrain work_dirs/mcl/epoch_100.pth \\
        --launcher pytorch --gpus 8 --use-ema
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: mmdet CocoMetric keys -> names in metrics.json.
COCO_KEYS = (('mAP', 'AP'), ('mAP_50', 'AP50'), ('mAP_75', 'AP75'), ('mAP_s', 'APs'),
             ('mAP_m', 'APm'), ('mAP_l', 'APl'))


class StageError(RuntimeError):
    """A stage failed; the message names the stage and its log."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Pre-train, convert, check, fine-tune and test in one command.')
    parser.add_argument('pretrain_config', help='pre-training config (tools/train.py)')
    parser.add_argument('finetune_config', help='mmdet fine-tune config (configs/benchmarks/mmdet)')
    parser.add_argument('--work-dir', required=True, help='folder for every stage')
    parser.add_argument('--pretrain-iters',
                        type=int,
                        help='override train_cfg.max_iters of an iteration-based pre-training')
    parser.add_argument('--pretrain-cfg-options',
                        nargs='+',
                        default=[],
                        metavar='KEY=VALUE',
                        help='--cfg-options for the pre-training')
    parser.add_argument('--finetune-cfg-options',
                        nargs='+',
                        default=[],
                        metavar='KEY=VALUE',
                        help='--cfg-options for fine-tuning and testing')
    parser.add_argument('--skip-pretrain', metavar='CKPT', help='use this pre-training checkpoint')
    parser.add_argument('--pretrain-only', action='store_true',
                        help='stop after pre-training: write WORK_DIR/pretrain.json (checkpoint, '
                        'config, seconds) for the probes (tools/run_protocol.py --stages)')
    parser.add_argument('--no-pretrain', action='store_true',
                        help='the random-init baseline: skip pre-training, conversion and check, '
                        'fine-tune from scratch under the same protocol (PRETRAIN_CONFIG is '
                        'ignored; pass "none")')
    parser.add_argument('--use-ema',
                        action='store_true',
                        help='convert the EMA target instead of the online weights')
    parser.add_argument('--parts', default='backbone,neck,head', help='parts to transfer')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch'],
                        default='none',
                        help='pytorch: run training/testing with torchrun')
    parser.add_argument('--gpus', type=int, default=1, help='processes per node for torchrun')
    return parser.parse_args(argv)


def mmdet_tool(name: str) -> str:
    """Path of mmdet's packaged ``tools/<name>`` (``mmdet/.mim/tools``)."""
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', name)
    if not osp.isfile(path):
        raise StageError(f'mmdet ships no {path}; reinstall mmdet 3.x (pip install mmdet).')
    return path


def launch(script: str, args: Sequence[str], launcher: str, gpus: int) -> List[str]:
    """Command line for a training/testing script, through torchrun when distributed."""
    if launcher == 'pytorch':
        return [
            sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={gpus}', script,
            *args, '--launcher', 'pytorch'
        ]
    return [sys.executable, script, *args]


def run_stage(name: str, cmd: Sequence[str], log_dir: str, timings: Dict[str, float]) -> str:
    """Run one stage, streaming its output to the console and ``log_dir/<name>.log``.

    Returns:
        str: The captured output.

    Raises:
        StageError: If the command exits non-zero.
    """
    os.makedirs(log_dir, exist_ok=True)
    log_path = osp.join(log_dir, f'{name}.log')
    print(f'\n==== [{name}] {" ".join(cmd)}', flush=True)
    start = time.time()
    lines = []
    with open(log_path, 'w') as log, subprocess.Popen(cmd,
                                                      cwd=ROOT,
                                                      stdout=subprocess.PIPE,
                                                      stderr=subprocess.STDOUT,
                                                      text=True) as proc:
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
            lines.append(line)
    timings[name] = round(time.time() - start, 1)
    if proc.returncode != 0:
        tail = ''.join(lines[-15:])
        raise StageError(f'stage {name!r} failed (exit {proc.returncode}); full log: {log_path}'
                         f'\n---- last lines ----\n{tail}')
    return ''.join(lines)


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint mmengine's CheckpointHook recorded last in ``work_dir``."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(marker):
        with open(marker) as f:
            path = f.read().strip()
        if osp.isfile(path):
            return path
    found = sorted(glob.glob(osp.join(work_dir, '*.pth')), key=osp.getmtime)
    if not found:
        raise StageError(f'no checkpoint in {work_dir}: did the run save one (CheckpointHook)?')
    return found[-1]


def export_weights(checkpoint: str, dst: str) -> str:
    """Write a tensors-only copy (``state_dict`` + ``meta.dataset_meta``) of a runner checkpoint.

    Read through the allow-list of :mod:`mcl_plugin.utils.checkpoint` (runner checkpoints load
    with ``weights_only=True``; nothing else is unpickled).
    """
    import torch

    from mcl_plugin.utils.checkpoint import load_checkpoint_file
    ckpt = load_checkpoint_file(checkpoint)
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    dataset_meta = {
        k: v
        for k, v in meta.get('dataset_meta', {}).items()
        if isinstance(v, (str, int, float, list, tuple))
    }
    torch.save(dict(state_dict=ckpt['state_dict'], meta=dict(dataset_meta=dataset_meta)), dst)
    return dst


def pretrain_options(config: str, iters: Optional[int], extra: Sequence[str]) -> List[str]:
    """``--cfg-options`` for the pre-training (``--pretrain-iters`` needs an iteration loop).

    ``--pretrain-iters N`` sets ``train_cfg.max_iters`` and rescales every iteration-based
    ``param_scheduler`` entry (``begin``, ``end``, ``T_max``, ``milestones``) by
    ``N / max_iters`` so warm-up and cosine keep their shape on a shorter or longer run;
    options in ``extra`` come last and win.
    """
    options: List[str] = []
    if iters is not None:
        from mmengine.config import Config
        cfg = Config.fromfile(config)
        loop = cfg.get('train_cfg', {}).get('type', '')
        if 'IterBased' not in loop:
            raise StageError(f'--pretrain-iters needs an IterBasedTrainLoop, but {config} uses '
                             f'{loop or "no train_cfg.type"}: pass --pretrain-cfg-options '
                             'train_cfg.max_epochs=E instead.')
        options.append(f'train_cfg.max_iters={iters}')
        options += rescaled_schedule(cfg.get('param_scheduler'), cfg.train_cfg.max_iters, iters)
    options += list(extra)
    return ['--cfg-options', *options] if options else []


def rescaled_schedule(schedulers, old_iters: int, new_iters: int) -> List[str]:
    """``--cfg-options`` that stretch iteration-based schedulers from old to new ``max_iters``."""
    if not schedulers:
        return []
    single = isinstance(schedulers, dict)
    entries = [schedulers] if single else list(schedulers)

    def scale(value: int) -> int:
        return max(1, round(value * new_iters / old_iters)) if value > 0 else 0

    options = []
    for i, sched in enumerate(entries):
        if sched.get('by_epoch', True):
            continue
        prefix = 'param_scheduler.' if single else f'param_scheduler.{i}.'
        begin, end = sched.get('begin', 0), sched.get('end')
        if begin:
            options.append(f'{prefix}begin={scale(begin)}')
        if end is not None and end <= old_iters:
            options.append(f'{prefix}end={scale(end)}')
        if 'T_max' in sched:
            t_max = sched['T_max']
            stretched = end is not None and end <= old_iters and t_max == end - begin
            new_t = scale(end) - scale(begin) if stretched else scale(t_max)
            options.append(f'{prefix}T_max={max(1, new_t)}')
        if 'milestones' in sched:
            options.append(f'{prefix}milestones={[scale(m) for m in sched["milestones"]]}'.replace(
                ' ', ''))
    return options


def read_coco_metrics(test_dir: str) -> Dict[str, Dict[str, float]]:
    """COCO metrics from the json the LoggerHook writes after testing, in percent.

    Returns an empty dict when the test ran but logged no COCO metric: mmdet's CocoMetric
    skips the evaluation when the model returns no detection at all.
    """
    files = sorted(glob.glob(osp.join(test_dir, '*', '*.json')), key=osp.getmtime)
    if not files:
        raise StageError(f'the test stage wrote no json log under {test_dir}.')
    for path in reversed(files):
        with open(path) as f:
            lines = [json.loads(ln) for ln in f if ln.strip()]
        scalars = {k: v for record in lines for k, v in record.items()}
        if any(k.startswith('coco/') for k in scalars):
            return {
                task: {
                    name: round(100.0 * float(scalars[f'coco/{task}_{key}']), 1)
                    for key, name in COCO_KEYS if f'coco/{task}_{key}' in scalars
                }
                for task in ('bbox', 'segm') if f'coco/{task}_mAP' in scalars
            }
    return {}


def zero_metrics(config: str, options: Sequence[str]) -> Dict[str, Dict[str, float]]:
    """AP 0 for every metric of the config's test evaluator (used when nothing was detected)."""
    from mmengine.config import Config
    evaluator = Config.fromfile(config).get('test_evaluator', {})
    tasks = evaluator.get('metric', ['bbox']) if isinstance(evaluator, dict) else ['bbox']
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    return {t: {name: 0.0 for _, name in COCO_KEYS} for t in tasks if t in ('bbox', 'segm')}


def fmt_ap(value: Optional[float]) -> str:
    """COCO reports -1 (x100 = -100) for an area range without ground truth: show n/a."""
    if value is None or value != value or value < 0:
        return 'n/a'
    return f'{value:.1f}'


def markdown_row(pretrain: str, finetune: str, metrics: Dict[str, Dict[str, float]]) -> str:
    """One Markdown table (header + row) with box and mask AP, AP50, AP75, APs/m/l."""
    names = [n for _, n in COCO_KEYS]
    header = ['pre-training', 'fine-tune'] + [f'box {n}' for n in names] + \
        [f'mask {n}' for n in names]
    row = [pretrain, finetune]
    for task in ('bbox', 'segm'):
        row += [fmt_ap(metrics.get(task, {}).get(n)) for n in names]
    return '\n'.join([
        '| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header), '| ' + ' | '.join(row) + ' |'
    ])


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    work_dir = osp.abspath(args.work_dir)
    logs, timings = osp.join(work_dir, 'logs'), {}
    tools = osp.join(ROOT, "tools")
    checkpoint = converted = None
    try:
        if args.no_pretrain:
            pass
        elif args.skip_pretrain:
            checkpoint = osp.abspath(args.skip_pretrain)
        else:
            pre_dir = osp.join(work_dir, 'pretrain')
            run_stage(
                'pretrain',
                launch(osp.join(tools, 'train.py'),
                       [args.pretrain_config, '--work-dir', pre_dir] + pretrain_options(
                           args.pretrain_config, args.pretrain_iters, args.pretrain_cfg_options),
                       args.launcher, args.gpus), logs, timings)
            checkpoint = last_checkpoint(pre_dir)
            if args.pretrain_only:
                record = dict(pretrain_config=args.pretrain_config,
                              pretrain_checkpoint=checkpoint, seconds=timings)
                with open(osp.join(work_dir, 'pretrain.json'), 'w') as f:
                    json.dump(record, f, indent=2)
                print(f'wrote {osp.join(work_dir, "pretrain.json")}: {checkpoint}')
                return 0
        ft_options = ['--cfg-options', *args.finetune_cfg_options] \
            if args.finetune_cfg_options else []
        if checkpoint is not None:
            converted = convert_and_check(args, checkpoint, work_dir, logs, timings, ft_options)
        ft_dir = osp.join(work_dir, 'finetune')
        load = [f'load_from={converted}'] if converted else []
        train_options = ['--cfg-options', *load, *args.finetune_cfg_options] \
            if load or args.finetune_cfg_options else []
        run_stage(
            'finetune',
            launch(mmdet_tool('train.py'),
                   [args.finetune_config, '--work-dir', ft_dir] + train_options, args.launcher,
                   args.gpus), logs, timings)
        test_dir = osp.join(work_dir, 'test')
        finetuned = export_weights(last_checkpoint(ft_dir), osp.join(work_dir, 'finetuned.pth'))
        run_stage(
            'test',
            launch(mmdet_tool('test.py'),
                   [args.finetune_config, finetuned, '--work-dir', test_dir] + ft_options,
                   args.launcher, args.gpus), logs, timings)
        metrics, note = read_coco_metrics(test_dir), None
        if not metrics:
            note = 'the fine-tuned model detected nothing: COCO AP reported as 0'
            print(f'pretrain_and_finetune: warning: {note}', file=sys.stderr)
            metrics = zero_metrics(args.finetune_config, args.finetune_cfg_options)
    except StageError as exc:
        print(f'pretrain_and_finetune: error: {exc}', file=sys.stderr)
        return 1
    pretrain_name = 'random init' if args.no_pretrain else osp.basename(
        args.skip_pretrain or args.pretrain_config)
    row = markdown_row(pretrain_name, osp.basename(args.finetune_config), metrics)
    record = dict(metrics,
                  pretrain=pretrain_name,
                  pretrain_config=None if args.no_pretrain else args.pretrain_config,
                  pretrain_checkpoint=checkpoint,
                  finetune_config=args.finetune_config,
                  converted=converted,
                  use_ema=args.use_ema,
                  finetuned=finetuned,
                  seconds=timings,
                  note=note)
    with open(osp.join(work_dir, 'metrics.json'), 'w') as f:
        json.dump(record, f, indent=2)
    with open(osp.join(work_dir, 'result.md'), 'w') as f:
        f.write(row + '\n')
    print(f'\n{row}\n\nwrote {osp.join(work_dir, "metrics.json")} and result.md; '
          f'stage seconds: {timings}')
    return 0


def convert_and_check(args: argparse.Namespace, checkpoint: str, work_dir: str, logs: str,
                      timings: Dict[str, float], ft_options: List[str]) -> str:
    """Convert the pre-training checkpoint and check it against the fine-tune config."""
    py, tools = sys.executable, osp.join(ROOT, 'tools')
    converted = osp.join(work_dir, 'converted.pth')
    convert_cmd = [
        py,
        osp.join(tools, 'convert_to_mmdet.py'), checkpoint, converted, '--config',
        args.finetune_config, '--parts', args.parts, '--markdown'
    ]
    if args.use_ema:
        convert_cmd.append('--use-ema')
    table = run_stage('convert', convert_cmd, logs, timings)
    with open(osp.join(work_dir, 'convert.md'), 'w') as f:
        f.write(table)
    check = run_stage('check', [
        py,
        osp.join(tools, 'check_pretrained.py'), args.finetune_config, converted, '--markdown',
        *ft_options
    ], logs, timings)
    with open(osp.join(work_dir, 'check.md'), 'w') as f:
        f.write(check)
    return converted


if __name__ == '__main__':
    sys.exit(main())
