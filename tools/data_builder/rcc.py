"""A reader of Qt binary resource bundles (``.rcc``), where gcompris keeps its photos."""
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional


@dataclass
class RccArchive:
    """Files of a Qt binary resource (``.rcc``) file.

    Attributes:
        version (int): Format version (1-3).
        files (dict[str, bytes]): Path inside the bundle to its (decompressed) bytes.
        skipped_zstd (list[str]): Entries compressed with zstd that could not be read.
    """

    version: int
    files: Dict[str, bytes] = field(default_factory=dict)
    skipped_zstd: List[str] = field(default_factory=list)


def read_rcc(path: Path) -> RccArchive:
    """Reads a Qt ``.rcc`` resource bundle.

    Layout (big-endian): ``'qres'``, version, tree/data/names offsets (and flags from version
    3). Tree nodes are 14 bytes (22 from version 2, with a modification time): name offset,
    flags, then either child count + first child index (directories, flag 0x02) or
    territory/language + data offset. A name is ``u16 length, u32 hash, UTF-16BE``; data is
    ``u32 size`` + bytes, zlib-compressed with a ``u32`` uncompressed-size prefix (flag 0x01)
    or zstd-compressed (flag 0x04, read if the ``zstandard`` module is installed).

    Args:
        path (Path): The ``.rcc`` file.

    Returns:
        RccArchive: Its files.

    Raises:
        ValueError: Not an rcc file.
    """
    buf = Path(path).read_bytes()
    if buf[:4] != b'qres':
        raise ValueError(f'{path} is not a Qt resource file (no "qres" magic).')
    version, tree, data, names = struct.unpack_from('>IIII', buf, 4)
    node_size = 14 if version < 2 else 22
    zstd = _zstd_decompressor()
    archive = RccArchive(version)

    def name_at(offset: int) -> str:
        (length, ) = struct.unpack_from('>H', buf, names + offset)
        start = names + offset + 6
        return buf[start:start + 2 * length].decode('utf-16-be')

    stack = [(0, '')]
    while stack:
        index, parent = stack.pop()
        base = tree + index * node_size
        name_offset, flags = struct.unpack_from('>IH', buf, base)
        name = name_at(name_offset) if index else ''
        full = f'{parent}/{name}' if parent else name
        if flags & 0x02:
            count, first = struct.unpack_from('>II', buf, base + 6)
            stack.extend((child, full) for child in range(first, first + count))
            continue
        (offset, ) = struct.unpack_from('>I', buf, base + 10)
        (size, ) = struct.unpack_from('>I', buf, data + offset)
        blob = buf[data + offset + 4:data + offset + 4 + size]
        if flags & 0x01:
            blob = zlib.decompress(blob[4:])
        elif flags & 0x04:
            if zstd is None:
                archive.skipped_zstd.append(full)
                continue
            blob = zstd(blob)
        archive.files[full] = blob
    return archive


def _zstd_decompressor() -> Optional[Callable[[bytes], bytes]]:
    """Returns a zstd decompress function if a zstd module is importable."""
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
        return zstd.decompress
    except ImportError:
        pass
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError:
        return None
    return lambda blob: zstandard.ZstdDecompressor().decompressobj().decompress(blob)
