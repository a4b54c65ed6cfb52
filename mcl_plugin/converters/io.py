# Copyright (c) mcl_plugin contributors. All rights reserved.
"""Reading source checkpoints and writing converted ones, for :mod:`.convert` and :mod:`.check`.

Sources are loaded on CPU with ``weights_only=True`` unless trusted (:func:`torch_load`); runner
checkpoints (``state_dict``), official SoCo / Swin files (``model``) and bare state dicts are
accepted and a leading ``module.`` is stripped (:func:`extract_state_dict`). Outputs are written
atomically and never over the source (:func:`check_output_path`, :func:`write_checkpoint`).
"""
import hashlib
import os
import os.path as osp
import re
from collections import OrderedDict
from typing import Callable, Dict, List, Mapping, Tuple

import torch

from ..utils.checkpoint import UnsafeCheckpointError, load_checkpoint_file
from .coverage import Shape

__all__ = [
    'ConversionError', 'StateDict', 'check_output_path', 'extract_state_dict',
    'load_source_checkpoint', 'sha256sum', 'state_shapes', 'torch_load', 'write_checkpoint'
]

StateDict = Dict[str, torch.Tensor]


class ConversionError(RuntimeError):
    """A checkpoint cannot be handed over; the message names the file, the keys and the fix."""


def state_shapes(state: Mapping[str, torch.Tensor]) -> Dict[str, Shape]:
    """Keys and shapes of a state dict, in order."""
    return OrderedDict((k, tuple(v.shape)) for k, v in state.items())


def sha256sum(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def torch_load(path: str, trust: bool = False) -> Tuple[object, List[str]]:
    """``torch.load`` on CPU with readable errors, never running pickled code unasked.

    Tensors-only files and runner checkpoints load with ``weights_only=True`` (the data types
    mmengine / mmpretrain / mcl_plugin checkpoints hold are allow-listed, see
    :mod:`mcl_plugin.utils.checkpoint`); a file that pickles anything else is refused unless
    ``trust`` is set (the tools' ``--trust-checkpoint``).

    Args:
        path (str): Local checkpoint file.
        trust (bool): Unpickle files outside the allow-list in full (runs their code).

    Returns:
        tuple[object, list[str]]: The loaded object and notes.

    Raises:
        ConversionError: If the file is missing, empty, truncated, not a checkpoint, or needs a
            full unpickle and ``trust`` is False.
    """
    if not osp.isfile(path):
        raise ConversionError(f'checkpoint file {path!r} does not exist.')
    size = osp.getsize(path)
    if size == 0:
        raise ConversionError(f'checkpoint file {path!r} is empty (0 bytes): the copy or '
                              'download did not finish.')
    try:
        return load_checkpoint_file(path, trust), []
    except UnsafeCheckpointError as exc:
        raise ConversionError(str(exc)) from None
    except Exception as exc:  # noqa: BLE001  (torch raises RuntimeError/EOFError/...)
        raise _unreadable(path, size, exc) from None


def _unreadable(path: str, size: int, exc: BaseException) -> ConversionError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
    return ConversionError(
        f'cannot read checkpoint {path!r} ({size} bytes): {type(exc).__name__}: {first[:200]}. '
        'The file looks truncated or corrupted (an interrupted download/copy or a run killed '
        'while saving) or is not a PyTorch checkpoint: re-copy / re-download it, or take an '
        'earlier checkpoint from the work_dir.')


def extract_state_dict(obj: object, path: str = '<checkpoint>') -> Tuple[StateDict, Dict]:
    """Return ``(state_dict, meta)`` from a loaded checkpoint object.

    Accepts ``{'state_dict': ...}`` (mmengine), ``{'model': ...}`` (SoCo / Swin official) and
    bare state dicts; strips a leading ``module.`` from every key.

    Raises:
        ConversionError: If no state dict of tensors is found.
    """
    if not isinstance(obj, Mapping):
        raise ConversionError(f'{path!r} holds a {type(obj).__name__}, not a checkpoint dict.')
    meta = obj.get('meta') if isinstance(obj.get('meta'), Mapping) else {}
    for key in ('state_dict', 'model'):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    state = OrderedDict(
        (re.sub(r'^module\.', '', k), v) for k, v in obj.items() if isinstance(v, torch.Tensor))
    if not state:
        raise ConversionError(f'{path!r} contains no tensors under state_dict/model or at the top '
                              f'level (top-level keys: {list(obj)[:10]}).')
    return state, dict(meta)


def load_source_checkpoint(path: str, trust: bool = False) -> Tuple[StateDict, Dict, List[str]]:
    """Load a checkpoint to convert (``trust``: see :func:`torch_load`).

    Returns:
        tuple: ``(state_dict, meta, notes)``.

    Raises:
        ConversionError: If it cannot be read (truncated, empty, not a checkpoint).
    """
    obj, notes = torch_load(path, trust)
    state, meta = extract_state_dict(obj, path)
    return state, meta, notes


def check_output_path(src: str, dst: str, suffix: str = '_mmdet.pth') -> None:
    """Refuse an output path that would overwrite the source or cannot be a file.

    The source is compared by identity (``os.path.samefile`` when ``dst`` exists, so symlinks,
    hard links and ``./x.pth`` vs ``x.pth`` are all caught; resolved real paths otherwise).
    ``suffix`` ends the output names the messages suggest (``'_detectron2.pkl'`` for the
    detectron2 export).

    Raises:
        ConversionError: Naming the clash and what to do.
    """
    same = (osp.exists(dst) and osp.exists(src) and osp.samefile(src, dst)) or \
        osp.realpath(src) == osp.realpath(dst)
    if same:
        raise ConversionError(
            f'the output {dst!r} is the source checkpoint {src!r} itself (same file): writing it '
            'would replace the pre-training checkpoint (EMA target, optimizer, RNG states) by the '
            'detector weights. Choose another output path, e.g. '
            f'{osp.splitext(dst)[0] + suffix!r}. Nothing was written.')
    if osp.isdir(dst):
        raise ConversionError(f'the output {dst!r} is a directory; give a file path such as '
                              f'{osp.join(dst, osp.splitext(osp.basename(src))[0] + suffix)!r}. '
                              'Nothing was written.')
    parent = osp.dirname(osp.abspath(dst))
    if osp.exists(parent) and not osp.isdir(parent):
        raise ConversionError(f'the output {dst!r} lies under {parent!r}, which is a file, not a '
                              'directory. Nothing was written.')


def write_checkpoint(checkpoint: Dict,
                     src: str,
                     dst: str,
                     save: Callable[[Dict, str], None] = torch.save,
                     suffix: str = '_mmdet.pth') -> None:
    """Write ``checkpoint`` to ``dst`` atomically (a temporary file, then a rename), after
    checking again that ``dst`` is not the source ``src`` (:func:`check_output_path`).

    ``save(checkpoint, path)`` writes the file (``torch.save``; the detectron2 export passes a
    plain pickle writer); ``suffix``: see :func:`check_output_path`."""
    check_output_path(src, dst, suffix)  # again: the path may have changed while we worked
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = f'{dst}.tmp{os.getpid()}'
    save(checkpoint, tmp)
    os.replace(tmp, dst)
