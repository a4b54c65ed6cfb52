"""Proposals written as a directory of shards (``tools/generate_proposals.py --shard-size N``):
deterministic assignment, atomic shard files, per-shard resuming, a throughput / disk projection
before the run. The format and its lazy reader are in :mod:`mcl_plugin.datasets.proposals`.

Shard ``i`` holds the images ``i * N .. (i + 1) * N - 1`` of the key-sorted image list, so the
same list and ``N`` always give the same shards. A shard is written to a temporary file and
renamed, then recorded in ``manifest.json`` (also replaced atomically) with its size and sha256.
A rerun skips the shards whose file matches its record, redoes the others (missing, truncated,
never recorded) and retries only the failed images of a shard that has some. A manifest made
with another image list or other settings is refused, naming what changed.
"""
import hashlib
import io
import json
import os
import os.path as osp
import time
from contextlib import contextmanager
from dataclasses import asdict
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mcl_plugin.datasets.proposals import (BOX_FORMAT, DEFAULT_SHARD_SIZE, FALLBACKS, KEYS_NAME,
                                           MANIFEST_NAME, SHARDS_FORMAT_NAME, SHARDS_VERSION,
                                           SUMMARY_NAME, file_sha256, keys_digest, read_keys,
                                           read_manifest, read_shard, shard_file_name)

from .filters import ProposalFilter
from .generate import SearchConfig, _progress_bar, _worker_init, _worker_run
from .search import SelectiveSearchConfig
from .writer import summarize

#: images in ImageNet-1k train, for the projection printed before a run
IMAGENET_TRAIN_IMAGES = 1_281_167
Item = Tuple[str, str]
Runner = Callable[[Sequence[Item]], Iterable[dict]]


# ------------------------------------------------------------------------------------ writing
def compact_boxes(boxes: np.ndarray) -> Tuple[np.ndarray, int]:
    """``(M, 4)`` boxes in the smallest exact form: ``(stored, divisor)`` with ``stored /
    divisor`` (in float64) equal to ``boxes``. int16 with divisor 1 when every value is a whole
    number in ``[-32768, 32767]`` (full-resolution selective search, COCO's integer boxes);
    int16 with divisor 10 for values with one decimal below 3276.8 (``--max-side`` runs, rounded
    to 0.1 px by the generator); else float32 (divisor 1)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    for divisor in (1, 10):
        scaled = np.round(boxes * divisor)
        if (np.all(scaled / divisor == boxes)
                and (not len(boxes) or (scaled.min() >= -32768 and scaled.max() <= 32767))):
            return scaled.astype(np.int16), divisor
    return boxes.astype(np.float32), 1


def shard_bytes(records: Sequence[Mapping]) -> bytes:
    """The ``.npz`` content of a shard holding ``records`` (``file_name, width, height, boxes``
    and optionally ``num_raw, num_filtered, fallback``)."""
    boxes = [np.asarray(r['boxes'], np.float64).reshape(-1, 4) for r in records]
    offsets = np.zeros(len(records) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in boxes])
    stored, divisor = compact_boxes(np.concatenate(boxes) if boxes else np.zeros((0, 4)))
    arrays = dict(
        keys=np.array([r['file_name'].encode('utf-8') for r in records], dtype=np.bytes_),
        offsets=offsets,
        boxes=stored,
        box_divisor=np.array(divisor, np.int32),
        width=np.array([r['width'] for r in records], np.int32),
        height=np.array([r['height'] for r in records], np.int32),
        fallback=np.array([FALLBACKS.index(r.get('fallback', 'none')) for r in records],
                          np.uint8),
        num_raw=np.array([r.get('num_raw', len(b)) for r, b in zip(records, boxes)], np.int32),
        num_filtered=np.array([r.get('num_filtered', len(b)) for r, b in zip(records, boxes)],
                              np.int32))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def write_atomic(path: str, content: bytes) -> None:
    """Write ``content`` to ``path`` via a temporary file and a rename."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(content)
    os.replace(tmp, path)


def write_json_atomic(path: str, obj: object, indent: Optional[int] = 1) -> None:
    write_atomic(path, json.dumps(obj, indent=indent).encode('utf-8'))


def records_of_shard(data: Mapping[str, np.ndarray]) -> List[dict]:
    """The per-image records of a loaded shard (to merge retried images into it)."""
    out = []
    for i, key in enumerate(data['keys'].tolist()):
        lo, hi = int(data['offsets'][i]), int(data['offsets'][i + 1])
        out.append(dict(file_name=key.decode('utf-8'), width=int(data['width'][i]),
                        height=int(data['height'][i]),
                        boxes=(data['boxes'][lo:hi].astype(np.float64)
                               / int(data['box_divisor'])).tolist(),
                        num_raw=int(data['num_raw'][i]), num_filtered=int(data['num_filtered'][i]),
                        fallback=FALLBACKS[int(data['fallback'][i])]))
    return out


# ------------------------------------------------------------------------------ the manifest
def make_header(keys: Sequence[str], shard_size: int, source: str, generator: Mapping,
                filter_cfg: Mapping) -> dict:
    """The part of a manifest that a rerun must match."""
    return dict(format=SHARDS_FORMAT_NAME, version=SHARDS_VERSION, box_format=BOX_FORMAT,
                source=source, generator=dict(generator), filter=dict(filter_cfg),
                shard_size=shard_size, num_images=len(keys), keys_sha256=keys_digest(keys))


def _differences(old: Mapping, new: Mapping, prefix: str = '') -> List[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f'{prefix}{k}.')
        elif a != b:
            out.append(f'{prefix}{k}: {a!r} -> {b!r}')
    return out


def _check_header(root: str, old: dict, header: dict, keys: Sequence[str]) -> None:
    """Raise, naming what changed, when an existing manifest was made for another run."""
    changed = [d for d in _differences({k: old.get(k) for k in header}, header)
               if not d.startswith(('num_images', 'keys_sha256'))]
    if (old.get('num_images'), old.get('keys_sha256')) != (header['num_images'],
                                                          header['keys_sha256']):
        try:
            before = read_keys(root, old)
        except (OSError, ValueError):
            before = []
        added = sorted(set(keys) - set(before))
        removed = sorted(set(before) - set(keys))
        changed.append(f'image list: {old.get("num_images")} -> {len(keys)} images ('
                       f'{len(added)} added, e.g. {added[:3]}; {len(removed)} removed, e.g. '
                       f'{removed[:3]})')
    if changed:
        raise ValueError(
            f'{osp.join(root, MANIFEST_NAME)} was written by another run:\n  '
            + '\n  '.join(changed) + '\nResume with the same image list and settings, write to a '
            'new folder (--out NEW_DIR), or pass --overwrite to discard its shards.')


def _clear(root: str) -> None:
    """Remove this format's files from ``root`` (nothing else)."""
    for name in os.listdir(root):
        if (name in (MANIFEST_NAME, KEYS_NAME, SUMMARY_NAME)
                or (name.startswith('shard-') and '.npz' in name) or '.tmp' in name):
            os.remove(osp.join(root, name))


def _shard_status(root: str, rec: Mapping) -> str:
    """``done``, ``retry`` (done, with failed images), or why the shard is redone."""
    if not rec.get('done'):
        return 'not written' if not osp.exists(osp.join(root, rec['file'])) else 'unrecorded'
    path = osp.join(root, rec['file'])
    if not osp.isfile(path):
        return 'missing'
    if osp.getsize(path) != rec['bytes'] or file_sha256(path) != rec['sha256']:
        return 'damaged (size or sha256 differs from the manifest)'
    return 'retry' if rec.get('failed') else 'done'


# ------------------------------------------------------------------------------ calibration
def calibrate(records: Sequence[dict], seconds: float, todo: int, workers: int) -> dict:
    """Throughput and projections from the first images of a run.

    Args:
        records (Sequence[dict]): The calibration images' records (failed ones left out).
        seconds (float): Their wall time in one process.
        todo (int): Images this run still has to process.
        workers (int): Processes of the run (capped at the CPU count for the projection).

    Returns:
        dict: ``images, seconds_per_image, images_per_second (projected, all workers),
        bytes_per_image, projected_seconds, projected_bytes, imagenet_seconds, imagenet_bytes``.
    """
    n = max(len(records), 1)
    per_image = seconds / n
    procs = max(1, min(workers, os.cpu_count() or 1))
    rate = procs / per_image if per_image > 0 else float('inf')
    empty = len(shard_bytes([]))
    per_byte = (len(shard_bytes(records)) - empty) / n if records else 0.0
    return dict(images=len(records), seconds_per_image=round(per_image, 4),
                processes=procs, images_per_second=round(rate, 3),
                bytes_per_image=round(per_byte, 1),
                projected_seconds=round(todo / rate, 1), projected_bytes=int(todo * per_byte),
                imagenet_seconds=round(IMAGENET_TRAIN_IMAGES / rate, 1),
                imagenet_bytes=int(IMAGENET_TRAIN_IMAGES * per_byte))


def _duration(s: float) -> str:
    return f'{s:.0f} s' if s < 120 else f'{s / 60:.1f} min' if s < 7200 else f'{s / 3600:.1f} h'


def _size(b: float) -> str:
    for unit in ('B', 'KB', 'MB', 'GB'):
        if b < 1000 or unit == 'GB':
            return f'{b:.0f} {unit}' if unit == 'B' else f'{b:.1f} {unit}'
        b /= 1000
    return ''


def describe_calibration(c: dict, todo: int) -> str:
    return (f'[generate_proposals] calibration on {c["images"]} image(s): '
            f'{c["seconds_per_image"]:.3f} s/image in one process -> ~{c["images_per_second"]:.1f} '
            f'images/s with {c["processes"]} process(es); ~{c["bytes_per_image"]:.0f} bytes/image '
            f'on disk. Projected: {_duration(c["projected_seconds"])} and '
            f'{_size(c["projected_bytes"])} for the {todo} image(s) to do; '
            f'{_duration(c["imagenet_seconds"])} and {_size(c["imagenet_bytes"])} for ImageNet '
            f'({IMAGENET_TRAIN_IMAGES:,} images) at this rate')


# ------------------------------------------------------------------------------- the engine
@contextmanager
def search_runner(ss_cfg: SearchConfig, filt: ProposalFilter, workers: int) -> Iterator[Runner]:
    """Selective search over items, in-process or in a pool of ``workers`` processes."""
    _worker_init(ss_cfg, filt)
    if workers <= 1:
        yield lambda items: map(_worker_run, items)
        return
    import multiprocessing as mp
    with mp.get_context('fork').Pool(workers, _worker_init, (ss_cfg, filt)) as pool:
        yield lambda items: pool.imap_unordered(_worker_run, items, chunksize=1)


def write_shards(items: Sequence[Item],
                 out_dir: str,
                 run: Runner,
                 source: str,
                 generator: Mapping,
                 filter_cfg: Mapping,
                 shard_size: int = DEFAULT_SHARD_SIZE,
                 overwrite: bool = False,
                 max_shards: Optional[int] = None,
                 calibrate_images: int = 0,
                 workers: int = 1,
                 log: Callable[[str], None] = print,
                 log_every: int = 100,
                 progress: Optional[bool] = None) -> dict:
    """Write (or resume) a shard directory; ``run`` turns items into records.

    Args:
        items (Sequence[tuple[str, str]]): ``(path, key)`` per image, in any order (sorted by
            key here).
        out_dir (str): The shard directory (created).
        run (Callable): Items -> records (``file_name, width, height, boxes, ...`` or
            ``file_name, error``), in any order.
        source (str): ``selective_search`` or ``annotations:<file>`` (for the manifest).
        generator, filter_cfg (Mapping): Settings recorded in the manifest; a rerun must match.
        shard_size (int): Images per shard.
        overwrite (bool): Discard an existing shard directory's files first.
        max_shards (int, optional): Stop after writing this many shards (the run stays
            resumable; the manifest says ``complete: false``).
        calibrate_images (int): Time this many images first, one at a time, and log the
            throughput and the projected time and disk (0: no calibration).
        workers (int): Processes ``run`` uses (for the projection only).
        log (Callable): Line printer.
        log_every (int): A progress line every this many images when no bar is shown.
        progress (bool, optional): tqdm bar on stderr; default: when stderr is a terminal.

    Returns:
        dict: The summary (also written to ``out_dir/summary.json``).

    Raises:
        ValueError: Duplicate or multi-line keys, a bad shard size, or an existing manifest of
            another run (naming what changed).
    """
    if shard_size < 1:
        raise ValueError(f'--shard-size must be >= 1, got {shard_size}')
    items = sorted(items, key=lambda it: it[1])
    keys = [k for _, k in items]
    if len(set(keys)) != len(keys):
        raise ValueError('generate_proposals: image keys must be unique')
    if any('\n' in k or '\r' in k for k in keys):
        raise ValueError('generate_proposals: an image name contains a line break')
    header = make_header(keys, shard_size, source, generator, filter_cfg)
    os.makedirs(out_dir, exist_ok=True)
    manifest_path = osp.join(out_dir, MANIFEST_NAME)
    if overwrite:
        _clear(out_dir)
    if osp.exists(manifest_path):
        manifest, _ = read_manifest(out_dir)
        _check_header(out_dir, manifest, header, keys)
    else:
        write_atomic(osp.join(out_dir, KEYS_NAME), '\n'.join(keys).encode('utf-8'))
        shards = [dict(file=shard_file_name(i), first=f, count=min(shard_size, len(keys) - f),
                       done=False) for i, f in enumerate(range(0, len(keys), shard_size))]
        manifest = dict(header, complete=False, shards=shards)
        write_json_atomic(manifest_path, manifest)
    plan: List[Tuple[int, str]] = []  # (shard, status) of the shards to (re)do
    for i, rec in enumerate(manifest['shards']):
        status = _shard_status(out_dir, rec)
        if status != 'done':
            plan.append((i, status))
            if status not in ('not written', 'retry'):
                log(f'[generate_proposals] {rec["file"]}: {status}; redoing it')
    done_images = len(keys) - sum(manifest['shards'][s]['count'] for s, _ in plan)
    if max_shards is not None:
        plan = plan[:max_shards]

    def todo_of(shard: int, status: str) -> List[Item]:
        rec = manifest['shards'][shard]
        chunk = items[rec['first']:rec['first'] + rec['count']]
        if status == 'retry':
            failed = set(rec['failed'])
            return [it for it in chunk if it[1] in failed]
        return chunk

    todo = [it for s, st in plan for it in todo_of(s, st)]
    log(f'[generate_proposals] {len(keys)} images in {len(manifest["shards"])} shard(s) of '
        f'{shard_size} under {out_dir}: {len(manifest["shards"]) - len(plan)} shard(s) done, '
        f'{len(plan)} to write ({len(todo)} images)')
    cache: Dict[str, dict] = {}
    calib = None
    calib_keys: List[str] = []
    start = time.perf_counter()
    if calibrate_images and todo:
        for item in todo[:calibrate_images]:  # one at a time: the time of one image
            cache[item[1]] = next(iter(run([item])))
            calib_keys.append(item[1])
        good = [r for r in cache.values() if 'error' not in r]
        calib = calibrate(good, time.perf_counter() - start, len(todo), workers)
        log(describe_calibration(calib, len(todo)))
    new: List[dict] = []
    failed: List[dict] = []
    written = processed = 0
    bar = _progress_bar(len(keys), done_images + len(cache), progress)
    with bar:
        for shard, status in plan:
            rec = manifest['shards'][shard]
            todo_items = todo_of(shard, status)
            results = {k: cache.pop(k) for k in [it[1] for it in todo_items] if k in cache}
            for r in run([it for it in todo_items if it[1] not in results]):
                results[r['file_name']] = r
                bar.update(1)
                processed += 1
                if bar.disable and log_every and processed % log_every == 0:
                    rate = (processed + len(calib_keys)) / max(time.perf_counter() - start, 1e-9)
                    log(f'[generate_proposals] {processed + len(calib_keys)}/{len(todo)} '
                        f'({rate:.2f} images/s)')
            if status == 'retry':
                old = read_shard(osp.join(out_dir, rec['file']))
                results.update({r['file_name']: dict(r, resumed=True)
                                for r in records_of_shard(old)})
            chunk = [k for _, k in items[rec['first']:rec['first'] + rec['count']]]
            records = [results[k] for k in chunk if 'error' not in results[k]]
            bad = [results[k] for k in chunk if 'error' in results[k]]
            content = shard_bytes(records)
            write_atomic(osp.join(out_dir, rec['file']), content)
            rec.update(done=True, num_boxes=int(sum(len(r['boxes']) for r in records)),
                       bytes=len(content), sha256=hashlib.sha256(content).hexdigest(),
                       failed=[r['file_name'] for r in bad])
            manifest['complete'] = all(s.get('done') and not s.get('failed')
                                       for s in manifest['shards'])
            write_json_atomic(manifest_path, manifest)
            new += [r for r in records if not r.get('resumed')]
            failed += bad
            written += 1
            if failed:
                bar.set_postfix(failed=len(failed), refresh=False)
    wall = time.perf_counter() - start
    left = [s['file'] for s in manifest['shards'] if not s.get('done')]
    summary = summarize(new, wall, num_skipped=done_images, failed=failed)
    summary.update(images=len(keys), output=out_dir, shard_size=shard_size,
                   shards=len(manifest['shards']), shards_written_now=written,
                   shards_left=len(left), complete=manifest['complete'],
                   bytes_on_disk=int(sum(s.get('bytes', 0) for s in manifest['shards'])),
                   calibration=calib, source=source, generator=dict(generator),
                   filter=dict(filter_cfg))
    write_json_atomic(osp.join(out_dir, SUMMARY_NAME), summary, indent=2)
    if left:
        log(f'[generate_proposals] stopped after {written} shard(s) (--max-shards); '
            f'{len(left)} left: run the same command again to continue')
    return summary


def generate_sharded(items: Sequence[Item],
                     out_dir: str,
                     ss_cfg: Optional[SearchConfig] = None,
                     filt: Optional[ProposalFilter] = None,
                     shard_size: int = DEFAULT_SHARD_SIZE,
                     workers: int = 1,
                     calibrate_images: int = 8,
                     **kwargs) -> dict:
    """Selective search over ``items`` into a shard directory (see :func:`write_shards` for
    ``overwrite, max_shards, log, log_every, progress``)."""
    ss_cfg = ss_cfg or SelectiveSearchConfig()
    filt = filt or ProposalFilter()
    with search_runner(ss_cfg, filt, workers) as run:
        return write_shards(items, out_dir, run, 'selective_search', asdict(ss_cfg), asdict(filt),
                            shard_size=shard_size, calibrate_images=calibrate_images,
                            workers=workers, **kwargs)
