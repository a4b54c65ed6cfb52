"""Unlabeled images with their selective-search proposals (SoCo)."""
import logging
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from mmengine.logging import print_log

from mcl_plugin.registry import DATASETS

from .proposals import load_proposals
from .unlabeled import UnlabeledImageDataset

ON_MISSING = ('error', 'whole_image', 'skip')
_MAX_LISTED = 10


@DATASETS.register_module()
class ProposalImageDataset(UnlabeledImageDataset):
    """:class:`UnlabeledImageDataset` whose items also carry object proposals.

    Images are listed exactly like :class:`UnlabeledImageDataset` (folder scan, image list or
    COCO json); each one is looked up in ``proposal_file`` by its path relative to the image
    folder (``tools/generate_proposals.py`` writes exactly these names). SoCo's official json
    (``{"<base name>": [[x, y, w, h], ...]}``) is accepted too: there a name missing as a
    relative path is looked up by its base name.

    Every item gets ``proposals`` ((N, 4) float32 ``x1, y1, x2, y2`` in the image's pixels,
    N >= 1) and, when the json records it, ``proposal_img_size`` ``(w, h)`` (``SoCoViews``
    checks it against the decoded image).

    Args:
        proposal_file (str): The proposals json, relative to ``data_root`` unless absolute.
        on_missing (str): Images absent from the json: ``'error'`` (default: raise, listing
            them), ``'whole_image'`` (use the whole image as the only proposal, warn) or
            ``'skip'`` (drop them, warn).
        **kwargs: :class:`UnlabeledImageDataset` arguments.

    Raises:
        FileNotFoundError: ``proposal_file`` does not exist.
        ValueError: It is not a proposals file, or images are missing with ``on_missing='error'``
            or no image is left.
    """

    def __init__(self, proposal_file: str, on_missing: str = 'error', **kwargs) -> None:
        if on_missing not in ON_MISSING:
            raise ValueError(f'on_missing must be one of {ON_MISSING}, got {on_missing!r}')
        self.proposal_file = proposal_file
        self.on_missing = on_missing
        self.num_missing = 0
        self.num_empty = 0
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
        # SoCo's official json is keyed by base names (no sizes stored)
        by_base: Optional[Dict[str, dict]] = None
        if table and all(v['width'] is None for v in table.values()):
            by_base = {osp.basename(k): v for k, v in table.items()}
        out, missing, empty = [], [], 0
        for item in items:
            name = osp.relpath(item['img_path'], self.img_prefix).replace(osp.sep, '/')
            entry = table.get(name)
            if entry is None and by_base is not None:
                entry = by_base.get(osp.basename(name))
            if entry is None:
                missing.append(name)
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
        source = f'{len(items)} images of {self.ann_file or self.img_prefix!r}'
        if missing:
            shown = ', '.join(missing[:_MAX_LISTED]) + (' ...' if len(missing) > _MAX_LISTED
                                                       else '')
            msg = (f'{len(missing)} of the {source} have no entry in the proposals file '
                   f'{path!r} (it lists {len(table)} images), e.g. {shown}. The json does not '
                   'match this image list: regenerate it with tools/generate_proposals.py on '
                   'the same folder/list, or check data_root/data_prefix/ann_file.')
            if self.on_missing == 'error':
                raise ValueError(msg + " (on_missing='whole_image' or 'skip' to continue)")
            print_log(msg + f' on_missing={self.on_missing!r}: '
                      + ('they use the whole image as the only proposal.'
                         if self.on_missing == 'whole_image' else 'they are dropped.'),
                      logger='current', level=logging.WARNING)
        if empty:
            print_log(f'{empty} of the {source} have an empty proposal list in {path!r}: they '
                      'use the whole image as the only proposal.', logger='current',
                      level=logging.WARNING)
        if not out:
            raise ValueError(f'no image of the {source} has proposals in {path!r}.')
        for i, info in enumerate(out):
            info['sample_idx'] = i
        return out


__all__ = ['ProposalImageDataset']
