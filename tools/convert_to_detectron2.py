#!/usr/bin/env python
# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Export a pre-training checkpoint as detectron2 weights (``.pkl``) for ``MODEL.WEIGHTS``.

Example::

    python tools/convert_to_detectron2.py work_dirs/mcl/epoch_100.pth work_dirs/mcl/d2.pkl \\
        --target fpn-head
    python tools/train_net.py --config-file mask_rcnn_R_50_FPN_1x_mcl.yaml  # detectron2

The per-module coverage table (detectron2 names) and the matching detectron2 config settings
are printed to stdout; see ``docs/detectron2.md``. Exit status: 0 written; 1 an expected
detectron2 key of the target is missing or has another shape (nothing written; the message
names the keys); 2 the source cannot be read or the request is invalid.
"""
import argparse
import sys

from mcl_plugin.converters.cli import (add_choice_arg, add_common_args, common_kwargs,
                                       converter_parser, run_conversion)


def parse_args(argv=None) -> argparse.Namespace:
    parser = converter_parser(
        'Export a pre-training checkpoint (plugin MCL/SoCo/DetCo/PLRC, mmpretrain / mmselfsup, '
        'backbone-only, official SoCo/MCL/PLRC/DetCo) as a detectron2 .pkl.',
        dst_help='output detectron2 weights (.pkl) for MODEL.WEIGHTS')
    add_choice_arg(
        parser, '--target', ('backbone', 'fpn-head', 'res5-head'),
        'backbone: the ResNet only (default); fpn-head: ResNet + FPN + 4-conv box head '
        "(R50-FPN); res5-head: C4 model with roi_heads.res5 from the checkpoint's "
        'pre-trained res5 head (R50-C4 variants)')
    add_choice_arg(
        parser, '--arch', ('auto', 'fpn', 'c4'),
        'detectron2 model naming for --target backbone: fpn (backbone.bottom_up.*) or '
        'c4 (backbone.* + roi_heads.res5); auto: c4 for 3-stage / res5-head '
        'checkpoints, fpn otherwise')
    add_common_args(parser,
                    verb='export',
                    allow_missing_help='detectron2 keys matching REGEX may stay at detectron2\'s '
                    "init (repeatable), e.g. 'backbone\\.fpn_(lateral|output)2\\.' for an "
                    'official SoCo FPN that starts at C3',
                    src_format_help='layout of the source: auto (default) detects the official '
                    'SoCo, MCL, PLRC and DetCo checkpoints and the plugin / mmpretrain layout')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mcl_plugin.converters.detectron2 import convert_to_detectron2

    def convert():
        report, snippet = convert_to_detectron2(args.src,
                                                args.dst,
                                                target=args.target,
                                                arch=args.arch,
                                                **common_kwargs(args))
        return report, f'\n\ndetectron2 config settings for these weights:\n{snippet}'

    return run_conversion('convert_to_detectron2', convert, args.dst, args.markdown)


if __name__ == '__main__':
    sys.exit(main())
