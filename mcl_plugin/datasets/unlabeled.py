"""A dataset of unlabeled images for self-supervised pre-training."""
import json
import logging
import os
import os.path as osp
import sys
import tempfile
from contextlib import contextmanager
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union)

from mmengine import fileio
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mcl_plugin.registry import DATASETS

IMG_EXTENSIONS: Tuple[str, ...] = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')
_PREPARE_HINT = ('Build the pre-training images with `python tools/prepare_data.py` (or '
                 '`--small` for a tiny offline set) and point `data_root`/`data_prefix` at them.')
_MAX_LISTED_BAD = 10
_SKIP_HINT = ('set check_images=True on the dataset (e.g. `--cfg-options '
              'train_dataloader.dataset.check_images=True`) to skip unreadable images at '
              'start-up (they are counted and logged)')


@contextmanager
def _stderr_of_c_libraries() -> Iterator[List[str]]:
    """Collect what C code (libjpeg's warnings) writes to file descriptor 2 inside the block;
    the text is in ``messages[0]`` afterwards."""
    messages: List[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield messages
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            messages.append(tmp.read().decode(errors='replace'))


def _relative_note(path: str) -> str:
    """For a relative path: which folder it is relative to, and how not to depend on it."""
    if osp.isabs(path):
        return ''
    return (f' (a relative path, looked up from the current folder {os.getcwd()!r}: run from the '
            'repository root, or set data_root to an absolute path, e.g. --cfg-options '
            'train_dataloader.dataset.data_root=/abs/path/)')


def image_decode_error(path: str,
                       backend: str = 'cv2',
                       flag: str = 'color',
                       backend_args: Optional[dict] = None) -> Optional[str]:
    """Why ``path`` cannot be used as a training image, or None if it decodes cleanly.

    Decodes like mmcv's ``LoadImageFromFile`` (``backend``, ``flag``) and also refuses JPEGs that
    libjpeg decodes only with warnings ("Corrupt JPEG data", "Premature end of JPEG file"): the
    decoder returns a picture whose damaged part is grey or garbage. Shared by the dataset's
    ``check_images`` and by the proposal generator, so both agree on which files are usable.

    Args:
        path (str): Image file.
        backend, flag, backend_args: As in ``LoadImageFromFile``.

    Returns:
        str | None: A short reason (``'is empty (0 bytes)'``, ...), or None.
    """
    import mmcv

    try:
        content = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        return 'does not exist (removed after the dataset was listed?)'
    except OSError as err:
        return f'cannot be read ({type(err).__name__}: {err})'
    if not content:
        return 'is empty (0 bytes)'
    try:
        with _stderr_of_c_libraries() as messages:
            img = mmcv.imfrombytes(content, flag=flag, backend=backend)
    except Exception as err:  # noqa: BLE001 - any decoder failure means unreadable
        return f'cannot be decoded by {backend} ({type(err).__name__}: {err})'
    if img is None or img.size == 0:
        return f'cannot be decoded by {backend} (corrupt, truncated or not an image)'
    damaged = [m.strip() for m in messages[0].splitlines()
               if 'Corrupt JPEG data' in m or 'Premature end of JPEG' in m]
    if damaged:  # libjpeg decoded it anyway: parts of the picture are garbage
        return (f'decodes only with libjpeg warnings ({len(damaged)}: {damaged[0]}), i.e. parts '
                'of the picture are garbage')
    return None


class UnreadableImageError(OSError):
    """An image file of the dataset cannot be read or decoded (the message names the file and
    the fix)."""


@DATASETS.register_module()
class UnlabeledImageDataset(BaseDataset):
    """Images without labels, read from a folder tree, an image list or a COCO json.

    The dataset only lists files; decoding is left to the pipeline (``LoadImageFromFile``).
    Every item is ``dict(img_path=..., sample_idx=i)`` in a sorted, deterministic order.

    Bad files: with the pipeline's default ``LoadImageFromFile`` (OpenCV, ``color``),
    grayscale, RGBA / LA (alpha dropped, not composited), palette, 1-bit and 16-bit (high byte
    kept) images all decode to 3-channel uint8, and images of any size (1x1 included) go
    through the random-resized-crop based views. An empty, truncated, corrupt or non-image
    file raises :class:`UnreadableImageError` naming the file and the fix when it is loaded;
    with ``check_images=True`` such files are found at init instead, skipped, counted
    (:attr:`num_unreadable`, :attr:`unreadable_files`) and logged.

    Where the file names come from:

    - no ``ann_file``: every file under ``data_prefix['img_path']`` (recursively) whose
      extension is in ``extensions``. This covers ImageNet-style class folders and flat COCO
      image folders alike. Hidden files and folders (``.name``) are skipped.
    - ``ann_file`` ending in ``.json``: a COCO annotation file; its ``images[].file_name``
      entries, relative to ``data_prefix['img_path']``.
    - any other ``ann_file``: an image list, one path relative to ``data_prefix['img_path']``
      per line. A trailing integer label (ImageNet ``meta/train.txt`` style) is ignored, as
      are blank lines and lines starting with ``#``.

    Args:
        data_root (str): Root joined to relative ``ann_file`` and ``data_prefix``.
            Defaults to ''.
        data_prefix (str | dict): The image folder, as a string or ``dict(img_path=...)``.
            Defaults to ''.
        ann_file (str): Optional image list (``.txt``) or COCO json. Defaults to '' (scan
            the folder).
        pipeline (Sequence[dict | Callable]): Transforms applied to each item.
            Defaults to ().
        extensions (Sequence[str]): Accepted file extensions (case-insensitive) for the
            folder scan. Defaults to :data:`IMG_EXTENSIONS`.
        check_images (bool): Decode every image at init with the decoder the pipeline's
            ``LoadImageFromFile`` uses (backend and colour flag; OpenCV by default: PIL accepts
            files OpenCV refuses, e.g. a PNG missing its last chunk); unreadable ones are
            skipped, counted and logged (up to 10 names). Raises if none is readable.
            Defaults to False.
        metainfo (dict, optional): Meta information of the dataset. Defaults to None.
        **kwargs: Other arguments of :class:`mmengine.dataset.BaseDataset`
            (``test_mode``, ``lazy_init``, ``indices``, ``serialize_data`` ...).

    Raises:
        ValueError: The folder or the list holds no image, or the json has no ``images``.
        FileNotFoundError: The folder, the list, or a listed image does not exist.
        UnreadableImageError: (when an item is loaded) its file cannot be decoded.

    Example:
        >>> from mmengine.registry import init_default_scope
        >>> from mcl_plugin.registry import DATASETS
        >>> init_default_scope('mcl_plugin')
        >>> ds = DATASETS.build(dict(type='UnlabeledImageDataset',
        ...                          data_root='data/pretrain', data_prefix='train',
        ...                          ann_file='meta/train.txt'))
    """

    METAINFO: dict = dict(classes=None)

    def __init__(self,
                 data_root: str = '',
                 data_prefix: Union[str, Dict[str, str]] = '',
                 ann_file: str = '',
                 pipeline: Sequence[Union[dict, Callable]] = (),
                 extensions: Sequence[str] = IMG_EXTENSIONS,
                 check_images: bool = False,
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        if not isinstance(data_prefix, dict) or 'img_path' not in data_prefix:
            raise TypeError('data_prefix must be a str or dict(img_path=...), '
                            f'got {data_prefix!r}')
        self.extensions = tuple(ext.lower() for ext in extensions)
        self.check_images = check_images
        self.num_unreadable = 0
        self.unreadable_files: List[str] = []
        super().__init__(ann_file=ann_file,
                         metainfo=metainfo,
                         data_root=data_root,
                         data_prefix=data_prefix,
                         pipeline=list(pipeline),
                         **kwargs)

    @property
    def img_prefix(self) -> str:
        """str: The image folder, already joined with ``data_root``."""
        return self.data_prefix['img_path']

    def load_data_list(self) -> List[dict]:
        """Lists the images as ``dict(img_path, sample_idx)``.

        Returns:
            list[dict]: One dict per image, sorted by path.
        """
        if self.ann_file:
            paths = self._paths_from_ann_file(self.ann_file)
        else:
            paths = self._scan_folder(self.img_prefix)
        if self.check_images:
            paths = self._drop_unreadable(paths)
        return [dict(img_path=path, sample_idx=i) for i, path in enumerate(paths)]

    # ------------------------------------------------------------------ folder scan
    def _scan_folder(self, folder: str) -> List[str]:
        """Returns every image file under ``folder``, sorted by relative path."""
        if not folder:
            raise ValueError('UnlabeledImageDataset needs an image folder: set `data_prefix` '
                             '(and/or `data_root`) or an `ann_file`. ' + _PREPARE_HINT)
        if not osp.isdir(folder):
            raise FileNotFoundError(f'Image folder {folder!r}{_relative_note(folder)} does not '
                                    'exist. ' + _PREPARE_HINT)
        rel_paths = []
        # Links are followed, but every real folder is listed once: a link back to a parent
        # (a loop) or a second link to the same folder would list its images again and again.
        seen, skipped = {osp.realpath(folder)}, []
        for root, dirs, files in os.walk(folder, followlinks=True):
            kept = []  # real folders before links to them, so that the real path is listed
            for d in sorted(dirs, key=lambda d: (osp.islink(osp.join(root, d)), d)):
                real = osp.realpath(osp.join(root, d))
                if d.startswith('.'):
                    continue
                if real in seen:
                    skipped.append(osp.join(root, d))
                    continue
                seen.add(real)
                kept.append(d)
            dirs[:] = kept
            for name in files:
                if not name.startswith('.') and name.lower().endswith(self.extensions):
                    rel_paths.append(osp.relpath(osp.join(root, name), folder))
        if skipped:
            print_log(f'{folder!r}: {len(skipped)} linked folder(s) lead to a folder listed '
                      f'already (a symlink loop or a second link) and were not followed again: '
                      f'{skipped[:3]}', logger='current', level=logging.WARNING)
        if not rel_paths:
            raise ValueError(f'No image with extension {"/".join(self.extensions)} found under '
                             f'{folder!r} (searched recursively). ' + _PREPARE_HINT)
        return [osp.join(folder, rel) for rel in sorted(rel_paths)]

    # ------------------------------------------------------------------ list / json
    def _paths_from_ann_file(self, ann_file: str) -> List[str]:
        """Reads the image names of an image list or a COCO json and checks they exist."""
        if not osp.isfile(ann_file):
            raise FileNotFoundError(f'ann_file {ann_file!r}{_relative_note(ann_file)} does not '
                                    'exist. ' + _PREPARE_HINT)
        if ann_file.lower().endswith('.json'):
            names = self._names_from_coco(ann_file)
        else:
            names = self._names_from_list(ann_file)
        if not names:
            raise ValueError(f'ann_file {ann_file!r} lists no image: it needs one image path '
                             'per line, relative to data_prefix. ' + _PREPARE_HINT)
        paths = [osp.join(self.img_prefix, name) for name in names]
        for name, path in zip(names, paths):
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'Image {path!r} (entry {name!r} of {ann_file!r}) does not exist. Check '
                    f'that data_prefix ({self.img_prefix!r}) is the folder the list is '
                    'relative to, or rebuild the data with tools/prepare_data.py.')
        return paths

    @staticmethod
    def _names_from_list(ann_file: str) -> List[str]:
        """Parses ``path [label]`` lines; the label is ignored."""
        names = []
        with open(ann_file, encoding='utf-8') as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith('#'):
                    continue
                parts = line.rsplit(maxsplit=1)
                if len(parts) == 2 and parts[1].lstrip('-').isdigit():
                    line = parts[0]
                names.append(line)
        return names

    @staticmethod
    def _names_from_coco(ann_file: str) -> List[str]:
        """Returns ``images[].file_name`` of a COCO json, in file order."""
        with open(ann_file, encoding='utf-8') as f:
            try:
                coco = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f'ann_file {ann_file!r} is not valid json: {err}') from err
        images = coco.get('images') if isinstance(coco, dict) else None
        if not isinstance(images, list):
            raise ValueError(f'COCO ann_file {ann_file!r} has no "images" list; expected '
                             '{"images": [{"file_name": ...}, ...], ...}.')
        names = []
        for i, image in enumerate(images):
            if not isinstance(image, dict) or 'file_name' not in image:
                raise ValueError(f'images[{i}] of {ann_file!r} has no "file_name".')
            names.append(image['file_name'])
        return names

    # ------------------------------------------------------------------ image check
    def _decoder(self) -> Tuple[str, str, Optional[dict]]:
        """``(backend, flag, backend_args)`` of the pipeline's ``LoadImageFromFile``;
        ``('cv2', 'color', None)`` (its defaults) when the pipeline has none."""
        from mmcv.transforms import LoadImageFromFile

        for transform in getattr(self.pipeline, 'transforms', []):
            if isinstance(transform, LoadImageFromFile):
                return (transform.imdecode_backend, transform.color_type,
                        getattr(transform, 'backend_args', None))
        return 'cv2', 'color', None

    def image_decode_error(self, path: str) -> Optional[str]:
        """Why ``path`` cannot be decoded the way the pipeline decodes it (see
        :func:`image_decode_error`)."""
        backend, flag, backend_args = self._decoder()
        return image_decode_error(path, backend, flag, backend_args)

    def prepare_data(self, idx: int) -> Any:
        """The pipeline's output for item ``idx``; a file that cannot be decoded raises
        :class:`UnreadableImageError` with its path and the fix instead of the decoder's bare
        error (OpenCV's ``!buf.empty()``, mmcv's ``failed to load image``)."""
        try:
            return super().prepare_data(idx)
        except Exception as err:
            path = self.get_data_info(idx).get('img_path')
            reason = self.image_decode_error(path) if path else None
            if reason is None:  # the file is fine: not a bad-input problem
                raise
            raise UnreadableImageError(
                f'Image {path!r} (dataset item {idx}) {reason}. Replace or delete the file, or '
                + _SKIP_HINT + '.') from err

    def _drop_unreadable(self, paths: List[str]) -> List[str]:
        """Decodes every image as the pipeline would; drops, counts and logs the unreadable."""
        readable, bad = [], []
        for path in paths:
            reason = self.image_decode_error(path)
            if reason is None:
                readable.append(path)
            else:
                bad.append((path, reason))
        self.num_unreadable = len(bad)
        self.unreadable_files = [path for path, _ in bad]
        source = self.ann_file or self.img_prefix
        if bad:
            shown = '\n  '.join(f'{p} ({why})' for p, why in bad[:_MAX_LISTED_BAD])
            more = f'\n  ... and {len(bad) - _MAX_LISTED_BAD} more' \
                if len(bad) > _MAX_LISTED_BAD else ''
            print_log(
                f'UnlabeledImageDataset: skipped {len(bad)} of {len(paths)} unreadable images '
                f'from {source!r}:\n  {shown}{more}',
                logger='current',
                level=logging.WARNING)
        if not readable:
            raise ValueError(f'None of the {len(paths)} images from {source!r} could be read '
                             '(all are corrupt, empty or not images). ' + _PREPARE_HINT)
        return readable
