"""The builder's records of its inputs: where an image comes from (:class:`Source`), a photograph
(:class:`Photo`) and an object cut-out with its mask (:class:`Cutout`); JPEG writing."""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Tuple

import numpy as np
from PIL import Image

from .catalog import JPEG_QUALITY, WORK_LONG_SIDE


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


def _save_jpeg(img: Image.Image, path: Path) -> None:
    """Writes an RGB image as JPEG, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, 'JPEG', quality=JPEG_QUALITY, optimize=True)
