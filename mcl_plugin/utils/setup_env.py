"""Registration entry point, as ``mmdet.utils.register_all_modules`` /
``mmpretrain.utils.register_all_modules``."""
from mmengine.registry import init_default_scope as _init_default_scope

from ..registry import SCOPE


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register every mcl_plugin component in the ``mcl_plugin`` registries.

    ``import mcl_plugin`` (or ``custom_imports``) already registers them; this also imports
    the visualization backends and, with ``init_default_scope=True``, makes ``mcl_plugin`` the
    current default scope (mmengine's :func:`~mmengine.registry.init_default_scope`: if another
    scope is current, a new ``mcl_plugin`` scope instance is created and becomes current), so
    that ``MODELS.build(dict(type='MCL', ...))`` works outside a Runner. A Runner sets the scope
    itself from the config's ``default_scope``.

    Args:
        init_default_scope (bool): Whether to make ``mcl_plugin`` the default scope.
            Defaults to True.
    """
    import mcl_plugin.datasets  # noqa: F401
    import mcl_plugin.engine  # noqa: F401
    import mcl_plugin.evaluation  # noqa: F401
    import mcl_plugin.models  # noqa: F401
    import mcl_plugin.visualization  # noqa: F401
    if init_default_scope:
        _init_default_scope(SCOPE)
