#!/usr/bin/env python
# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Convert a pre-training checkpoint into a checkpoint an mmdet detector loads via ``load_from``.

Example::

    python tools/convert_to_mmdet.py work_dirs/mcl/epoch_100.pth work_dirs/mcl/mmdet.pth \\
        --config configs/benchmarks/mmdet/mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py
    mim train mmdet CONFIG --launcher pytorch -G 8 \
        --cfg-options load_from=work_dirs/mcl/mmdet.pth

The per-module coverage table is printed to stdout. Exit status: 0 written; 1 a backbone key of
the target is missing or has a different shape (nothing written; the message names the keys and
the likely fix); 2 the source cannot be read or the request is invalid.
"""
import argparse
import sys

from mmengine.config import DictAction

from mcl_plugin.converters.cli import (add_common_args, common_kwargs, converter_parser,
                                       run_conversion)


def parse_args(argv=None) -> argparse.Namespace:
    parser = converter_parser(
        'Map a pre-training checkpoint (plugin MCL/SoCo/DetCo/PLRC, mmpretrain / mmselfsup '
        'BYOL/MoCo, backbone-only) onto the detector of an mmdet fine-tune config.',
        dst_help='output checkpoint (.pth) for load_from')
    parser.add_argument('--config', required=True, help='fine-tune config that builds the target')
    parser.add_argument('--parts',
                        default='backbone,neck,head',
                        help='comma-separated subset of backbone,neck,head (default: all; '
                        'parts the target does not have are skipped automatically)')
    add_common_args(parser,
                    verb='convert',
                    allow_missing_help='backbone keys matching REGEX may stay at init '
                    "(repeatable), e.g. 'backbone\\.norm[0-2]\\.' for a Swin trained with "
                    'out_indices=(3,)',
                    src_format_help='layout of the source: auto (default) detects the official '
                    'SoCo, MCL, PLRC and DetCo checkpoints (DetCo: bare ResNet, detectron2 .pkl '
                    'or MoCo-style encoder_q) and the plugin / mmpretrain layout')
    parser.add_argument('--cfg-options',
                        nargs='+',
                        action=DictAction,
                        help='override settings of the fine-tune config (key=value)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mcl_plugin.converters.convert import convert_checkpoint
    parts = [p.strip() for p in args.parts.split(',') if p.strip()]

    def convert():
        return convert_checkpoint(args.src,
                                  args.dst,
                                  args.config,
                                  parts=parts,
                                  cfg_options=args.cfg_options,
                                  **common_kwargs(args)), ''

    return run_conversion('convert_to_mmdet', convert, args.dst, args.markdown)


if __name__ == '__main__':
    sys.exit(main())
