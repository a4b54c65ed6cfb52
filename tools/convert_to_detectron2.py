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


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export a pre-training checkpoint (plugin MCL/SoCo/DetCo/PLRC, mmpretrain / '
        'mmselfsup, backbone-only, official SoCo/MCL/PLRC/DetCo) as a detectron2 .pkl.')
    parser.add_argument('src', help='source checkpoint (.pth)')
    parser.add_argument('dst', help='output detectron2 weights (.pkl) for MODEL.WEIGHTS')
    parser.add_argument('--target',
                        default='backbone',
                        choices=('backbone', 'fpn-head', 'res5-head'),
                        help='backbone: the ResNet only (default); fpn-head: ResNet + FPN + '
                        '4-conv box head (R50-FPN); res5-head: C4 model with roi_heads.res5 from '
                        "the checkpoint's pre-trained res5 head (R50-C4 variants)")
    parser.add_argument('--arch',
                        default='auto',
                        choices=('auto', 'fpn', 'c4'),
                        help='detectron2 model naming for --target backbone: fpn '
                        '(backbone.bottom_up.*) or c4 (backbone.* + roi_heads.res5); auto: c4 '
                        'for 3-stage / res5-head checkpoints, fpn otherwise')
    parser.add_argument('--use-ema',
                        action='store_true',
                        help='export the EMA / momentum target instead of the online weights')
    parser.add_argument('--allow-missing',
                        action='append',
                        default=[],
                        metavar='REGEX',
                        help='detectron2 keys matching REGEX may stay at detectron2\'s init '
                        "(repeatable), e.g. 'backbone\\.fpn_(lateral|output)2\\.' for an "
                        'official SoCo FPN that starts at C3')
    parser.add_argument('--src-format',
                        default='auto',
                        choices=('auto', 'plugin', 'soco', 'mcl', 'plrc', 'detco'),
                        help='layout of the source: auto (default) detects the official SoCo, '
                        'MCL, PLRC and DetCo checkpoints and the plugin / mmpretrain layout')
    parser.add_argument('--markdown', action='store_true', help='print the table as Markdown')
    parser.add_argument('--trust-checkpoint',
                        action='store_true',
                        help='unpickle a source that holds Python objects outside the checkpoint '
                        'allow-list (this runs code stored in the file: only for files you trust)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mcl_plugin.converters.detectron2 import convert_to_detectron2
    from mcl_plugin.converters.io import ConversionError
    try:
        report, snippet = convert_to_detectron2(args.src,
                                                args.dst,
                                                target=args.target,
                                                arch=args.arch,
                                                use_ema=args.use_ema,
                                                allow_missing=args.allow_missing,
                                                trust=args.trust_checkpoint,
                                                src_format=args.src_format)
    except ConversionError as exc:
        print(f'convert_to_detectron2: error: {exc}', file=sys.stderr)
        return 2
    print(report.to_markdown() if args.markdown else report.format())
    if not report.ok:
        for error in report.errors:
            print(f'convert_to_detectron2: error: {error}', file=sys.stderr)
        print(f'convert_to_detectron2: nothing was written to {args.dst}', file=sys.stderr)
        return 1
    print(f'saved {args.dst}\n\ndetectron2 config settings for these weights:\n{snippet}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
