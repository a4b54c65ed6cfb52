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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Map a pre-training checkpoint (plugin MCL/SoCo/DetCo/PLRC, mmpretrain / '
        'mmselfsup BYOL/MoCo, backbone-only) onto the detector of an mmdet fine-tune config.')
    parser.add_argument('src', help='source checkpoint (.pth)')
    parser.add_argument('dst', help='output checkpoint (.pth) for load_from')
    parser.add_argument('--config', required=True, help='fine-tune config that builds the target')
    parser.add_argument('--use-ema',
                        action='store_true',
                        help='convert the EMA / momentum target instead of the online weights')
    parser.add_argument('--parts',
                        default='backbone,neck,head',
                        help='comma-separated subset of backbone,neck,head (default: all; '
                        'parts the target does not have are skipped automatically)')
    parser.add_argument('--allow-missing',
                        action='append',
                        default=[],
                        metavar='REGEX',
                        help='backbone keys matching REGEX may stay at init (repeatable), e.g. '
                        "'backbone\\.norm[0-2]\\.' for a Swin trained with out_indices=(3,)")
    parser.add_argument('--src-format',
                        default='auto',
                        choices=('auto', 'plugin', 'soco', 'mcl', 'plrc', 'detco'),
                        help='layout of the source: auto (default) detects the official SoCo, '
                        'MCL, PLRC and DetCo checkpoints (DetCo: bare ResNet, detectron2 .pkl '
                        'or MoCo-style encoder_q) and the plugin / mmpretrain layout')
    parser.add_argument('--markdown', action='store_true', help='print the table as Markdown')
    parser.add_argument('--trust-checkpoint',
                        action='store_true',
                        help='unpickle a source that holds Python objects outside the checkpoint '
                        'allow-list (this runs code stored in the file: only for files you trust)')
    parser.add_argument('--cfg-options',
                        nargs='+',
                        action=DictAction,
                        help='override settings of the fine-tune config (key=value)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mcl_plugin.converters.convert import ConversionError, convert_checkpoint
    parts = [p.strip() for p in args.parts.split(',') if p.strip()]
    try:
        report = convert_checkpoint(args.src,
                                    args.dst,
                                    args.config,
                                    use_ema=args.use_ema,
                                    parts=parts,
                                    cfg_options=args.cfg_options,
                                    allow_missing=args.allow_missing,
                                    trust=args.trust_checkpoint,
                                    src_format=args.src_format)
    except ConversionError as exc:
        print(f'convert_to_mmdet: error: {exc}', file=sys.stderr)
        return 2
    print(report.to_markdown() if args.markdown else report.format())
    if not report.ok:
        for error in report.errors:
            print(f'convert_to_mmdet: error: {error}', file=sys.stderr)
        print(f'convert_to_mmdet: nothing was written to {args.dst}', file=sys.stderr)
        return 1
    print(f'saved {args.dst}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
