"""tools/setup.sh fails early with a message that names the missing piece."""
import os
import os.path as osp
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
