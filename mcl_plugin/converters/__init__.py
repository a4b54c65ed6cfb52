"""Weight hand-off from pre-training checkpoints to MMDetection detectors.

:mod:`mcl_plugin.converters.convert` maps a pre-training checkpoint (plugin algorithms, mmpretrain /
mmselfsup baselines, backbone-only files) onto the state dict of an mmdet detector built from a
fine-tune config and reports the key coverage per module; :mod:`mcl_plugin.converters.check` reports
what mmengine's runner (``load_from``) and ``PretrainedInit`` (``init_cfg``) would really load.
:mod:`~mcl_plugin.converters.official` imports the official SoCo / MCL / PLRC / DetCo
checkpoints, :mod:`~mcl_plugin.converters.io` reads sources and writes outputs, :mod:`~mcl_plugin.converters.ema`
selects the EMA target (``--use-ema``), :mod:`~mcl_plugin.converters.coverage` builds the reports.
The command-line front-ends are ``tools/convert_to_mmdet.py`` and ``tools/check_pretrained.py``;
:mod:`~mcl_plugin.converters.detectron2` exports to detectron2 (``tools/convert_to_detectron2.py``).
"""
from .check import CheckResult, check_pretrained
from .convert import (DROP_RULES, MAPPING_RULES, ConversionError, MappingRule, build_target_model,
                      convert_checkpoint, convert_state_dict, load_source_checkpoint)
from .coverage import CoverageReport, ModuleCoverage
from .detectron2 import convert_to_detectron2

__all__ = [
    'DROP_RULES', 'MAPPING_RULES', 'CheckResult', 'ConversionError', 'CoverageReport',
    'MappingRule', 'ModuleCoverage', 'build_target_model', 'check_pretrained', 'convert_checkpoint',
    'convert_state_dict', 'convert_to_detectron2', 'load_source_checkpoint'
]
