"""tools/setup.sh fails early with a message that names the missing piece, and installs a stack
without dependency conflicts (no pip resolver ERROR during setup)."""
import os
import os.path as osp
import re
import subprocess

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _setup(tmp_path, **env):
    full = dict(os.environ, MCL_VENV=str(tmp_path / 'venv'), MCL_CACHE=str(tmp_path / 'cache'),
                **env)
    return subprocess.run(['bash', osp.join(REPO, 'tools', 'setup.sh')], env=full,
                          capture_output=True, text=True, timeout=120)


def test_missing_python_is_named(tmp_path):
    proc = _setup(tmp_path, PYTHON='python3-that-does-not-exist')
    assert proc.returncode == 1
    assert "no 'python3-that-does-not-exist' on PATH" in proc.stderr
    assert not (tmp_path / 'venv').exists()


def test_missing_compiler_is_named(tmp_path):
    # a PATH with the basic tools but no g++
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    real_python = subprocess.run(['python3', '-c', 'import os, sys; print(os.path.realpath('
                                  'sys.executable))'], capture_output=True,
                                 text=True).stdout.strip()
    os.symlink(real_python, bin_dir / 'python3')
    for tool in ('bash', 'sha1sum', 'cat', 'cut', 'dirname', 'date', 'df', 'awk',
                 'mkdir', 'uname', 'ls', 'grep'):
        path = subprocess.run(['bash', '-c', f'command -v {tool}'], capture_output=True,
                              text=True).stdout.strip()
        if path:
            os.symlink(path, bin_dir / tool)
    proc = _setup(tmp_path, PATH=str(bin_dir))
    assert proc.returncode == 1
    assert 'no C++ compiler (g++)' in proc.stderr and 'apt-get install g++' in proc.stderr


def _setup_text():
    with open(osp.join(REPO, 'tools', 'setup.sh'), encoding='utf-8') as f:
        return f.read()


def test_setuptools_pin_satisfies_torch():
    """The setuptools range setup.sh installs must satisfy torch's own requirement (otherwise pip
    prints a resolver ERROR during setup) and stay below 80 (pkg_resources for mmcv's setup.py
    and mim; the legacy `setup.py develop` that lets mim find mcl_plugin/.mim)."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    pins = re.findall(r"'setuptools([<>=!~][^']*)'", _setup_text())
    assert len(pins) == 1, pins
    ours = SpecifierSet(pins[0])
    torch_req = [Requirement(r) for r in requires('torch') or []
                 if Requirement(r).name == 'setuptools']
    candidates = [f'{major}.{minor}.{patch}' for major in range(60, 90) for minor in range(4)
                  for patch in range(4)]
    ok = [v for v in candidates if v in ours and all(v in r.specifier for r in torch_req)]
    assert ok, f'no setuptools version satisfies both {ours} and torch {torch_req}'
    assert all(int(v.split('.')[0]) < 80 for v in candidates if v in ours)


def test_openmim_installed_without_its_dataset_downloader():
    """openmim's opendatalab -> openxlab chain pins setuptools~=60.2 (conflicting with torch):
    setup.sh installs openmim with --no-deps and keeps it out of the -r install, which is safe
    only while mim itself never imports opendatalab."""
    text = _setup_text()
    assert re.search(r'install --no-deps "\$\{OPENMIM', text)
    assert "grep -vE '^openmim'" in text and '-r "$RUNTIME_REQS"' in text
    import mim
    mim_dir = osp.dirname(mim.__file__)
    for dirpath, _, files in os.walk(mim_dir):
        for name in files:
            if name.endswith('.py'):
                with open(osp.join(dirpath, name), encoding='utf-8') as f:
                    assert 'opendatalab' not in f.read(), osp.join(dirpath, name)
