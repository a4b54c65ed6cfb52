"""keep_freed_memory: glibc malloc reuses freed memory instead of mapping large blocks afresh
(each case in a fresh interpreter: the setting is process-wide and cannot be undone)."""
import os
import os.path as osp
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest

from mcl_plugin.engine import keep_freed_memory

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'

# Allocate, touch and free a 64 MiB tensor 6 times; print the minor page faults of the last 4
# (glibc settles its heap in the first two: the kept run faults them in once, then reuses them).
FAULTS = textwrap.dedent('''
    import resource, sys, torch
    from mcl_plugin.engine import keep_freed_memory, kept_settings
    if sys.argv[1] == 'keep':
        print(keep_freed_memory(), kept_settings())
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(2**24)
    torch.ones(2**24)
    before = faults()
    for _ in range(4):
        torch.ones(2**24)
    print(faults() - before)
''')


def run(code: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, '-c', code, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc (Linux)')
def test_freed_memory_is_reused_without_page_faults():
    # glibc default: every 64 MiB block is a fresh mmap, zero-filled page by page by the kernel
    # (16,384 pages of 4 KiB each time); kept: the freed block is reused, no page is faulted in
    default = int(run(FAULTS, 'default').split()[-1])
    kept = run(FAULTS, 'keep').split('\n')
    assert kept[0] == ("{'mmap_max': 0, 'trim_threshold': 2147483647} "
                       "{'mmap_max': 0, 'trim_threshold': 2147483647}")
    assert default >= 4 * 16384 * 0.9
    assert int(kept[1]) < 100


def test_trim_threshold_is_checked():
    with pytest.raises(ValueError, match=r'trim_threshold must lie in \[0, 2147483647\]'):
        keep_freed_memory(2**31)
    with pytest.raises(ValueError, match='got -1'):
        keep_freed_memory(-1)


def test_hook_warns_or_raises_where_the_lever_does_not_apply(monkeypatch):
    # what keep_freed_memory raises on macOS / musl / a preloaded jemalloc: the hook logs it and
    # leaves the allocator alone, or raises with strict=True; enabled=False does not try
    from mcl_plugin.engine.hooks import keep_freed_memory_hook as mod

    def refuse(trim_threshold):
        raise RuntimeError('keep_freed_memory needs glibc malloc; this process runs on '
                           "'libSystem.dylib'.")

    monkeypatch.setattr(mod, 'keep_freed_memory', refuse)
    messages = []
    runner = SimpleNamespace(logger=SimpleNamespace(warning=lambda m: messages.append(('W', m)),
                                                    info=lambda m: messages.append(('I', m))))
    mod.KeepFreedMemoryHook().before_run(runner)
    assert messages == [('W', 'KeepFreedMemoryHook: not applied: keep_freed_memory needs glibc '
                              "malloc; this process runs on 'libSystem.dylib'.")]
    with pytest.raises(RuntimeError, match='libSystem'):
        mod.KeepFreedMemoryHook(strict=True).before_run(runner)
    mod.KeepFreedMemoryHook(enabled=False).before_run(runner)
    assert messages[-1] == ('I', 'KeepFreedMemoryHook: off (enabled=False), malloc as it was')


@pytest.mark.skipif(not osp.exists(JEMALLOC), reason='libjemalloc2 not installed')
def test_a_preloaded_allocator_is_refused():
    code = 'from mcl_plugin.engine import keep_freed_memory; keep_freed_memory()'
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, LD_PRELOAD=JEMALLOC))
    assert proc.returncode == 1
    assert proc.stderr.strip().endswith(
        'RuntimeError: keep_freed_memory sets glibc malloc, but another allocator serves malloc '
        'in this process (LD_PRELOAD of jemalloc / tcmalloc?). Tune that allocator instead, or '
        'drop KeepFreedMemoryHook.')


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc (Linux)')
def test_hook_applies_before_the_run_and_logs_the_settings():
    code = textwrap.dedent('''
        from types import SimpleNamespace
        from mcl_plugin.engine import kept_settings
        from mcl_plugin.registry import HOOKS
        import mcl_plugin  # noqa: F401 (registers the hook)
        messages = []
        logger = SimpleNamespace(warning=messages.append, info=messages.append)
        hook = HOOKS.build(dict(type='KeepFreedMemoryHook', trim_threshold=2**30))
        print(kept_settings())
        hook.before_run(SimpleNamespace(logger=logger))
        print(kept_settings(), messages)
    ''')
    out = run(code).split('\n')
    assert out[0] == 'None'
    assert out[1] == ("{'mmap_max': 0, 'trim_threshold': 1073741824} [\"KeepFreedMemoryHook: "
                      "glibc malloc keeps freed memory ({'mmap_max': 0, 'trim_threshold': "
                      "1073741824})\"]")
