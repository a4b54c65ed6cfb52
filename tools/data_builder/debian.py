"""Debian packages: download (``apt-get download``, cached), selective unpack (streaming
``dpkg-deb --fsys-tarfile``) and licence look-up in their machine-readable ``copyright`` files."""
import fnmatch
import hashlib
import json
import os
import os.path as osp
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from tqdm import tqdm

from .catalog import DEB_PACKAGES, PackageUnavailable
from .records import Source


def cache_root() -> Path:
    """Returns the cache folder (``$MCL_CACHE`` or ``~/.cache/mcl_plugin``)."""
    return Path(os.environ.get('MCL_CACHE') or Path.home() / '.cache' / 'mcl_plugin')


def _run(cmd: Sequence[str], cwd: Optional[Path] = None, timeout: int = 900) -> str:
    """Runs a command and returns its stdout; raises :class:`PackageUnavailable` on failure."""
    try:
        proc = subprocess.run(list(cmd),
                              cwd=cwd,
                              capture_output=True,
                              text=True,
                              timeout=timeout,
                              check=False)
    except FileNotFoundError as err:
        raise PackageUnavailable(f'`{cmd[0]}` is not installed ({err}).') from err
    except subprocess.TimeoutExpired as err:
        raise PackageUnavailable(f'`{" ".join(cmd)}` took more than {timeout} s.') from err
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise PackageUnavailable(f'`{" ".join(cmd)}` failed (exit {proc.returncode}): ' +
                                 ' | '.join(tail))
    return proc.stdout


def fetch_debs(packages: Iterable[str], deb_dir: Path) -> Dict[str, Path]:
    """Returns the cached ``.deb`` of each package, downloading the missing ones.

    Args:
        packages (Iterable[str]): Debian package names.
        deb_dir (Path): Cache folder for ``.deb`` files.

    Returns:
        dict[str, Path]: Package name to ``.deb`` path.

    Raises:
        PackageUnavailable: ``apt-get`` is missing or cannot download a package.
    """
    deb_dir.mkdir(parents=True, exist_ok=True)
    found = {pkg: _cached_deb(pkg, deb_dir) for pkg in packages}
    missing = [pkg for pkg, deb in found.items() if deb is None]
    if missing:
        if shutil.which('apt-get') is None:
            raise PackageUnavailable('`apt-get` is not available on this machine.')
        print(
            f'[prepare_data] downloading {len(missing)} Debian packages into {deb_dir}: '
            f'{" ".join(missing)}',
            flush=True)
        with tempfile.TemporaryDirectory(dir=deb_dir, prefix='.download-') as tmp:
            _run(['apt-get', '-o', 'Acquire::Retries=2', 'download', *missing], cwd=Path(tmp))
            for deb in Path(tmp).glob('*.deb'):
                deb.rename(deb_dir / deb.name)
        found = {pkg: _cached_deb(pkg, deb_dir) for pkg in found}
        still = [pkg for pkg, deb in found.items() if deb is None]
        if still:
            raise PackageUnavailable(f'apt-get returned no .deb for {" ".join(still)}.')
    return found  # type: ignore[return-value]


def _cached_deb(pkg: str, deb_dir: Path) -> Optional[Path]:
    """Returns the newest cached ``.deb`` of ``pkg``, if any."""
    debs = sorted(deb_dir.glob(f'{pkg}_*.deb'), key=lambda p: p.stat().st_mtime)
    return debs[-1] if debs else None


def unpack_deb(pkg: str, deb: Path, unpack_dir: Path) -> Tuple[Path, str]:
    """Unpacks the needed part of a ``.deb`` (once; cached) and returns its root and version.

    Only the paths in ``DEB_PACKAGES[pkg]['extract']`` plus the ``copyright`` file are
    written, streaming ``dpkg-deb --fsys-tarfile`` (``dpkg -x`` of everything would need
    ~0.8 GB).

    Args:
        pkg (str): Package name.
        deb (Path): Its ``.deb`` file.
        unpack_dir (Path): Cache folder for unpacked packages.

    Returns:
        tuple[Path, str]: Root folder (mirrors ``/``) and package version.
    """
    if shutil.which('dpkg-deb') is None:
        raise PackageUnavailable('`dpkg-deb` (package dpkg) is not available on this machine.')
    version = _run(['dpkg-deb', '-f', str(deb), 'Version']).strip()
    copyright_file = f'usr/share/doc/{pkg}/copyright'
    prefixes = DEB_PACKAGES[pkg]['extract'] + (copyright_file, )
    suffixes = DEB_PACKAGES[pkg].get('suffixes', ('', )) + (copyright_file, )
    spec = hashlib.sha1(json.dumps([deb.name, prefixes, suffixes]).encode()).hexdigest()[:12]
    root = unpack_dir / f'{pkg}_{version.replace(":", "%3a")}'
    stamp = root / '.complete'
    if stamp.is_file() and stamp.read_text() == spec:
        return root, version
    if root.exists():
        shutil.rmtree(root)
    tmp = Path(tempfile.mkdtemp(dir=unpack_dir, prefix=f'.{pkg}-'))
    try:
        _extract_members(deb, prefixes, suffixes, tmp)
        (tmp / '.complete').write_text(spec)
        tmp.rename(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return root, version


def _extract_members(deb: Path, prefixes: Tuple[str, ...], suffixes: Tuple[str, ...],
                     dest: Path) -> None:
    """Streams the data tar of ``deb``; writes the regular files under ``prefixes`` whose
    name ends with one of ``suffixes``."""
    proc = subprocess.Popen(['dpkg-deb', '--fsys-tarfile', str(deb)],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode='r|') as tar:
            for member in tar:
                name = member.name.lstrip('./')
                if not (member.isfile() and name.startswith(prefixes) and name.endswith(suffixes)):
                    continue
                if '..' in Path(name).parts:
                    continue
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, 'wb') as dst:
                    shutil.copyfileobj(src, dst)
    finally:
        _, err = proc.communicate()
    if proc.returncode != 0:
        raise PackageUnavailable(f'`dpkg-deb --fsys-tarfile {deb}` failed: '
                                 f'{err.decode(errors="replace").strip()[-300:]}')


class CopyrightIndex:
    """Licence look-up in a Debian machine-readable (DEP-5) ``copyright`` file.

    The last ``Files:`` stanza whose pattern matches wins, as DEP-5 specifies. Because
    packages often convert images (e.g. gcompris ships ``.webp`` built from upstream
    ``.jpg``/``.png``), a path also matches a pattern that differs only in its extension.

    Args:
        text (str): Content of the ``copyright`` file.
    """

    def __init__(self, text: str) -> None:
        self.stanzas: List[Tuple[List[str], str, str]] = []
        for para in text.split('\n\n'):
            fields = self._fields(para)
            if 'files' in fields and 'license' in fields:
                patterns = fields['files'].split()
                holders = fields.get('copyright', '').splitlines()
                holder = holders[0].strip() if len(holders) == 1 else \
                    'several holders, see the package copyright file'
                self.stanzas.append((patterns, fields['license'].splitlines()[0].strip(), holder))

    @staticmethod
    def _fields(para: str) -> Dict[str, str]:
        """Parses one stanza into lower-cased field names and values."""
        fields: Dict[str, str] = {}
        key = None
        for line in para.splitlines():
            if line[:1] in (' ', '\t') and key:
                fields[key] += '\n' + line.strip()
            elif ':' in line:
                key, value = line.split(':', 1)
                key = key.strip().lower()
                fields[key] = value.strip()
        return fields

    def lookup(self, path: str) -> Tuple[str, str]:
        """Returns ``(licence, copyright)`` of an upstream path (``unknown`` if none)."""
        stem = osp.splitext(path)[0]
        found = ('unknown (see the package copyright file)', '')
        for patterns, licence, holder in self.stanzas:
            for pattern in patterns:
                if fnmatch.fnmatchcase(
                        path, pattern) or (osp.splitext(pattern)[1]
                                           and fnmatch.fnmatchcase(stem,
                                                                   osp.splitext(pattern)[0])):
                    found = (licence, holder)
        return found


@dataclass
class DebPackage:
    """An unpacked Debian package.

    Attributes:
        name (str): Package name.
        version (str): Version.
        root (Path): Unpacked root (mirrors ``/``).
        licences (CopyrightIndex): Its ``copyright`` file.
    """

    name: str
    version: str
    root: Path
    licences: CopyrightIndex

    def source(self, installed: str, upstream: Optional[str] = None) -> Source:
        """Returns the :class:`Source` of an installed path (relative to ``root``)."""
        if upstream is None:
            upstream = installed
            for prefix, repl in DEB_PACKAGES[self.name]['upstream']:
                if installed.startswith(prefix):
                    upstream = repl + installed[len(prefix):]
                    break
        licence, holder = self.licences.lookup(upstream)
        return Source(f'deb:{self.name}', self.version, installed, licence, holder)


def prepare_debs(cache: Path) -> Dict[str, DebPackage]:
    """Downloads (cached) and unpacks every package of :data:`DEB_PACKAGES`.

    Args:
        cache (Path): Cache root.

    Returns:
        dict[str, DebPackage]: The unpacked packages.
    """
    debs = fetch_debs(DEB_PACKAGES, cache / 'debs')
    (cache / 'unpacked').mkdir(parents=True, exist_ok=True)
    out = {}
    for pkg in tqdm(sorted(debs), desc='unpack .deb', unit='pkg'):
        root, version = unpack_deb(pkg, debs[pkg], cache / 'unpacked')
        copyright_file = root / f'usr/share/doc/{pkg}/copyright'
        text = copyright_file.read_text(encoding='utf-8', errors='replace')
        out[pkg] = DebPackage(pkg, version, root, CopyrightIndex(text))
    return out
