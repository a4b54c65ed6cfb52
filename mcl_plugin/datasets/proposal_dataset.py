"""Unlabeled images with their selective-search proposals (SoCo)."""
import logging
import os.path as osp
from typing import Dict, List

import numpy as np
from mmengine.logging import print_log

from mcl_plugin.registry import DATASETS

from .proposals import ProposalTable, load_proposals
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

    Args:
        proposal_file (str): The proposals json, relative to ``data_root`` unless absolute.
        on_missing (str): Images absent from the json: ``'error'`` (default: raise, with
            examples of the keys looked up and of the file's keys), ``'whole_image'`` (explicit
            opt-in: the whole image is their only proposal -- SoCo's weak whole-image baseline
            for those images -- counted in ``num_missing`` and logged) or ``'skip'`` (drop
            them, logged). When no image at all is found the file does not belong to this
            image list, and every mode raises.
        **kwargs: :class:`UnlabeledImageDataset` arguments.

    Raises:
        FileNotFoundError: ``proposal_file`` does not exist.
        ValueError: It is not a proposals file; images are missing with ``on_missing='error'``;
            no image is found; or two images share a key of SoCo's format.
    """

    def __init__(self, proposal_file: str, on_missing: str = 'error', **kwargs) -> None:
        if on_missing not in ON_MISSING:
            raise ValueError(f'on_missing must be one of {ON_MISSING}, got {on_missing!r}')
        self.proposal_file = proposal_file
        self.on_missing = on_missing
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
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'proposal_file {path!r} does not exist. Generate it with\n  python '
                f'tools/generate_proposals.py {self.img_prefix} '
                + (f'--ann-file {self.ann_file} ' if self.ann_file else '') + f'--out {path}')
        table = load_proposals(path)
        self.proposal_format = table.format
        names = [osp.relpath(item['img_path'], self.img_prefix).replace(osp.sep, '/')
                 for item in items]
        keys = [table.key_of(n) for n in names]
        source = f'{len(items)} images of {self.ann_file or self.img_prefix!r}'
        _check_unique_keys(names, keys, table.format, path)
        out, missing, empty = [], [], 0
        for item, key in zip(items, keys):
            entry = table.get(key)
            if entry is None:
                missing.append(key)
                if self.on_missing == 'skip':
                    continue
                entry = dict(boxes=np.zeros((0, 4), np.float32), width=None, height=None)
            elif not len(entry['boxes']):
                empty += 1
            boxes = np.asarray(entry['boxes'], np.float32).reshape(-1, 4)
            info = dict(item)
            if entry.get('width') and entry.get('height'):
                info['proposal_img_size'] = (int(entry['width']), int(entry['height']))
            if len(boxes):
                info['proposals'] = np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]],
                                                   axis=1).astype(np.float32)
            else:
                # the whole image; SoCoViews clips the infinite corner to the decoded size
                w, h = info.get('proposal_img_size', (np.inf, np.inf))
                info['proposals'] = np.array([[0, 0, w, h]], np.float32)
            out.append(info)
        self.num_missing, self.num_empty = len(missing), empty
        if missing:
            msg = _mismatch_message(missing, names, keys, table)
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


def _mismatch_message(missing: List[str], names: List[str], keys: List[str],
                      table: ProposalTable) -> str:
    """Examples of both key forms and the likely fix."""
    rule = ('base name without extension (SoCo official format)'
            if table.format == 'soco_official' else
            'path relative to the image folder (tools/generate_proposals.py format)')
    file_keys = list(table)
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
