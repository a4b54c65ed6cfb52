# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Command-line pieces shared by ``tools/convert_to_mmdet.py`` and ``convert_to_detectron2.py``.

Both front-ends read the same kinds of sources and report the same way. :func:`converter_parser`
makes the parser with the ``src`` / ``dst`` arguments, :func:`add_common_args` adds the options
they share (:func:`common_kwargs` passes them on to the converter functions), :func:`add_choice_arg`
adds an option with a fixed set of values (the first is the default), and :func:`run_conversion`
runs the conversion, prints the coverage report and turns the outcome into the exit status (0
written; 1 the report has errors, nothing written; 2 a
:class:`~mcl_plugin.converters.io.ConversionError`: unreadable source, invalid request).
"""
import argparse
import sys
from typing import Any, Callable, Dict, Sequence, Tuple

from .coverage import CoverageReport
from .io import ConversionError

__all__ = [
    'SRC_FORMATS', 'add_choice_arg', 'add_common_args', 'common_kwargs', 'converter_parser',
    'run_conversion'
]

#: Values of ``--src-format`` (``auto`` first: the default).
SRC_FORMATS = ('auto', 'plugin', 'soco', 'mcl', 'plrc', 'detco')


def converter_parser(description: str, dst_help: str) -> argparse.ArgumentParser:
    """A parser with ``description`` and the positional ``src`` (the source checkpoint) and
    ``dst`` (the output, described by ``dst_help``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='source checkpoint (.pth)')
    parser.add_argument('dst', help=dst_help)
    return parser


def add_choice_arg(parser: argparse.ArgumentParser, flag: str, choices: Sequence[str],
                   help: str) -> None:
    """Add ``flag`` taking one of ``choices``; the first choice is the default."""
    parser.add_argument(flag, default=choices[0], choices=tuple(choices), help=help)


def add_common_args(parser: argparse.ArgumentParser, *, verb: str, allow_missing_help: str,
                    src_format_help: str) -> None:
    """Add ``--use-ema``, ``--allow-missing``, ``--src-format``, ``--markdown`` and
    ``--trust-checkpoint``.

    Args:
        parser: The front-end's parser.
        verb: What the tool does to the weights (``'convert'``, ``'export'``), for ``--use-ema``.
        allow_missing_help: Help of ``--allow-missing`` (which keys it concerns differs).
        src_format_help: Help of ``--src-format``.
    """
    parser.add_argument('--use-ema',
                        action='store_true',
                        help=f'{verb} the EMA / momentum target instead of the online weights')
    parser.add_argument('--allow-missing',
                        action='append',
                        default=[],
                        metavar='REGEX',
                        help=allow_missing_help)
    add_choice_arg(parser, '--src-format', SRC_FORMATS, src_format_help)
    parser.add_argument('--markdown', action='store_true', help='print the table as Markdown')
    parser.add_argument('--trust-checkpoint',
                        action='store_true',
                        help='unpickle a source that holds Python objects outside the checkpoint '
                        'allow-list (this runs code stored in the file: only for files you trust)')


def common_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """The options of :func:`add_common_args` that the converter functions take, as their keyword
    arguments (``use_ema``, ``allow_missing``, ``trust``, ``src_format``)."""
    return dict(use_ema=args.use_ema,
                allow_missing=args.allow_missing,
                trust=args.trust_checkpoint,
                src_format=args.src_format)


def run_conversion(prog: str, convert: Callable[[], Tuple[CoverageReport, str]], dst: str,
                   markdown: bool) -> int:
    """Run ``convert`` and report its outcome the way the converter front-ends do.

    Args:
        prog: Tool name that prefixes the messages on stderr (``convert_to_mmdet``).
        convert: Does the conversion; returns the coverage report and a note printed after
            ``saved DST`` (may be empty).
        dst: The output path named in the messages.
        markdown: Print the report as Markdown instead of plain text.

    Returns:
        int: The exit status: 0 written, 1 the report has errors (printed on stderr, nothing
        written), 2 a :class:`ConversionError` (its message printed on stderr).
    """
    try:
        report, note = convert()
    except ConversionError as exc:
        print(f'{prog}: error: {exc}', file=sys.stderr)
        return 2
    print(report.to_markdown() if markdown else report.format())
    if not report.ok:
        for error in report.errors:
            print(f'{prog}: error: {error}', file=sys.stderr)
        print(f'{prog}: nothing was written to {dst}', file=sys.stderr)
        return 1
    print(f'saved {dst}{note}')
    return 0
