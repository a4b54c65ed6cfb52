"""Selective-search object proposals for SoCo: generation, filters, fall-backs, JSON I/O.

Only numpy and OpenCV are needed here (no torch), so worker processes stay light.

Box convention everywhere in this module: ``(x, y, w, h)`` in pixels of the *original* image,
``(x, y)`` the top-left corner, the box covering ``[x, x + w) x [y, y + h)`` -- COCO's ``bbox``.
(The SoCo paper writes boxes by their centre; that is only notation.)

The proposals file (written by ``tools/generate_proposals.py``, read by :func:`load_proposals`
and :class:`~mcl_plugin.datasets.ProposalImageDataset`) is a COCO instances file with one
category, so ``pycocotools.coco.COCO`` reads it as it is::

    {
      "info": {"format": "mcl_plugin.proposals", "version": 1,
               "box_format": "xywh, top-left corner, pixels of the original image",
               "generator": {...selective-search settings...},
               "filter": {...filter settings...}, "date_created": "..."},
      "images": [{"id": 1, "file_name": "n01440764/x.JPEG",   # relative to the image folder
                  "width": 500, "height": 375,
                  "num_raw": 912,           # boxes selective search returned
                  "num_filtered": 37,       # boxes that passed every filter
                  "fallback": "none"}],     # none | ratio | whole_image (see below)
      "annotations": [{"id": 1, "image_id": 1, "bbox": [x, y, w, h], "area": w * h,
                       "category_id": 1, "iscrowd": 0}],
      "categories": [{"id": 1, "name": "proposal", "supercategory": "proposal"}]
    }

Filters and fall-backs (SoCo §3.1 and its official filter scripts): a box is kept when
``min_side <= w, h``, ``min_ratio <= w / h <= max_ratio`` and
``min_rel_size <= sqrt(w * h) / sqrt(W * H) <= max_rel_size`` (optionally also: no IoU
``>= max_overlap`` with an earlier kept box, and at most ``max_per_image`` boxes). An image
where no box passes keeps the boxes that pass the side and aspect tests only
(``fallback="ratio"``); an image where none of those exists gets one box, the whole image
(``fallback="whole_image"``). Every image in the file therefore has at least one proposal.

:func:`load_proposals` also reads SoCo's official json (``{"<basename>": [[x, y, w, h], ...]}``).
"""
import datetime
import json
import math
import os
import os.path as osp
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

FORMAT_NAME = 'mcl_plugin.proposals'
FORMAT_VERSION = 1
BOX_FORMAT = 'xywh, top-left corner, pixels of the original image (COCO bbox)'
FALLBACKS = ('none', 'ratio', 'whole_image')
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


@dataclass
class ProposalFilter:
    """SoCo's box filters (defaults: the paper's ``ratio3size0308`` + official ``w, h >= 32``).

    Attributes:
        min_ratio (float): Smallest ``w / h``.
        max_ratio (float): Largest ``w / h``.
        min_rel_size (float): Smallest ``sqrt(w h) / sqrt(W H)``.
        max_rel_size (float): Largest ``sqrt(w h) / sqrt(W H)``.
        min_side (float): Smallest ``w`` and ``h`` in original pixels.
        max_overlap (float, optional): Drop a box whose IoU with a box kept before it (in
            selective search's order) is at least this: near-duplicates only add redundancy
            (0.8 halves OpenCV fast mode's filtered boxes on data/pretrain). None: keep all
            (the paper's setting).
        max_per_image (int, optional): Keep at most this many boxes (in selective search's
            order, which ranks hierarchy levels) after filtering. None: all.
    """

    min_ratio: float = 1 / 3
    max_ratio: float = 3.0
    min_rel_size: float = 0.3
    max_rel_size: float = 0.8
    min_side: float = 32.0
    max_per_image: Optional[int] = None
    max_overlap: Optional[float] = None

    def ratio_mask(self, boxes: np.ndarray) -> np.ndarray:
        """Side and aspect tests (the ``ratio`` fall-back keeps what passes these)."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        w, h = boxes[:, 2], boxes[:, 3]
        ok = (w >= self.min_side) & (h >= self.min_side) & (w > 0) & (h > 0)
        ratio = np.divide(w, h, out=np.zeros_like(w), where=h > 0)
        return ok & (ratio >= self.min_ratio) & (ratio <= self.max_ratio)

    def mask(self, boxes: np.ndarray, width: int, height: int) -> np.ndarray:
        """Boolean mask of the boxes that pass every filter."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        rel = np.sqrt(boxes[:, 2] * boxes[:, 3]) / math.sqrt(width * height)
        return self.ratio_mask(boxes) & (rel >= self.min_rel_size) & (rel <= self.max_rel_size)

    def apply(self, boxes: np.ndarray, width: int, height: int) -> Tuple[np.ndarray, str, int]:
        """Filter with the fall-backs.

        Returns:
            tuple: ``(boxes (N>=1, 4) float32 xywh, fallback, num_filtered)`` where
            ``fallback`` is one of :data:`FALLBACKS` and ``num_filtered`` counts the boxes that
            passed every filter (before ``max_per_image``).
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        keep = boxes[self.mask(boxes, width, height)]
        num_filtered, fallback = len(keep), 'none'
        if not len(keep):
            keep, fallback = boxes[self.ratio_mask(boxes)], 'ratio'
        if not len(keep):
            keep = np.array([[0, 0, width, height]], dtype=np.float32)
            fallback = 'whole_image'
        if self.max_overlap is not None and len(keep) > 1:
            keep = suppress_overlaps(keep, self.max_overlap)
        if self.max_per_image is not None:
            keep = keep[:self.max_per_image]
        return keep, fallback, num_filtered


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
    rects = np.asarray(ss.process(), dtype=np.float32).reshape(-1, 4)
    return unique_boxes(_rescale(rects, s, width, height))


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


def suppress_overlaps(boxes: np.ndarray, max_overlap: float) -> np.ndarray:
    """Greedy duplicate removal in the given order: a box is dropped when its IoU with an
    earlier kept box is ``>= max_overlap`` (NMS without scores)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    iou = box_iou_xywh(boxes, boxes)
    kept: List[int] = []
    for i in range(len(boxes)):
        if not kept or iou[i, kept].max() < max_overlap:
            kept.append(i)
    return boxes[kept]


# ------------------------------------------------------------------------------- evaluation
def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of xywh boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def count_recalled(proposals: np.ndarray, gt: np.ndarray, iou: float = 0.5) -> int:
    """Number of ground-truth boxes covered by at least one proposal with IoU >= ``iou``."""
    gt = np.asarray(gt).reshape(-1, 4)
    if not len(gt):
        return 0
    proposals = np.asarray(proposals).reshape(-1, 4)
    if not len(proposals):
        return 0
    return int((box_iou_xywh(gt, proposals).max(axis=1) >= iou).sum())


# ------------------------------------------------------------------------------- JSON I/O
def build_proposals_json(records: Iterable[Mapping],
                         generator: Optional[Mapping] = None,
                         filter_cfg: Optional[Mapping] = None,
                         decimals: int = 1) -> dict:
    """Assemble the COCO-style proposals dict (format in the module docstring).

    Args:
        records (Iterable[Mapping]): Per image ``file_name, width, height, boxes`` (xywh), and
            optionally ``num_raw, num_filtered, fallback``.
        generator (Mapping, optional): Generator settings for ``info``.
        filter_cfg (Mapping, optional): Filter settings for ``info``.
        decimals (int): Decimals kept in the box coordinates.
    """
    images, annotations = [], []
    for image_id, rec in enumerate(records, start=1):
        boxes = np.asarray(rec['boxes'], dtype=np.float64).reshape(-1, 4)
        images.append(
            dict(id=image_id,
                 file_name=rec['file_name'],
                 width=int(rec['width']),
                 height=int(rec['height']),
                 num_raw=int(rec.get('num_raw', len(boxes))),
                 num_filtered=int(rec.get('num_filtered', len(boxes))),
                 fallback=rec.get('fallback', 'none')))
        for box in np.round(boxes, decimals).tolist():
            annotations.append(
                dict(id=len(annotations) + 1,
                     image_id=image_id,
                     bbox=box,
                     area=round(box[2] * box[3], decimals),
                     category_id=1,
                     iscrowd=0))
    info = dict(description='selective-search object proposals for SoCo pre-training',
                format=FORMAT_NAME,
                version=FORMAT_VERSION,
                box_format=BOX_FORMAT,
                generator=dict(generator or {}),
                filter=dict(filter_cfg or {}),
                date_created=datetime.datetime.now().isoformat(timespec='seconds'))
    return dict(info=info,
                images=images,
                annotations=annotations,
                categories=[dict(id=1, name='proposal', supercategory='proposal')])


def parse_proposals(data: object, source: str = '<proposals>') -> Dict[str, dict]:
    """Turn a loaded proposals json into ``{file_name: dict(boxes, width, height, fallback)}``.

    ``boxes`` is a ``(N, 4)`` float32 xywh array; ``width``/``height`` are None for SoCo's
    official format (which does not store them) and ``fallback`` is ``'none'`` there.

    Raises:
        ValueError: If the structure is neither format, with the expected layout in the message.
    """
    if isinstance(data, dict) and isinstance(data.get('images'), list):
        out: Dict[str, dict] = {}
        by_id: Dict[int, List[list]] = {}
        for ann in data.get('annotations', []):
            by_id.setdefault(ann['image_id'], []).append(ann['bbox'])
        for i, img in enumerate(data['images']):
            if not isinstance(img, dict) or 'file_name' not in img or 'id' not in img:
                raise ValueError(f'{source}: images[{i}] needs "id" and "file_name".')
            if img['file_name'] in out:
                raise ValueError(f'{source}: file_name {img["file_name"]!r} appears twice.')
            out[img['file_name']] = dict(
                boxes=np.asarray(by_id.get(img['id'], []), dtype=np.float32).reshape(-1, 4),
                width=img.get('width'),
                height=img.get('height'),
                fallback=img.get('fallback', 'none'))
        return out
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        out = {}
        for name, boxes in data.items():
            try:
                arr = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
            except ValueError as e:
                raise ValueError(f'{source}: the boxes of {name!r} are not [[x, y, w, h], ...] '
                                 f'({e}).') from None
            out[name] = dict(boxes=arr, width=None, height=None, fallback='none')
        return out
    raise ValueError(f'{source} is not a proposals file: expected the COCO-style layout '
                     '{"images": [...], "annotations": [...]} written by '
                     'tools/generate_proposals.py, or SoCo\'s {"<image name>": [[x, y, w, h], '
                     '...]}.')


def load_proposals(path: str) -> Dict[str, dict]:
    """Read a proposals json (either format); see :func:`parse_proposals`."""
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'proposals file {path!r} is not valid json ({e}); was its '
                             'generation interrupted? Re-run tools/generate_proposals.py (it '
                             'resumes).') from None
    return parse_proposals(data, repr(path))


def summarize(records: Sequence[Mapping], wall_seconds: float,
              num_skipped: int = 0, failed: Sequence[Mapping] = ()) -> dict:
    """Statistics of a generation run (printed and written next to the proposals file)."""

    def stats(values: List[float]) -> dict:
        if not values:
            return dict(mean=0.0, median=0.0, min=0, max=0)
        arr = np.asarray(values, dtype=np.float64)
        return dict(mean=round(float(arr.mean()), 2), median=float(np.median(arr)),
                    min=float(arr.min()), max=float(arr.max()))

    fallbacks = {k: 0 for k in FALLBACKS}
    for r in records:
        fallbacks[r.get('fallback', 'none')] += 1
    new = [r for r in records if not r.get('resumed')]
    seconds = [r['seconds'] for r in new if 'seconds' in r]
    return dict(images=len(records),
                processed_now=len(new),
                resumed=num_skipped,
                failed=len(failed),
                failed_files=[f['file_name'] for f in failed][:20],
                boxes_per_image_raw=stats([r['num_raw'] for r in records]),
                boxes_per_image_filtered=stats([r['num_filtered'] for r in records]),
                boxes_per_image_final=stats([len(r['boxes']) for r in records]),
                fallbacks=fallbacks,
                seconds_per_image_worker=round(float(np.mean(seconds)), 4) if seconds else None,
                wall_seconds=round(wall_seconds, 2),
                images_per_second=round(len(new) / wall_seconds, 3) if wall_seconds > 0 else None)


__all__ = [
    'SelectiveSearchConfig', 'ProposalFilter', 'opencv_selective_search',
    'python_selective_search', 'unique_boxes', 'box_iou_xywh', 'count_recalled',
    'build_proposals_json', 'parse_proposals', 'load_proposals', 'summarize', 'FALLBACKS',
    'SS_MODES', 'FORMAT_NAME', 'FORMAT_VERSION', 'process_image', 'generate_proposals',
    'require_ximgproc', 'partial_path', 'summary_path', 'suppress_overlaps'
]


# ------------------------------------------------------------------------------- generation
def process_image(path: str, file_name: str, ss_cfg: SelectiveSearchConfig,
                  filt: ProposalFilter) -> dict:
    """Selective search + filters for one image file.

    Returns:
        dict: ``file_name, width, height, num_raw, num_filtered, fallback, boxes (list of
        xywh), seconds``, or ``file_name, error`` when the image cannot be read.
    """
    import cv2
    start = time.perf_counter()
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        return dict(file_name=file_name, error=f'cannot read image {path!r}')
    height, width = img.shape[:2]
    raw = opencv_selective_search(img, ss_cfg)
    boxes, fallback, num_filtered = filt.apply(raw, width, height)
    return dict(file_name=file_name,
                width=width,
                height=height,
                num_raw=len(raw),
                num_filtered=num_filtered,
                fallback=fallback,
                boxes=np.round(boxes.astype(np.float64), 1).tolist(),
                seconds=round(time.perf_counter() - start, 4))


_WORKER: dict = {}


def _worker_init(ss_cfg: SelectiveSearchConfig, filt: ProposalFilter) -> None:
    import cv2
    cv2.setNumThreads(1)  # one image per process; OpenCV threads only oversubscribe
    _WORKER.update(ss_cfg=ss_cfg, filt=filt)


def _worker_run(item: Tuple[str, str]) -> dict:
    try:
        return process_image(item[0], item[1], _WORKER['ss_cfg'], _WORKER['filt'])
    except Exception as e:  # noqa: BLE001 - one bad image must not stop a long run
        return dict(file_name=item[1], error=f'{type(e).__name__}: {e}')


def partial_path(out_json: str) -> str:
    """The resumable record of a run: one json line per finished image."""
    return out_json + '.partial.jsonl'


def summary_path(out_json: str) -> str:
    root, _ = osp.splitext(out_json)
    return root + '.summary.json'


def _read_partial(path: str, header: dict) -> Dict[str, dict]:
    done: Dict[str, dict] = {}
    if not osp.isfile(path):
        return done
    with open(path, encoding='utf-8') as f:
        lines = f.read().splitlines()
    if not lines:
        return done
    try:
        old = json.loads(lines[0]).get('header')
    except json.JSONDecodeError:
        old = None
    if old != header:
        raise ValueError(
            f'{path} was written with other settings:\n  file: {old}\n  now:  {header}\n'
            'Resume with the same settings, pass --restart to discard it, or choose another '
            'output file.')
    for line in lines[1:]:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by an interrupted run; that image is redone
        if 'error' not in rec:
            done[rec['file_name']] = rec
    return done


def _progress_bar(total: int, done: int, show: Optional[bool]):
    """A tqdm bar over the images on stderr; disabled (a no-op) unless ``show``, which
    defaults to whether stderr is a terminal."""
    import sys

    from tqdm import tqdm
    if show is None:
        show = sys.stderr.isatty()
    return tqdm(total=total, initial=done, desc='selective search', unit='img',
                disable=not show, file=sys.stderr, dynamic_ncols=True)


def generate_proposals(items: Sequence[Tuple[str, str]],
                       out_json: str,
                       ss_cfg: Optional[SelectiveSearchConfig] = None,
                       filt: Optional[ProposalFilter] = None,
                       workers: int = 1,
                       restart: bool = False,
                       keep_partial: bool = False,
                       log: Callable[[str], None] = print,
                       log_every: int = 100,
                       progress: Optional[bool] = None) -> dict:
    """Run selective search over images, resumably, and write the proposals json + summary.

    Finished images are appended to ``<out_json>.partial.jsonl`` as they complete, so an
    interrupted run continues where it stopped (images already in that file are skipped, the
    settings must match). At the end ``out_json`` (format in the module docstring) and
    ``<out_json without .json>.summary.json`` are written atomically and the partial file is
    removed unless ``keep_partial``. Unreadable images are reported in the summary
    (``failed``), left out of the json and retried by the next run.

    Args:
        items (Sequence[tuple[str, str]]): ``(path, file_name)`` per image; ``file_name`` is
            the key written to the json (the path relative to the image folder).
        out_json (str): Output file.
        ss_cfg (SelectiveSearchConfig, optional): Generator settings.
        filt (ProposalFilter, optional): Filters.
        workers (int): Processes. Defaults to 1 (in-process).
        restart (bool): Discard an existing partial file.
        keep_partial (bool): Keep the partial file after success.
        log (Callable): Progress printer.
        log_every (int): Progress line every this many images (only without the progress
            bar).
        progress (bool, optional): Show a tqdm progress bar over the images on stderr
            (resumed images count as done). Default: only when stderr is a terminal.

    Returns:
        dict: The summary (see :func:`summarize`).
    """
    ss_cfg = ss_cfg or SelectiveSearchConfig()
    filt = filt or ProposalFilter()
    names = [n for _, n in items]
    if len(set(names)) != len(names):
        raise ValueError('generate_proposals: file names must be unique')
    header = dict(format=FORMAT_NAME, version=FORMAT_VERSION, generator=asdict(ss_cfg),
                  filter=asdict(filt))
    part = partial_path(out_json)
    os.makedirs(osp.dirname(osp.abspath(out_json)), exist_ok=True)
    if restart and osp.exists(part):
        os.remove(part)
    done = _read_partial(part, header)
    wanted = set(names)
    done = {k: v for k, v in done.items() if k in wanted}
    todo = [it for it in items if it[1] not in done]
    log(f'[generate_proposals] {len(items)} images: {len(done)} already done (resumed from '
        f'{part}), {len(todo)} to process with {workers} worker(s)' if done else
        f'[generate_proposals] {len(items)} images to process with {workers} worker(s)')
    new: Dict[str, dict] = {}
    failed: List[dict] = []
    start = time.perf_counter()
    bar = _progress_bar(len(items), len(done), progress)
    with bar, open(part, 'a', encoding='utf-8') as f:
        if f.tell() == 0:
            f.write(json.dumps(dict(header=header)) + '\n')
            f.flush()

        def consume(results: Iterable[dict]) -> None:
            for rec in results:
                f.write(json.dumps(rec) + '\n')
                f.flush()
                if 'error' in rec:
                    failed.append(rec)
                else:
                    new[rec['file_name']] = rec
                n = len(new) + len(failed)
                bar.update(1)
                if failed:
                    bar.set_postfix(failed=len(failed), refresh=False)
                if bar.disable and log_every and n % log_every == 0:
                    rate = n / max(time.perf_counter() - start, 1e-9)
                    log(f'[generate_proposals] {n}/{len(todo)} ({rate:.2f} images/s)')

        if workers <= 1 or len(todo) <= 1:
            _worker_init(ss_cfg, filt)
            consume(_worker_run(it) for it in todo)
        else:
            import multiprocessing as mp
            with mp.get_context('fork').Pool(workers, _worker_init, (ss_cfg, filt)) as pool:
                consume(pool.imap_unordered(_worker_run, todo, chunksize=1))
    wall = time.perf_counter() - start
    records = []
    for _, name in items:
        if name in new:
            records.append(new[name])
        elif name in done:
            records.append(dict(done[name], resumed=True))
    data = build_proposals_json(records, asdict(ss_cfg), asdict(filt))
    summary = summarize(records, wall, num_skipped=len(done), failed=failed)
    summary.update(output=out_json, generator=asdict(ss_cfg), filter=asdict(filt))
    for path, obj in ((out_json, data), (summary_path(out_json), summary)):
        tmp = f'{path}.tmp{os.getpid()}'
        with open(tmp, 'w', encoding='utf-8') as g:
            json.dump(obj, g, indent=None if obj is data else 2)
        os.replace(tmp, path)
    if not failed and not keep_partial:
        os.remove(part)
    return summary
