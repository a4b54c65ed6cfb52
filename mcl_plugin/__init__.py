"""mcl_plugin: detection-aligned self-supervised pre-training for OpenMMLab.

``import mcl_plugin`` (or ``custom_imports=dict(imports=['mcl_plugin'])`` in any mmdet /
mmpretrain config) checks the installed OpenMMLab versions and registers every component in
the ``mcl_plugin`` scope, and does nothing else: no attribute of mmengine, mmcv, mmdet or
mmpretrain is changed (``tests/test_import_side_effects.py``), no default scope is set, no
process group is created. :func:`mcl_plugin.utils.register_all_modules` also sets the default
scope, as mmdet's and mmpretrain's do. Multi-process runs on CPU-only machines are set up by
the entry points (``tools/train.py``, ``tools/test.py``) through
:func:`mcl_plugin.engine.setup_cpu_distributed`.
"""
from importlib import import_module

from .version import __version__

# (package, minimum inclusive, maximum exclusive): the range this plugin is tested with.
COMPATIBILITY = (
    ('mmengine', '0.8.0', '1.0.0'),
    ('mmcv', '2.0.0', '2.2.0'),
    ('mmdet', '3.0.0', '3.4.0'),
    ('mmpretrain', '1.0.0', '1.3.0'),
)


def _parse(version: str) -> tuple:
    parts = []
    for p in version.split('+')[0].split('.')[:3]:
        digits = ''.join(c for c in p if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts + [0] * (3 - len(parts)))


def check_versions() -> None:
    """Raise an ``ImportError`` naming the package, its version and the supported range."""
    problems = []
    for name, low, high in COMPATIBILITY:
        try:
            mod = import_module(name)
        except ImportError as e:
            problems.append(f'{name} is not importable ({e})')
            continue
        version = getattr(mod, '__version__', '0')
        if not _parse(low) <= _parse(version) < _parse(high):
            problems.append(f'{name}=={version} is installed, mcl_plugin needs {low} <= '
                            f'{name} < {high}')
    try:
        import_module('mmcv.ops').RoIAlign
    except Exception as e:  # noqa: BLE001 - any failure means the ops were not compiled
        problems.append(f'mmcv was installed without its compiled ops ({e}); build it from the '
                        'sdist with MMCV_WITH_OPS=1 (tools/setup.sh does this)')
    if problems:
        raise ImportError('mcl_plugin cannot run with this OpenMMLab installation:\n  - ' +
                          '\n  - '.join(problems) +
                          '\nRun `bash tools/setup.sh` for the tested stack (README "Install").')


check_versions()

# mmengine's registry fall-back to a parent does not import the parent's lazy locations, so
# register mmpretrain's components once here (needs torchvision, see README).
import mmpretrain.datasets  # noqa: E402,F401
import mmpretrain.engine  # noqa: E402,F401
import mmpretrain.models  # noqa: E402,F401
import mmpretrain.visualization  # noqa: E402,F401

from . import datasets, engine, evaluation, models  # noqa: E402,F401
from .registry import SCOPE  # noqa: E402,F401

__all__ = ['__version__', 'check_versions', 'SCOPE']
