"""Train any mcl_plugin (or mmdet / mmpretrain) config with the mmengine Runner.

Examples:
    python tools/train.py configs/mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume --amp \
        --cfg-options train_cfg.max_iters=20
    torchrun --nproc_per_node 8 tools/train.py CONFIG --launcher pytorch
"""
import argparse
import logging
import os

import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS
from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a model (mcl_plugin)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from this checkpoint, or (no value) from the latest one in the work dir')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument('--no-validate', action='store_true', help='skip validation')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size (auto_scale_lr in config)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. train_cfg.max_iters=20)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument(
        '--trust-checkpoint', action='store_true',
        help='unpickle checkpoints (--resume, load_from) that hold Python objects outside the '
        'allow-list of runner checkpoints; this runs code stored in the file, so only for files '
        'you trust (default: such files are refused)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def merge_args(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply the command line to the config."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.no_validate:
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a GPU: mmengine\'s AmpOptimWrapper supports CUDA, NPU, '
                             'MLU and MUSA devices only. Run without --amp on CPU.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = _auto_resume(cfg.work_dir), None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def _auto_resume(work_dir: str) -> bool:
    """``--resume`` without a path: whether the work dir has a checkpoint to resume, said aloud.

    mmengine would log "Auto resumed from the latest checkpoint None." and start from zero.
    """
    from mmengine.runner.checkpoint import find_latest_checkpoint
    last = osp.join(work_dir, 'last_checkpoint')
    found = find_latest_checkpoint(work_dir) if osp.isfile(last) else None
    if found is None:
        print_log(f'--resume: no checkpoint found in {osp.abspath(work_dir)!r} (no '
                  'last_checkpoint file there), so there is nothing to resume: training starts '
                  'from iteration 0. Give the checkpoint path (--resume PATH) or the --work-dir '
                  'of the interrupted run to continue it.', logger='current', level=logging.WARNING)
        return False
    if not osp.isfile(found):
        raise SystemExit(f'--resume: {last} names {found!r}, which does not exist (moved or '
                         'deleted?). Pass the checkpoint to resume explicitly: --resume PATH.')
    return True


def main() -> None:
    args = parse_args()
    import mcl_plugin  # noqa: F401  registers the plugin even for configs without custom_imports
    from mcl_plugin.utils.checkpoint import checkpoint_loading
    cfg = merge_args(Config.fromfile(args.config), args)
    # torchrun on a CPU-only machine: gloo, no cuda.set_device, DDP without device_ids
    from mcl_plugin.engine import setup_cpu_distributed
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    with checkpoint_loading(args.trust_checkpoint, 'the checkpoint given by --resume / load_from'):
        runner.train()


if __name__ == '__main__':
    main()
