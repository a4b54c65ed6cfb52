"""Unlabeled images with their selective-search proposals (SoCo)."""
import logging
import os.path as osp
from typing import Dict, List, Mapping, Optional

import numpy as np
from mmengine.logging import print_log

from mcl_plugin.registry import DATASETS

from .proposals import ShardedProposals, is_shard_dir, load_proposals, proposal_key
from .unlabeled import UnlabeledImageDataset

ON_MISSING = ('error', 'whole_image', 'skip')
_MAX_LISTED = 10


@DATASETS.register_module()
class ProposalImageDataset(UnlabeledImageDataset):
    """:class:`UnlabeledImageDataset` whose items also carry object proposals.

    Images are listed exactly like :class:`UnlabeledImageDataset` (folder scan, image list or
    COCO json); each one is looked up in ``proposal_file`` under the key of the file's format
    (:func:`~mcl_plugin.datasets.proposals.proposal_key`): our file
    (``tools/generate_proposals.py``) by the path relative to the image folder, SoCo's official
    json (``{"<base name without extension>": [[x, y, w, h], ...]}``) by the base name without
    its extension, as SoCo's own loader does (``contrast/data/dataset.py:86``). A file whose
    keys do not match is refused, with examples of both key forms; nothing falls back
    silently.

    Every item gets ``proposals`` ((N, 4) float32 ``x1, y1, x2, y2`` in the image's pixels,
    N >= 1) and, when the json records it, ``proposal_img_size`` ``(w, h)`` (``SoCoViews``
    checks it against the decoded image). An image whose list is empty (possible in SoCo's
    json) gets the whole image, as in SoCo (``contrast/data/dataset.py:442-443``); it is
    counted in ``num_empty`` and logged.

    ``proposal_file`` may also be a shard directory (``tools/generate_proposals.py --out DIR``,
    format in :mod:`~mcl_plugin.datasets.proposals`) or its ``manifest.json``: only the manifest
    and the key list are read at init (items hold a shard number and a row); a shard is opened
    (memory-mapped) when one of its items is requested and kept in an LRU cache of
    ``proposal_cache_shards`` shards, per data-loader worker (:attr:`proposal_shards` is the
    reader). Images the
    generator could not read are missing, as above; ``num_empty`` counts json files only (the
    generator gives every image at least one box; an empty list in a shard still gets the whole
    image).

    Args:
        proposal_file (str): The proposals json or shard directory, relative to ``data_root``
            unless absolute.
        on_missing (str): Images absent from the json: ``'error'`` (default: raise, with
            examples of the keys looked up and of the file's keys), ``'whole_image'`` (explicit
            opt-in: the whole image is their only proposal -- SoCo's weak whole-image baseline
            for those images -- counted in ``num_missing`` and logged) or ``'skip'`` (drop
            them, logged). When no image at all is found the file does not belong to this
            image list, and every mode raises.
        proposal_cache_shards (int): Shards kept open per process (shard directories only;
            a shard is memory-mapped: an open one costs a file descriptor and the pages read,
            an item reads only its own boxes). Defaults to 256 (all of ImageNet's 129 shards).
        **kwargs: :class:`UnlabeledImageDataset` arguments.

    Raises:
        FileNotFoundError: ``proposal_file`` does not exist, or (when an item is loaded) its
            shard file is missing.
        ValueError: It is not a proposals file; images are missing with ``on_missing='error'``;
            no image is found; or two images share a key of SoCo's format.
    """

    def __init__(self, proposal_file: str, on_missing: str = 'error',
                 proposal_cache_shards: int = 256, **kwargs) -> None:
        if on_missing not in ON_MISSING:
            raise ValueError(f'on_missing must be one of {ON_MISSING}, got {on_missing!r}')
        self.proposal_file = proposal_file
        self.on_missing = on_missing
        self.proposal_cache_shards = proposal_cache_shards
        self.proposal_shards: Optional[ShardedProposals] = None
        self.num_missing = 0
        self.num_empty = 0
        self.proposal_format = ''
        super().__init__(**kwargs)

    def _proposal_path(self) -> str:
        path = self.proposal_file
        if not osp.isabs(path) and self.data_root:
            path = osp.join(self.data_root, path)
        return path

    def load_data_list(self) -> List[dict]:
        items = super().load_data_list()
        path = self._proposal_path()
        if not osp.exists(path):
            raise FileNotFoundError(
                f'proposal_file {path!r} does not exist. Generate it with\n  python '
                f'tools/generate_proposals.py {self.img_prefix} '
                + (f'--ann-file {self.ann_file} ' if self.ann_file else '') + f'--out {path}')
        lookup: Mapping[str, object]
        if is_shard_dir(path):
            self.proposal_shards = ShardedProposals(path, self.proposal_cache_shards)
            lookup, fmt = self.proposal_shards.index(), self.proposal_shards.format
        else:
            lookup = load_proposals(path)
            fmt = lookup.format
        self.proposal_format = fmt
        names = [osp.relpath(item['img_path'], self.img_prefix).replace(osp.sep, '/')
                 for item in items]
        keys = [proposal_key(n, fmt) for n in names]
        source = f'{len(items)} images of {self.ann_file or self.img_prefix!r}'
        _check_unique_keys(names, keys, fmt, path)
        out, missing, empty = [], [], 0
        for item, key in zip(items, keys):
            found = lookup.get(key)
            info = dict(item)
            if found is None:
                missing.append(key)
                if self.on_missing == 'skip':
                    continue
                _attach(info, dict(boxes=np.zeros((0, 4), np.float32)))
            elif self.proposal_shards is not None:
                # loaded from its shard when the item is requested (get_data_info)
                info['proposal_shard'], info['proposal_row'] = found
            else:
                empty += _attach(info, found)
            out.append(info)
        self.num_missing, self.num_empty = len(missing), empty
        if missing:
            msg = _mismatch_message(missing, names, keys, fmt, list(lookup))
            if len(missing) == len(items):
                raise ValueError(f'not one of the {source} is in the proposals file {path!r}: '
                                 f'it belongs to other images or uses other keys. {msg}')
            if self.on_missing == 'error':
                raise ValueError(f'{len(missing)} of the {source} have no entry in the proposals '
                                 f"file {path!r}. {msg} (on_missing='whole_image' gives them the "
                                 "whole image as the only proposal, on_missing='skip' drops "
                                 'them.)')
            print_log(f'{len(missing)} of the {source} have no entry in the proposals file '
                      f'{path!r}; on_missing={self.on_missing!r}: '
                      + ('they use the whole image as the only proposal. '
                         if self.on_missing == 'whole_image' else 'they are dropped. ') + msg,
                      logger='current', level=logging.WARNING)
        if empty:
            print_log(f'{empty} of the {source} have an empty proposal list in {path!r}: they '
                      'use the whole image as the only proposal.', logger='current',
                      level=logging.WARNING)
        for i, info in enumerate(out):
            info['sample_idx'] = i
        return out

    def get_data_info(self, idx: int) -> dict:
        """The item, with its proposals read from their shard when ``proposal_file`` is a shard
        directory (the shard is loaded on first use and kept in a small LRU cache)."""
        info = super().get_data_info(idx)
        if 'proposal_shard' in info:
            entry = self.proposal_shards.entry(info.pop('proposal_shard'),
                                               info.pop('proposal_row'))
            _attach(info, entry)
        return info


def _attach(info: dict, entry: Mapping) -> int:
    """Set ``proposals`` (xyxy) and ``proposal_img_size`` of an item from a proposals entry;
    returns 1 when the list was empty (the whole image is used), else 0."""
    boxes = np.asarray(entry['boxes'], np.float32).reshape(-1, 4)
    if entry.get('width') and entry.get('height'):
        info['proposal_img_size'] = (int(entry['width']), int(entry['height']))
    if len(boxes):
        info['proposals'] = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]],
                                           axis=1).astype(np.float32)
        return 0
    # the whole image; SoCoViews clips the infinite corner to the decoded size
    w, h = info.get('proposal_img_size', (np.inf, np.inf))
    info['proposals'] = np.array([[0, 0, w, h]], np.float32)
    return 1


def _examples(values: List[str]) -> str:
    shown = ', '.join(repr(v) for v in values[:_MAX_LISTED])
    return shown + (f' ... ({len(values)} in all)' if len(values) > _MAX_LISTED else '')


def _check_unique_keys(names: List[str], keys: List[str], fmt: str, path: str) -> None:
    """SoCo's base-name keys must name one image each."""
    seen: Dict[str, str] = {}
    clashes = []
    for name, key in zip(names, keys):
        if key in seen:
            clashes.append(f'{seen[key]!r} and {name!r} -> {key!r}')
        seen.setdefault(key, name)
    if clashes:
        raise ValueError(f'{len(clashes)} image(s) share a key of the {fmt} proposals file '
                         f'{path!r} (it keys images by base name without extension), e.g. '
                         + '; '.join(clashes[:3]) + '. Generate our own format for this image '
                         'list (tools/generate_proposals.py keys by relative path).')


def _mismatch_message(missing: List[str], names: List[str], keys: List[str], fmt: str,
                      file_keys: List[str]) -> str:
    """Examples of both key forms and the likely fix."""
    rule = ('base name without extension (SoCo official format)'
            if fmt == 'soco_official' else
            'path relative to the image folder (tools/generate_proposals.py format)')
    msg = (f'The file keys images by {rule}. Keys of this dataset not found, e.g. '
           f'{_examples(missing)}; keys in the file ({len(file_keys)}), e.g. '
           f'{_examples(file_keys)}.')
    # the most common mix-ups, named
    by_name = dict(zip(keys, names))
    stems = {osp.splitext(osp.basename(k))[0] for k in file_keys}
    if any(osp.splitext(osp.basename(by_name[m]))[0] in stems for m in missing[:100]):
        msg += (' The file has these images under another key form (e.g. with an extension or '
                'a folder): regenerate it with tools/generate_proposals.py, or write SoCo\'s '
                'official form (base name without extension).')
    else:
        msg += (' Regenerate it with tools/generate_proposals.py on the same folder/list, or '
                'check data_root/data_prefix/ann_file.')
    return msg


__all__ = ['ProposalImageDataset']
