"""Evaluate a checkpoint with a config's test loop (e.g. an mmdet fine-tune config).

Example:
    python tools/test.py configs/benchmarks/mmdet/CONFIG.py work_dirs/x/epoch_12.pth
"""
import argparse
import os

import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test a checkpoint (mcl_plugin)')
    parser.add_argument('config', help='config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='dump the predictions to this pickle file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
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


def main() -> None:
    args = parse_args()
    import mcl_plugin  # noqa: F401
    from mcl_plugin.utils.checkpoint import checkpoint_loading
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        './work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.out:
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(cfg.test_evaluator, dict) \
            else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    # torchrun on a CPU-only machine: gloo, no cuda.set_device, DDP without device_ids
    from mcl_plugin.engine import setup_cpu_distributed
    setup_cpu_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    with checkpoint_loading(args.trust_checkpoint, f'{args.checkpoint!r}'):
        metrics = runner.test()
    print(metrics)


if __name__ == '__main__':
    main()
