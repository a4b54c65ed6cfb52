"""``manifest.json`` of each dataset folder: the build key (a re-run with the same arguments is a
no-op), and the package, path and licence of every output file."""
import datetime
import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

from .catalog import MANIFEST

if TYPE_CHECKING:
    from .build import Sources


def write_manifest(dest: Path, key: dict, sources: 'Sources', records: List[dict],
                   extra: dict) -> None:
    """Writes ``dest/manifest.json`` (build key, provenance and licence of every file).

    Args:
        dest (Path): Dataset folder.
        key (dict): Build key (the arguments); a re-run with the same key is a no-op.
        sources (Sources): What the data was built from.
        records (list[dict]): One record per output file.
        extra (dict): Dataset-specific summary.
    """
    licences = Counter(s['licence'] for r in records for s in r['sources'])
    manifest = dict(
        build_key=key,
        mode=sources.mode,
        fallback_reason=sources.fallback,
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        tool='tools/prepare_data.py',
        notice='Derived from GPL/CC-BY(-SA)/public-domain photos of the packages below. '
        'Regenerate with tools/prepare_data.py; do not commit or redistribute without '
        'honouring each licence.',
        packages=sources.packages,
        notes=sources.notes,
        licences=dict(sorted(licences.items(), key=lambda kv: -kv[1])),
        summary=extra,
        files=records)
    with open(dest / MANIFEST, 'w') as f:
        json.dump(manifest, f, indent=1)


def read_manifest(dest: Path) -> Optional[dict]:
    """Returns the manifest of a dataset folder, or None if absent/unreadable."""
    try:
        return json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _up_to_date(dest: Path, key: dict) -> bool:
    """Whether ``dest`` was built with the same arguments (and not as a fallback)."""
    manifest = read_manifest(dest)
    return bool(manifest) and manifest.get('build_key') == key and \
        manifest.get('mode') == key['mode']
