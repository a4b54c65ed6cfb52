"""On-disk cache of probe features: one file per (checkpoint, feature settings), so that several
probe seeds, and later calls, extract a checkpoint's features only once."""
import hashlib
import json
import os
import os.path as osp
import re
from typing import Callable, Dict, Mapping

import torch

from .backbone import RANDOM


def source_fingerprint(source: str) -> dict:
    """What identifies a checkpoint's content cheaply: absolute path, size and mtime (or
    ``random``)."""
    if source == RANDOM:
        return dict(source=RANDOM)
    st = os.stat(source)
    return dict(source=osp.abspath(source), size=st.st_size, mtime=int(st.st_mtime))


def cache_path(cache_dir: str, name: str, key: Mapping) -> str:
    """``<cache_dir>/<name>_<hash of key>.pt`` (``key`` must be JSON-serialisable)."""
    digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    safe = re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'checkpoint'
    return osp.join(cache_dir, f'{safe}_{digest}.pt')


def cached(path: str, compute: Callable[[], Dict[str, object]]) -> Dict[str, object]:
    """Load ``path`` if it exists, else ``compute()`` it and save it there (atomically).

    Args:
        path (str): Cache file.
        compute (Callable): Returns a dict of tensors and plain values.

    Returns:
        dict: The cached or computed dict; ``'cache_hit'`` says which.
    """
    if osp.exists(path):
        data = torch.load(path, map_location='cpu', weights_only=True)
        data['cache_hit'] = True
        return data
    data = compute()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    torch.save(data, tmp)
    os.replace(tmp, path)
    data = dict(data, cache_hit=False)
    return data
