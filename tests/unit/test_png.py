"""The test suite's PNG reader gives back the pixels written, through every filter type."""

from __future__ import annotations

import struct
import zlib

import pytest

from tests.png import colours, pixels


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (struct.pack(">I", len(body)) + kind + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))


def _filtered(kind: int, line: bytes, up: bytes, bpp: int) -> bytes:
    out = bytearray()
    for i, value in enumerate(line):
        left = line[i - bpp] if i >= bpp else 0
        corner = up[i - bpp] if i >= bpp else 0
        if kind == 4:
            p = left + up[i] - corner
            pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
        else:
            pred = [0, left, up[i], (left + up[i]) >> 1][kind]
        out.append((value - pred) & 0xFF)
    return bytes([kind]) + bytes(out)


def png(rows: list[bytes], width: int, *, rgba: bool = True) -> bytes:
    bpp = 4 if rgba else 3
    up, raw = bytes(width * bpp), b""
    for y, row in enumerate(rows):
        raw += _filtered(y % 5, row, up, bpp)  # every filter type in turn
        up = row
    header = struct.pack(">IIBBBBB", width, len(rows), 8, 6 if rgba else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b""))


@pytest.mark.parametrize("rgba", [True, False])
def test_pixels_come_back_through_every_filter(rgba: bool) -> None:
    bpp = 4 if rgba else 3
    rows = [bytes((x * 37 + y * 11 + c * 5) % 256 for x in range(7) for c in range(bpp))
            for y in range(10)]
    width, height, decoded = pixels(png(rows, 7, rgba=rgba))
    assert (width, height, decoded) == (7, 10, rows)
    assert len(colours(png(rows, 7, rgba=rgba))) > 1
    blank = [bytes([255] * 7 * bpp)] * 10
    assert colours(png(blank, 7, rgba=rgba)) == {bytes([255] * bpp): 70}


def test_not_a_png_is_refused() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        pixels(b"GIF89a")
