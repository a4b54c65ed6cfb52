"""The object proposals file of SoCo: its format and its reader (what the dataset needs).

The proposals are generated offline by ``tools/generate_proposals.py`` (selective search,
filters, fall-backs and the writer live in the ``tools/proposals`` package); training only
reads them.

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
                  "fallback": "none"}],     # none | ratio | side | whole_image (below)
      "annotations": [{"id": 1, "image_id": 1, "bbox": [x, y, w, h], "area": w * h,
                       "category_id": 1, "iscrowd": 0}],
      "categories": [{"id": 1, "name": "proposal", "supercategory": "proposal"}]
    }

Filters and fall-backs, applied by the generator (SoCo §3.1 and its official filter scripts): a
box is kept when ``min_side <= w, h``, ``min_ratio <= w / h <= max_ratio`` and
``min_rel_size <= sqrt(w * h) / sqrt(W * H) <= max_rel_size`` (optionally also: no IoU
``>= max_overlap`` with an earlier kept box, and at most ``max_per_image`` boxes). An image
where no box passes keeps the boxes that pass the side and aspect tests only
(``fallback="ratio"``); with ``side_fallback`` (on for ``--method official``, as SoCo's
``filter_ss_proposals_json_post_no_prop.py:25-32``) an image still without boxes keeps those that
pass the side test alone (``fallback="side"``); an image where none of those exists gets one box,
the whole image (``fallback="whole_image"``). Every image in the file therefore has at least one
proposal.

SoCo's official json (``selective_search/filter_ss_proposals_json.py:34, 55, 67`` of
hologerry/SoCo) is read too: ``{"<base name without extension>": [[x, y, w, h], ...]}``, e.g.
``{"n01440764_10026": [[12, 40, 200, 150], ...]}`` for ``train/n01440764/n01440764_10026.JPEG``.
Its ``w`` is ``max_x - min_x`` of the region, which SoCo's loader reads as ``x2 = x + w - 1``
inclusive (``contrast/data/props_utils.py:41-42``): the same pixels as this module's half-open
convention, so the boxes are used as they are. No image sizes are stored, and a list may be empty
(an image no fall-back gave a box): SoCo then uses the whole image
(``contrast/data/dataset.py:442-443``), and so does :class:`ProposalImageDataset`.
:func:`proposal_key` gives the key each format files an image under.

**Shard directories** (``tools/generate_proposals.py --shard-size N``, read lazily by
:class:`ShardedProposals`), for ImageNet-size image lists, where one json (1.1 GB for SoCo's
ImageNet file) has to be parsed whole into every data-loader process::

    OUT/manifest.json     # small: format, version, settings, one record per shard
    OUT/keys.txt          # the image keys, sorted, one per line (key i is in shard i // N)
    OUT/shard-00000.npz   # the proposals of images 0 .. N-1, numpy arrays, no pickle
    OUT/shard-00001.npz   # ...
    OUT/summary.json      # statistics of the last run

``manifest.json``::

    {"format": "mcl_plugin.proposal_shards", "version": 1, "box_format": "...",
     "source": "selective_search" | "annotations:<coco json>",
     "generator": {...}, "filter": {...}, "shard_size": 10000,
     "num_images": 1281167, "keys_sha256": "<sha256 of keys.txt's lines joined by \\n>",
     "complete": true,            # every shard written, no image failed
     "shards": [{"file": "shard-00000.npz", "first": 0, "count": 10000, "done": true,
                 "num_boxes": 247000, "bytes": 2531000, "sha256": "...",
                 "failed": []}, ...]}   # keys of images that could not be read (left out)

Each shard is an uncompressed ``.npz`` (``numpy.savez``; ``numpy.load`` reads it) of
``keys`` (utf-8 bytes, the shard's keys in order, failed images left out), ``offsets`` (int64,
``n + 1``: the boxes of image ``i`` are ``boxes[offsets[i]:offsets[i + 1]]``), ``boxes``
(``(M, 4)`` xywh times ``box_divisor`` (int32 scalar): int16 whole pixels (divisor 1) for
full-resolution selective search and COCO's integer boxes, int16 tenths of a pixel (divisor 10)
for ``--max-side`` runs, float32 otherwise), and per image ``width``, ``height``,
``num_raw``, ``num_filtered`` (int32) and ``fallback`` (uint8, index into :data:`FALLBACKS`).
Why this layout: boxes as one int16 array take 8 bytes per box instead of ~25 in json (about
255 bytes per ImageNet image with the official generator's ~25 boxes, ~330 MB for ImageNet instead
of 1.1 GB); the reader memory-maps a shard (uncompressed members are plain ``.npy`` data at
known offsets), so opening one costs ~0.1 ms, an item reads only its own boxes, and worker
processes share the pages; and one file per N images makes a shard the unit of atomic writing
(tmp + rename), of resuming (its sha256 is in the manifest) and of lazy loading. Image sizes live in
the shards, not in the manifest, because only the item being loaded needs them.
"""
import hashlib
import json
import os.path as osp
import posixpath
from collections import OrderedDict
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

FORMAT_NAME = 'mcl_plugin.proposals'
FORMAT_VERSION = 1
BOX_FORMAT = 'xywh, top-left corner, pixels of the original image (COCO bbox)'
FALLBACKS = ('none', 'ratio', 'side', 'whole_image')
#: ``ProposalTable.format`` of this plugin's file and of SoCo's official json
FORMATS = ('mcl_plugin', 'soco_official')


class ProposalTable(dict):
    """``{key: dict(boxes, width, height, fallback)}`` read from a proposals file, with the
    file's ``format`` (one of :data:`FORMATS`) and its ``source`` (for messages)."""

    def __init__(self, entries: Dict[str, dict], format: str, source: str = '<proposals>'):
        super().__init__(entries)
        if format not in FORMATS:
            raise ValueError(f'format must be one of {FORMATS}, got {format!r}')
        self.format = format
        self.source = source

    def key_of(self, rel_path: str) -> str:
        """The key this file lists an image under; see :func:`proposal_key`."""
        return proposal_key(rel_path, self.format)


def proposal_key(rel_path: str, format: str = 'mcl_plugin') -> str:
    """The key of an image in a proposals file of ``format``.

    ``mcl_plugin``: the path relative to the image folder, ``/``-separated (``a/b.jpg``).
    ``soco_official``: the base name without its extension (``b``), as SoCo's writer keys it
    (``os.path.splitext(filename)[0]``, ``generate_imagenet_ss_proposals.py:43`` and
    ``filter_ss_proposals_json.py:34``; its loader's ``basename.split('.')[0]``,
    ``contrast/data/dataset.py:86``, is the same for names with one dot).
    """
    rel_path = rel_path.replace('\\', '/')
    if format == 'mcl_plugin':
        return rel_path
    if format == 'soco_official':
        return posixpath.splitext(posixpath.basename(rel_path))[0]
    raise ValueError(f'format must be one of {FORMATS}, got {format!r}')


def parse_proposals(data: object, source: str = '<proposals>') -> ProposalTable:
    """Turn a loaded proposals json into ``{key: dict(boxes, width, height, fallback)}``.

    ``boxes`` is a ``(N, 4)`` float32 xywh array; ``width``/``height`` are None for SoCo's
    official format (which does not store them) and ``fallback`` is ``'none'`` there. The
    keys are the file's own (see :func:`proposal_key`); the table's ``format`` says which.

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
        return ProposalTable(out, 'mcl_plugin', source)
    if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        out = {}
        for name, boxes in data.items():
            try:
                arr = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
            except ValueError as e:
                raise ValueError(f'{source}: the boxes of {name!r} are not [[x, y, w, h], ...] '
                                 f'({e}).') from None
            out[name] = dict(boxes=arr, width=None, height=None, fallback='none')
        return ProposalTable(out, 'soco_official', source)
    raise ValueError(f'{source} is not a proposals file: expected the COCO-style layout '
                     '{"images": [...], "annotations": [...]} written by '
                     'tools/generate_proposals.py, or SoCo\'s {"<base name without extension>": '
                     '[[x, y, w, h], ...]}.')


def load_proposals(path: str) -> ProposalTable:
    """Read a proposals json (either format), or a whole shard directory (or its
    ``manifest.json``) into one table; see :func:`parse_proposals`. For training on shards use
    :class:`ShardedProposals`, which loads one shard at a time."""
    if is_shard_dir(path):
        shards = ShardedProposals(path, cache_size=1)
        return ProposalTable(dict(shards.items()), 'mcl_plugin', repr(path))
    with open(path, encoding='utf-8') as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'proposals file {path!r} is not valid json ({e}); was its '
                             'generation interrupted? Re-run tools/generate_proposals.py (it '
                             'resumes).') from None
    return parse_proposals(data, repr(path))


# ------------------------------------------------------------------------------ shard folders
SHARDS_FORMAT_NAME = 'mcl_plugin.proposal_shards'
SHARDS_VERSION = 1
MANIFEST_NAME = 'manifest.json'
KEYS_NAME = 'keys.txt'
SUMMARY_NAME = 'summary.json'
#: images per shard unless ``--shard-size`` says otherwise (129 shards for ImageNet)
DEFAULT_SHARD_SIZE = 10_000
SHARD_ARRAYS = ('keys', 'offsets', 'boxes', 'box_divisor', 'width', 'height', 'fallback',
                'num_raw', 'num_filtered')
_RESUME_HINT = ('re-run tools/generate_proposals.py with the same arguments: it resumes and '
                'writes only the missing shards')


def shard_file_name(index: int) -> str:
    """``shard-00042.npz``: the file of shard ``index``."""
    return f'shard-{index:05d}.npz'


def is_shard_dir(path: str) -> bool:
    """Whether ``path`` names a shard directory (a folder, or its ``manifest.json``)."""
    return osp.isdir(path) or osp.basename(path) == MANIFEST_NAME


def keys_digest(keys: Sequence[str]) -> str:
    """sha256 of the keys joined by newlines (the ``keys_sha256`` of a manifest)."""
    h = hashlib.sha256()
    for i, key in enumerate(keys):
        h.update((('\n' if i else '') + key).encode('utf-8'))
    return h.hexdigest()


def file_sha256(path: str) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def read_manifest(path: str) -> Tuple[dict, str]:
    """Read and check the manifest of a shard directory.

    Args:
        path (str): The directory or its ``manifest.json``.

    Returns:
        tuple: ``(manifest, directory)``.

    Raises:
        FileNotFoundError: No manifest.
        ValueError: Not a shard manifest, or another version.
    """
    root = path if osp.isdir(path) else osp.dirname(path)
    file = osp.join(root, MANIFEST_NAME)
    if not osp.isfile(file):
        raise FileNotFoundError(f'{root!r} is not a proposal shard directory: it has no '
                                f'{MANIFEST_NAME}. Generate one with tools/generate_proposals.py '
                                f'--out {root} --shard-size N.')
    try:
        with open(file, encoding='utf-8') as f:
            manifest = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{file!r} is not valid json ({e}); {_RESUME_HINT}.') from None
    if not isinstance(manifest, dict) or manifest.get('format') != SHARDS_FORMAT_NAME:
        raise ValueError(f'{file!r} is not a proposal shard manifest (format '
                         f'{SHARDS_FORMAT_NAME!r} expected).')
    if manifest.get('version') != SHARDS_VERSION:
        raise ValueError(f'{file!r} has shard format version {manifest.get("version")}; this '
                         f'reader knows version {SHARDS_VERSION}. Regenerate it with this '
                         'version of tools/generate_proposals.py.')
    return manifest, root


def read_keys(root: str, manifest: dict) -> List[str]:
    """The sorted image keys of a shard directory, checked against the manifest."""
    file = osp.join(root, KEYS_NAME)
    if not osp.isfile(file):
        raise FileNotFoundError(f'{file!r} is missing from the shard directory; {_RESUME_HINT}.')
    with open(file, encoding='utf-8') as f:
        keys = f.read().split('\n')
    if keys == ['']:
        keys = []
    if len(keys) != manifest['num_images'] or keys_digest(keys) != manifest['keys_sha256']:
        raise ValueError(f'{file!r} does not match {MANIFEST_NAME} ({len(keys)} keys, '
                         f'{manifest["num_images"]} in the manifest, or another sha256): the '
                         f'directory was modified. Regenerate it (tools/generate_proposals.py '
                         '--overwrite).')
    return keys


def _map_npz(path: str) -> Dict[str, np.ndarray]:
    """The arrays of an uncompressed ``.npz`` as read-only views of one memory map of the file:
    nothing is read until used, and the pages are shared by every process mapping it."""
    import mmap
    import struct
    import zipfile
    arrays: Dict[str, Tuple[int, tuple, np.dtype, bool]] = {}
    with zipfile.ZipFile(path) as zf, open(path, 'rb') as f:
        size = osp.getsize(path)
        for name in SHARD_ARRAYS:
            info = zf.getinfo(name + '.npy')
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f'member {name}.npy is compressed (shards are written with '
                                 'numpy.savez, uncompressed)')
            f.seek(info.header_offset)
            local = f.read(30)
            if local[:4] != b'PK\x03\x04':
                raise ValueError(f'no zip entry header for {name}.npy')
            f.seek(info.header_offset + 30 + sum(struct.unpack('<HH', local[26:30])))
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                           np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            if dtype.hasobject:
                raise ValueError(f'{name}.npy holds Python objects')
            offset = f.tell()
            if offset + int(np.prod(shape)) * dtype.itemsize > size:
                raise ValueError(f'{name}.npy runs past the end of the file')
            arrays[name] = (offset, shape, dtype, fortran)
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    return {name: np.ndarray(shape, dtype, buffer=buf, offset=offset,
                             order='F' if fortran else 'C')
            for name, (offset, shape, dtype, fortran) in arrays.items()}


def read_shard(path: str, expected_keys: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """Map one shard file (read-only memory map: an image's boxes are read when asked for) and
    check its structure and, when ``expected_keys`` is given, its image count and its first and
    last key (a shard of another run; the full content is checked by the generator's sha256).

    Raises:
        FileNotFoundError: The file is missing (with the command that writes it).
        ValueError: It is damaged or belongs to another run.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'proposal shard {path!r} is missing (deleted, or its run was '
                                f'interrupted); {_RESUME_HINT}.')
    try:
        data = _map_npz(path)
    except Exception as e:  # noqa: BLE001 - zip, key and format errors alike
        raise ValueError(f'proposal shard {path!r} cannot be read ({type(e).__name__}: {e}); it '
                         f'is damaged or truncated: delete it and {_RESUME_HINT}.') from None
    n = len(data['keys'])
    if (len(data['offsets']) != n + 1 or data['offsets'][-1] != len(data['boxes'])
            or any(len(data[k]) != n for k in ('width', 'height', 'fallback'))):
        raise ValueError(f'proposal shard {path!r} is inconsistent (array lengths); delete it '
                         f'and {_RESUME_HINT}.')
    if expected_keys is not None:
        ends = [k.decode('utf-8') for k in data['keys'][[0, -1]].tolist()] if n else []
        want = [expected_keys[0], expected_keys[-1]] if len(expected_keys) else []
        if n != len(expected_keys) or ends != want:
            raise ValueError(f'proposal shard {path!r} holds other images than its manifest '
                             f'lists ({n} images, {ends[:1]} .. {ends[1:]}; expected '
                             f'{len(expected_keys)}, {want[:1]} .. {want[1:]}): it comes from '
                             f'another run. Delete it and {_RESUME_HINT}.')
    return data


def shard_entry(data: Dict[str, np.ndarray], row: int) -> dict:
    """Image ``row`` of a loaded shard as ``dict(boxes, width, height, fallback)``."""
    lo, hi = int(data['offsets'][row]), int(data['offsets'][row + 1])
    boxes, divisor = data['boxes'][lo:hi], int(data['box_divisor'])
    if divisor != 1:  # int16 tenths of a pixel; in float64, as a json parser reads "63.9"
        boxes = boxes.astype(np.float64) / divisor
    return dict(boxes=boxes.astype(np.float32),
                width=int(data['width'][row]),
                height=int(data['height'][row]),
                fallback=FALLBACKS[int(data['fallback'][row])])


class ShardedProposals:
    """Lazy reader of a proposal shard directory (format in the module docstring).

    The manifest and the key list are read at init; a shard is opened (memory-mapped) when one of
    its images is asked for and kept in an LRU cache. Each data-loader worker holds its own
    cache (the cache is not pickled).

    Args:
        path (str): The directory or its ``manifest.json``.
        cache_size (int): Shards kept open (at least 1). A shard is memory-mapped: an open one
            costs one file descriptor and the pages read (page cache, shared by the workers);
            opening one costs ~1 ms (zip directory and array headers), an item of an open one
            ~0.03 ms. With random sampling over S shards a lookup opens a shard with
            probability ``1 - cache_size / S``. The default, 256, keeps all of ImageNet's 129
            shards of 10,000 open after their first use.
        require_complete (bool): Refuse a directory whose run has not finished.

    Raises:
        FileNotFoundError, ValueError: A missing or inconsistent manifest or key list, or an
            unfinished run, each naming the file and the fix.
    """

    format = 'mcl_plugin'

    def __init__(self, path: str, cache_size: int = 256, require_complete: bool = True) -> None:
        if cache_size < 1:
            raise ValueError(f'cache_size must be >= 1, got {cache_size}')
        self.manifest, self.root = read_manifest(path)
        self.source = repr(self.root)
        self.cache_size = cache_size
        shards = self.manifest['shards']
        if require_complete and not all(s.get('done') for s in shards):
            left = [s['file'] for s in shards if not s.get('done')]
            raise ValueError(f'proposal shard directory {self.root!r} is unfinished: '
                             f'{len(left)} of {len(shards)} shards not written yet (e.g. '
                             f'{left[:3]}); {_RESUME_HINT}.')
        keys = read_keys(self.root, self.manifest)
        self._shard_keys: List[List[str]] = []
        for s in shards:
            failed = set(s.get('failed', ()))
            self._shard_keys.append([k for k in keys[s['first']:s['first'] + s['count']]
                                     if k not in failed])
        self._cache: 'OrderedDict[int, Dict[str, np.ndarray]]' = OrderedDict()
        self.num_loads = 0

    def __len__(self) -> int:
        return sum(len(k) for k in self._shard_keys)

    def keys(self) -> Iterator[str]:
        """The keys that have proposals (failed images left out), sorted."""
        for keys in self._shard_keys:
            yield from keys

    def index(self) -> Dict[str, Tuple[int, int]]:
        """``{key: (shard, row)}`` of every image with proposals."""
        return {k: (s, r) for s, keys in enumerate(self._shard_keys) for r, k in enumerate(keys)}

    @property
    def loaded_shards(self) -> List[int]:
        """Shards in the cache, least recently used first."""
        return list(self._cache)

    def load(self, shard: int) -> Dict[str, np.ndarray]:
        """The arrays of one shard, from the cache or the file."""
        if shard in self._cache:
            self._cache.move_to_end(shard)
            return self._cache[shard]
        file = osp.join(self.root, self.manifest['shards'][shard]['file'])
        data = read_shard(file, self._shard_keys[shard])
        self.num_loads += 1
        self._cache[shard] = data
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return data

    def entry(self, shard: int, row: int) -> dict:
        """``dict(boxes, width, height, fallback)`` of one image."""
        return shard_entry(self.load(shard), row)

    def items(self) -> Iterator[Tuple[str, dict]]:
        """Every ``(key, entry)``, shard by shard (loads them all, in turn)."""
        for s, keys in enumerate(self._shard_keys):
            for r, key in enumerate(keys):
                yield key, self.entry(s, r)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state['_cache'] = OrderedDict()  # each worker loads what it needs
        return state


__all__ = [
    'parse_proposals', 'load_proposals', 'proposal_key', 'ProposalTable', 'FORMAT_NAME',
    'FORMAT_VERSION', 'BOX_FORMAT', 'FALLBACKS', 'FORMATS', 'ShardedProposals', 'read_manifest',
    'read_keys', 'read_shard', 'shard_entry', 'shard_file_name', 'is_shard_dir', 'keys_digest',
    'file_sha256', 'SHARDS_FORMAT_NAME', 'SHARDS_VERSION', 'MANIFEST_NAME', 'KEYS_NAME',
    'SUMMARY_NAME', 'DEFAULT_SHARD_SIZE', 'SHARD_ARRAYS'
]
