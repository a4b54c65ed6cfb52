"""Resumable, multi-process proposal generation over image files (``tools/generate_proposals.py``):
selective search + filters per image, a partial record per finished image, the proposals json and
its summary written atomically at the end."""
import json
import os
import os.path as osp
import time
from dataclasses import asdict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from mcl_plugin.datasets.proposals import FORMAT_NAME, FORMAT_VERSION
from mcl_plugin.datasets.unlabeled import image_decode_error

from .filters import ProposalFilter
from .official import OfficialSearchConfig, official_selective_search, read_rgb
from .search import SelectiveSearchConfig, opencv_selective_search
from .writer import build_proposals_json, summarize

#: settings of either generator: OpenCV ``ximgproc`` or SoCo's own (``--method official``)
SearchConfig = Union[SelectiveSearchConfig, OfficialSearchConfig]


def process_image(path: str, file_name: str, ss_cfg: SearchConfig,
                  filt: ProposalFilter) -> dict:
    """Selective search + filters for one image file.

    OpenCV's search gets the image as ``cv2.imread`` decodes it; the official search as SoCo's
    generator decodes it (PIL, RGB; ``generate_imagenet_ss_proposals.py:45``).

    Returns:
        dict: ``file_name, width, height, num_raw, num_filtered, fallback, boxes (list of
        xywh), seconds``, or ``file_name, error`` when the image cannot be read.
    """
    import cv2
    start = time.perf_counter()
    # The dataset's own check (check_images=True): a file training would reject (truncated,
    # corrupt, decodable only with libjpeg warnings) gets no proposals either.
    reason = image_decode_error(path)
    if reason is not None:
        return dict(file_name=file_name, error=f'image {path!r} {reason}')
    if isinstance(ss_cfg, OfficialSearchConfig):
        img = read_rgb(path)
        height, width = img.shape[:2]
        raw = official_selective_search(img, ss_cfg)
    else:
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


def _worker_init(ss_cfg: SearchConfig, filt: ProposalFilter) -> None:
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
                       ss_cfg: Optional[SearchConfig] = None,
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
    settings must match). At the end ``out_json`` (format: :mod:`mcl_plugin.datasets.proposals`) and
    ``<out_json without .json>.summary.json`` are written atomically and the partial file is
    removed unless ``keep_partial``. Unreadable images are reported in the summary
    (``failed``), left out of the json and retried by the next run.

    Args:
        items (Sequence[tuple[str, str]]): ``(path, file_name)`` per image; ``file_name`` is
            the key written to the json (the path relative to the image folder).
        out_json (str): Output file.
        ss_cfg (SelectiveSearchConfig | OfficialSearchConfig, optional): Generator settings
            (which also selects the generator). Default: OpenCV fast mode.
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
