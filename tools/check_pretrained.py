#!/usr/bin/env python
# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Report which pre-trained weights a fine-tune config really loads.

Example::

    python tools/check_pretrained.py \\
        configs/benchmarks/mmdet/mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py \
        work_dirs/mcl/mmdet.pth

CHECKPOINT is what you pass as ``load_from`` (default: the config's ``load_from``); ``init_cfg``
entries of type ``Pretrained`` in the config are checked as well (remote ones are not downloaded).
Exit status: 0 every backbone key receives pre-trained weights; 1 some do not (or a file cannot
be loaded the way mmengine loads it).
"""
import argparse
import sys

from mmengine.config import DictAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Build the detector of CONFIG, load CHECKPOINT as load_from (and the '
        "config's Pretrained init_cfgs) the way mmengine does, and report key coverage.")
    parser.add_argument('config', help='fine-tune config')
    parser.add_argument('checkpoint',
                        nargs='?',
                        default=None,
                        help="checkpoint given as load_from (default: the config's load_from)")
    parser.add_argument('--markdown', action='store_true', help='print tables as Markdown')
    parser.add_argument('--trust-checkpoint',
                        action='store_true',
                        help='unpickle checkpoints that hold Python objects outside the '
                        'allow-list (runs code stored in the file: only for files you trust)')
    parser.add_argument('--cfg-options',
                        nargs='+',
                        action=DictAction,
                        help='override settings of the config (key=value)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mcl_plugin.converters.check import check_pretrained
    result = check_pretrained(args.config, args.checkpoint, args.cfg_options,
                              trust=args.trust_checkpoint)
    print(result.format(markdown=args.markdown))
    if not result.ok:
        for error in result.errors:
            print(f'check_pretrained: error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
