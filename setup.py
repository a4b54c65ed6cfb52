"""Packaging for mcl_plugin.

Metadata lives here (not in ``pyproject.toml``'s ``[project]`` table) so that the legacy
``setup.py develop`` mode (setuptools < 80, ``tools/setup.sh`` installs 77.0.3-79) keeps working:
it is what makes ``mim train mcl_plugin ...`` find ``mcl_plugin/.mim/{configs,tools}`` (the
distribution's location is then the repository root).
"""
import os.path as osp

from setuptools import find_packages, setup


def read_requirements(name):
    path = osp.join(osp.dirname(__file__), 'requirements', name)
    with open(path) as f:
        return [ln.split('#')[0].strip() for ln in f if ln.split('#')[0].strip()]


def get_version():
    ns = {}
    with open(osp.join(osp.dirname(__file__), 'mcl_plugin', 'version.py')) as f:
        exec(f.read(), ns)
    return ns['__version__']


setup(
    name='mcl_plugin',
    version=get_version(),
    description='Detection-aligned self-supervised pre-training (MCL, SoCo, DetCo, PLRC) '
    'for OpenMMLab',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    python_requires='>=3.9',
    # tools/ (scripts and their packages tools.data_builder, tools.proposals, ...) is not shipped
    packages=find_packages(
        exclude=('configs', 'tools', 'tools.*', 'tests', 'tests.*', 'work_dirs')),
    include_package_data=True,
    package_data={'mcl_plugin': ['.mim/configs/**/*.py', '.mim/tools/**/*', '.mim/model-index.yml']},
    install_requires=['torch>=2.1', 'mmcv>=2.0.0,<2.2.0'] + read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    zip_safe=False,
)
