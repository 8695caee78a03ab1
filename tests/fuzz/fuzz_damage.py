"""Ways the fuzz tests damage a file: one copy for every reader's tests."""
from __future__ import annotations

import gzip
from pathlib import Path


def set_card(data: bytes, keyword: str, value: str) -> bytes:
    """Rewrite the first FITS header card ``keyword`` (80-byte aligned) as ``keyword = value``, kept 80 bytes long."""
    key = keyword.encode().ljust(8)
    for start in range(0, len(data) - 79, 80):
        if data[start:start + 8] == key:
            card = (key + b"= " + value.encode("utf-8", "surrogatepass").rjust(20)).ljust(80)[:80]
            return data[:start] + card + data[start + 80:]
    return data


def damage_file(path: Path, *, compress: bool, flip: tuple[int, int] | None, cut: int) -> None:
    """Optionally gzip the file at ``path``, set one byte (``flip = (offset, value)``) and drop its last ``cut`` bytes."""
    data = bytearray(path.read_bytes())
    if compress:
        data = bytearray(gzip.compress(bytes(data)))
    if flip is not None:
        data[flip[0] % len(data)] = flip[1]
    path.write_bytes(bytes(data[: max(0, len(data) - cut)]))
