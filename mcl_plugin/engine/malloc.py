"""Keep freed memory in the process: the CPU speed lever of issue 19 (glibc malloc only).

glibc serves every allocation above its mmap threshold (at most 32 MiB on 64-bit) with a fresh
``mmap`` and gives it back with ``munmap`` when it is freed. A training step on CPU allocates
and frees activations of tens to hundreds of MB each, so the kernel maps, zero-fills and unmaps
them page by page at every step: on the 2-core box a ResNet-50 train-mode forward takes ~31,900
page faults per image at batch 32, and keeping the memory cuts its time by 37-50 %
(``docs/results/benchmark_malloc_keep.md``). :func:`keep_freed_memory` turns ``mmap`` off for
allocations (``M_MMAP_MAX = 0``) and stops glibc from trimming the heap (``M_TRIM_THRESHOLD``),
so freed blocks are reused by the next step. Nothing the model computes changes; the process
holds its peak heap until it exits, as the CUDA caching allocator does on GPUs.

It is the same as starting the process with ``MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=2147483647``, but can be switched on from a config
(:class:`~mcl_plugin.engine.hooks.KeepFreedMemoryHook`). Data-loader workers forked later inherit
the setting.
"""
import ctypes
import ctypes.util
from typing import Optional

#: glibc's ``mallopt`` parameters (``malloc.h``).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
#: The largest trim threshold ``mallopt`` takes (an ``int``): trim only when 2 GiB lie free.
MAX_TRIM_THRESHOLD = 2**31 - 1

_kept: Optional[dict] = None


def keep_freed_memory(trim_threshold: int = MAX_TRIM_THRESHOLD) -> dict:
    """Make glibc malloc keep freed memory for reuse (no ``mmap`` per allocation, no trimming).

    Args:
        trim_threshold (int): Bytes that must lie free at the top of the heap before glibc
            returns them to the system. Defaults to :data:`MAX_TRIM_THRESHOLD` (2 GiB).

    Returns:
        dict: The settings made: ``mmap_max`` (0) and ``trim_threshold``.

    Raises:
        ValueError: ``trim_threshold`` outside ``[0, 2**31 - 1]``.
        RuntimeError: The process does not run on glibc (macOS, musl, Windows), or ``mallopt``
            refused a setting; the message says what to do instead.
    """
    global _kept
    if not 0 <= trim_threshold <= MAX_TRIM_THRESHOLD:
        raise ValueError(f'trim_threshold must lie in [0, {MAX_TRIM_THRESHOLD}] (mallopt takes '
                         f'an int), got {trim_threshold}')
    libc = _glibc()
    for param, value, name in ((M_MMAP_MAX, 0, 'M_MMAP_MAX'),
                               (M_TRIM_THRESHOLD, trim_threshold, 'M_TRIM_THRESHOLD')):
        if libc.mallopt(param, value) != 1:
            raise RuntimeError(f'glibc mallopt({name}, {value}) failed; the allocator is left as '
                               'it was. Start the process with MALLOC_MMAP_MAX_=0 '
                               f'MALLOC_TRIM_THRESHOLD_={trim_threshold} instead.')
    _kept = dict(mmap_max=0, trim_threshold=trim_threshold)
    return dict(_kept)


def kept_settings() -> Optional[dict]:
    """The settings :func:`keep_freed_memory` made in this process (or inherited by fork), else
    ``None``."""
    return None if _kept is None else dict(_kept)


def _glibc() -> ctypes.CDLL:
    """The C library of this process, checked to be glibc (``gnu_get_libc_version``) and to
    serve ``malloc`` itself (no allocator preloaded in front of it)."""
    name = ctypes.util.find_library('c')
    libc = ctypes.CDLL(name)
    if not hasattr(libc, 'gnu_get_libc_version') or not hasattr(libc, 'mallopt'):
        raise RuntimeError(f'keep_freed_memory needs glibc malloc; this process runs on {name!r}. '
                           'Drop KeepFreedMemoryHook from custom_hooks (the lever does not '
                           'apply to this C library).')
    if _address(ctypes.CDLL(None).malloc) != _address(libc.malloc):
        raise RuntimeError('keep_freed_memory sets glibc malloc, but another allocator serves '
                           'malloc in this process (LD_PRELOAD of jemalloc / tcmalloc?). Tune that '
                           'allocator instead, or drop KeepFreedMemoryHook.')
    return libc


def _address(function) -> Optional[int]:
    """Where a C function of a loaded library resolves to."""
    return ctypes.cast(function, ctypes.c_void_p).value
