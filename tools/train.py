"""Train any mcl_plugin (or mmdet / mmpretrain) config with the mmengine Runner.

Examples:
    python tools/train.py configs/mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py
    python tools/train.py CONFIG --work-dir work_dirs/x --resume --amp \
        --cfg-options train_cfg.max_iters=20
    torchrun --nproc_per_node 8 tools/train.py CONFIG --launcher pytorch
"""
import argparse
import os

# torch >= 2.6 loads checkpoints with weights_only=True, but mmengine 0.10 runner checkpoints
# (message hub, RNG states, optimizer) are full pickles: resuming / load_from / testing a
# checkpoint written by a Runner would fail. These entry points load checkpoints the user
# produced; set TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=0 to refuse them.
os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
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
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main() -> None:
    args = parse_args()
    import mcl_plugin  # noqa: F401  registers the plugin even for configs without custom_imports
    cfg = merge_args(Config.fromfile(args.config), args)
    # torchrun on a CPU-only machine: gloo, no cuda.set_device, DDP without device_ids
    from mcl_plugin.engine import setup_cpu_distributed
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.train()


if __name__ == '__main__':
    main()
