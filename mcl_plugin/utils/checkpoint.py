"""Checkpoint reading without running pickled code.

``torch.load(weights_only=True)`` refuses every Python object that is not a tensor or a plain
container, and mmengine runner checkpoints hold a few (``message_hub`` ``HistoryBuffer`` s,
NumPy arrays and scalars in ``meta`` and in ``RandomStateHook``'s RNG states). The old way out,
``weights_only=False`` (or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``), unpickles *anything*: a
crafted ``.pth`` runs its embedded code. Here the data types those checkpoints hold are
allow-listed for the duration of one load (:func:`allow_runner_checkpoints`, a context manager:
nothing is registered globally), and a full unpickle happens only when the caller says the file
is trusted (the tools' ``--trust-checkpoint`` flag).
"""
import os
import os.path as osp
import pickle
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, List, Optional

import numpy as np
import torch

TRUST_FLAG = '--trust-checkpoint'
_FORCE_FULL = 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'


class UnsafeCheckpointError(RuntimeError):
    """The file pickles Python objects outside the allow-list and was not trusted."""


def _history_buffer_statistic(owner: Any, name: str) -> Any:
    """The only ``getattr`` a runner checkpoint needs: ``HistoryBuffer`` pickles its statistics
    methods (``min``, ``max``, ``current``, ``mean``, registered ones) as
    ``getattr(HistoryBuffer, name)``. Anything else is refused: a free ``getattr`` would let a
    crafted file walk from an allowed class to arbitrary code."""
    from mmengine.logging import HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
    if owner is not HistoryBuffer or name not in allowed:
        raise pickle.UnpicklingError(
            f'Weights only load failed: getattr({owner!r}, {name!r}) is not allowed in a '
            'checkpoint (only HistoryBuffer statistics methods are)')
    return getattr(HistoryBuffer, name)


def runner_checkpoint_globals() -> List[Any]:
    """The non-tensor types of mmengine / mmpretrain / mcl_plugin checkpoints.

    All are plain data containers whose unpickling only fills arrays and attributes: NumPy
    arrays, dtypes and scalars (``meta``, RNG states), mmengine's ``HistoryBuffer``
    (``message_hub``) with its statistics methods (a ``getattr`` restricted to them),
    ``ConfigDict`` (``meta`` of some mmpretrain releases) and ``argparse.Namespace`` (the ``opt``
    of official SoCo checkpoints: a plain attribute container of the command-line options).
    """
    import argparse
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer
    multiarray = getattr(np, '_core', np.core).multiarray
    allowed: List[Any] = [np.ndarray, np.dtype, multiarray._reconstruct, multiarray.scalar,
                          HistoryBuffer, ConfigDict, argparse.Namespace,
                          (_history_buffer_statistic, 'builtins.getattr')]
    # ``np.dtype(np.float64)`` pickles as its class (``numpy.dtypes.Float64DType``).
    for name in ('bool_', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32',
                 'uint64', 'float16', 'float32', 'float64', 'str_', 'bytes_', 'object_'):
        allowed.append(type(np.dtype(getattr(np, name))))
    return allowed


@contextmanager
def allow_runner_checkpoints() -> Iterator[None]:
    """Within the block, ``torch.load(weights_only=True)`` also reads runner checkpoints.

    Use around code that loads checkpoints through mmengine (``Runner.resume``, ``load_from``,
    ``_load_checkpoint``): mmengine 0.10 calls ``torch.load`` with torch's default, which is
    ``weights_only=True`` since torch 2.6.
    """
    with torch.serialization.safe_globals(runner_checkpoint_globals()):
        yield


def unsafe_globals(path: str) -> List[str]:
    """Names of the globals in ``path`` that the allow-list does not cover."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001  (a corrupt file: the load itself reports it)
        return []
    allowed = {g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
               for g in runner_checkpoint_globals()}
    return sorted(set(names) - allowed)


def is_weights_only_refusal(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's refusal of a global outside the allow-list.

    Other weights-only failures ("Unsupported operand ...") come from bytes that are no pickle
    torch writes: a truncated or corrupt file, reported as such by the callers.
    """
    text = str(exc)
    return isinstance(exc, pickle.UnpicklingError) and (
        'Unsupported global' in text or 'not an allowed global' in text or
        'is not allowed in a checkpoint' in text)


def refusal_message(path: str, exc: Optional[BaseException] = None) -> str:
    """The error text for a refused file: what it holds and how to load it anyway."""
    names = unsafe_globals(path)
    held = ', '.join(names[:8]) + (' ...' if len(names) > 8 else '') if names else \
        (str(exc).strip().splitlines()[0][:200] if exc is not None and str(exc).strip() else '?')
    return (f'{path!r} pickles Python objects that a checkpoint of weights does not need ({held}); '
            'unpickling them can run arbitrary code, so it was not loaded. If you know where the '
            f'file comes from and trust it, pass {TRUST_FLAG}.')


def load_checkpoint_file(path: str, trust: bool = False, map_location: Any = 'cpu') -> Any:
    """``torch.load`` that never runs pickled code unless ``trust`` is set.

    Tensors-only files and runner checkpoints (the allow-list of
    :func:`runner_checkpoint_globals`) load with ``weights_only=True``; anything else raises
    :class:`UnsafeCheckpointError` naming the foreign globals and the ``--trust-checkpoint``
    flag, or is unpickled in full when ``trust`` is True.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        UnsafeCheckpointError: If the file needs a full unpickle and ``trust`` is False.
        Exception: What ``torch.load`` raises for a truncated or foreign file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file {path!r} does not exist')
    try:
        with allow_runner_checkpoints():
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        if not is_weights_only_refusal(exc):
            raise
        if not trust:
            raise UnsafeCheckpointError(refusal_message(path, exc)) from None
    warnings.warn(f'{path!r} pickles objects outside the allow-list; unpickling it in full '
                  f'because it was trusted ({TRUST_FLAG})')
    return torch.load(path, map_location=map_location, weights_only=False)


@contextmanager
def checkpoint_loading(trust: bool = False, what: str = 'the checkpoint') -> Iterator[None]:
    """How the entry points (``tools/train.py``, ``tools/test.py``) let mmengine load files.

    Untrusted (default): runner checkpoints and tensors-only files load, a file with other
    pickled objects stops the run with :class:`UnsafeCheckpointError` naming ``--trust-checkpoint``.
    Trusted: torch's full unpickling for the block (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``).

    Args:
        trust (bool): The user passed ``--trust-checkpoint``.
        what (str): Names the file(s) in the error, e.g. ``"--resume / load_from"``.
    """
    if trust:
        old = os.environ.get(_FORCE_FULL)
        os.environ[_FORCE_FULL] = '1'
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(_FORCE_FULL, None)
            else:
                os.environ[_FORCE_FULL] = old
        return
    try:
        with allow_runner_checkpoints():
            yield
    except pickle.UnpicklingError as exc:
        if not is_weights_only_refusal(exc):
            raise
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''
        raise UnsafeCheckpointError(
            f'{what} pickles Python objects that a checkpoint of weights does not need ({first}); '
            'unpickling them can run arbitrary code, so it was not loaded. If you know where the '
            f'file comes from and trust it, pass {TRUST_FLAG}.') from None
