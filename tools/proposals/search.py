"""Selective search for SoCo's proposals: OpenCV ``ximgproc`` (the generator's) and the
pure-Python ``selectivesearch`` package SoCo's official scripts use (for comparisons).

Only numpy and OpenCV are needed here (no torch), so worker processes stay light. Boxes are
``(x, y, w, h)`` in pixels of the original image (see :mod:`mcl_plugin.datasets.proposals`).
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

SS_MODES = ('fast', 'quality', 'single')

_CONTRIB_HINT = ('OpenCV selective search needs cv2.ximgproc, which only the *contrib* builds '
                 'of OpenCV ship: pip install opencv-contrib-python-headless==<the version of '
                 'your opencv-python> (it replaces the cv2 package of opencv-python; install it '
                 'after mmcv/mmdet, which pull opencv-python).')


@dataclass
class SelectiveSearchConfig:
    """OpenCV ``ximgproc`` selective search settings.

    Attributes:
        mode (str): ``fast`` (2 colour spaces x 2 strategy sets, ``base_k``/``inc_k``),
            ``quality`` (more of both, ~3x slower) or ``single`` (one graph segmentation with
            ``k = base_k``, one strategy: ~5x faster than ``fast``, fewer boxes).
        base_k (int): Graph-segmentation ``k`` (OpenCV default 150).
        inc_k (int): Increment of ``k`` between segmentations (OpenCV default 150).
        sigma (float): Gaussian smoothing of the segmentation (OpenCV default 0.8).
        max_side (int, optional): Run on a copy resized so that its longer side is at most
            this (boxes are mapped back to the original pixels). None: original resolution.
    """

    mode: str = 'fast'
    base_k: int = 150
    inc_k: int = 150
    sigma: float = 0.8
    max_side: Optional[int] = None

    def __post_init__(self) -> None:
        if self.mode not in SS_MODES:
            raise ValueError(f'selective-search mode must be one of {SS_MODES}, got {self.mode!r}')
        if self.max_side is not None and self.max_side < 16:
            raise ValueError(f'max_side must be >= 16 or None, got {self.max_side}')


def require_ximgproc():
    """Return ``cv2``; raise an ImportError with the fix when it lacks ``ximgproc``."""
    import cv2
    if not hasattr(cv2, 'ximgproc'):
        raise ImportError(f'cv2 {cv2.__version__} has no ximgproc module. ' + _CONTRIB_HINT)
    return cv2


def unique_boxes(boxes: np.ndarray) -> np.ndarray:
    """Drop repeated rows, keeping the first occurrence and the order."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    if not len(boxes):
        return boxes
    _, first = np.unique(boxes, axis=0, return_index=True)
    return boxes[np.sort(first)]


def _downscale(img: np.ndarray, max_side: Optional[int]) -> Tuple[np.ndarray, float]:
    """Resize so that the longer side is ``<= max_side``; returns the image and the factor."""
    h, w = img.shape[:2]
    if max_side is None or max(h, w) <= max_side:
        return img, 1.0
    import cv2
    s = max_side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA), s


def _as_bgr3(img: np.ndarray) -> np.ndarray:
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] not in (3, 4):
        raise ValueError(f'expected an HxW, HxWx3 or HxWx4 image, got shape {img.shape}')
    img = img[:, :, :3]
    if img.dtype != np.uint8:
        raise ValueError(f'expected a uint8 image, got {img.dtype}')
    return np.ascontiguousarray(img)


def _rescale(boxes: np.ndarray, s: float, width: int, height: int) -> np.ndarray:
    boxes = boxes.astype(np.float32).reshape(-1, 4)
    if s != 1.0:
        boxes = boxes / s
        # clip to the original image (rounding of the resized size)
        x2 = np.minimum(boxes[:, 0] + boxes[:, 2], width)
        y2 = np.minimum(boxes[:, 1] + boxes[:, 3], height)
        boxes[:, 2], boxes[:, 3] = x2 - boxes[:, 0], y2 - boxes[:, 1]
    return boxes


def opencv_selective_search(img: np.ndarray,
                            cfg: Optional[SelectiveSearchConfig] = None) -> np.ndarray:
    """Selective search with ``cv2.ximgproc`` (OpenCV contrib).

    Args:
        img (np.ndarray): ``HxWx3`` BGR uint8 (as ``cv2.imread`` gives), or grayscale.
        cfg (SelectiveSearchConfig, optional): Settings. Defaults to fast mode.

    Returns:
        np.ndarray: ``(N, 4)`` float32 xywh boxes in the pixels of ``img``, duplicates removed,
        in OpenCV's order.
    """
    cv2 = require_ximgproc()
    cfg = cfg or SelectiveSearchConfig()
    img = _as_bgr3(img)
    height, width = img.shape[:2]
    small, s = _downscale(img, cfg.max_side)
    ss = cv2.ximgproc.segmentation.createSelectiveSearchSegmentation()
    ss.setBaseImage(small)
    if cfg.mode == 'fast':
        ss.switchToSelectiveSearchFast(cfg.base_k, cfg.inc_k, cfg.sigma)
    elif cfg.mode == 'quality':
        ss.switchToSelectiveSearchQuality(cfg.base_k, cfg.inc_k, cfg.sigma)
    else:
        ss.switchToSingleStrategy(cfg.base_k, cfg.sigma)
    _seed_c_rand()
    rects = np.asarray(ss.process(), dtype=np.float32).reshape(-1, 4)
    return unique_boxes(_rescale(rects, s, width, height))


def _seed_c_rand(seed: int = 1) -> None:
    """Reset the C library's ``rand()``, which OpenCV's selective search draws its region ranks
    from (``rand() / RAND_MAX * level``): without it the order of the boxes of an image depends
    on how many images the process searched before, so a resumed, sharded or multi-process run
    would order (and, with ``max_per_image`` / ``max_overlap``, choose) boxes differently from a
    single pass. No-op where libc cannot be loaded."""
    global _LIBC
    if _LIBC is None:
        import ctypes
        try:
            _LIBC = ctypes.CDLL(None)
            _LIBC.srand.argtypes = [ctypes.c_uint]
        except (OSError, AttributeError):
            _LIBC = False
    if _LIBC:
        _LIBC.srand(seed)


_LIBC = None


def python_selective_search(img: np.ndarray,
                            scale: float = 300,
                            sigma: float = 0.9,
                            min_size: int = 100,
                            max_side: Optional[int] = None) -> np.ndarray:
    """The pure-Python selective search SoCo's generator uses (PyPI ``selectivesearch`` 0.4).

    Defaults are the official SoCo generator's (``scale=300, sigma=0.9, min_size=100``; the
    paper states 500/0.9/10). Its ``rect`` width is ``max_x - min_x``; 1 is added so the boxes
    follow this module's convention, like OpenCV's.

    Args:
        img (np.ndarray): ``HxWx3`` BGR uint8.
        scale, sigma, min_size: Felzenszwalb segmentation parameters.
        max_side (int, optional): See :class:`SelectiveSearchConfig`.

    Returns:
        np.ndarray: ``(N, 4)`` float32 xywh boxes, duplicates removed.
    """
    import warnings
    try:
        import selectivesearch
    except ImportError as e:
        raise ImportError('the SoCo-style generator needs `pip install selectivesearch==0.4` '
                          '(pure Python, uses scikit-image)') from e
    img = _as_bgr3(img)
    height, width = img.shape[:2]
    small, s = _downscale(img, max_side)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # skimage LBP on float images
        _, regions = selectivesearch.selective_search(
            np.ascontiguousarray(small[:, :, ::-1]), scale=scale, sigma=sigma, min_size=min_size)
    rects = np.array([r['rect'] for r in regions], dtype=np.float32).reshape(-1, 4)
    rects[:, 2:] += 1
    return unique_boxes(_rescale(rects, s, width, height))
