"""Writes the small PNG images of the museum walkthrough (images/*.png).

Each image is a 32x32 RGB picture: a coloured background with a lighter
square in the middle, written with the standard library only (zlib).
Run from this directory: python3 make_images.py
"""

import struct
import zlib

COLOURS = {
    "amphora": (176, 96, 48),
    "astrolabe": (200, 168, 40),
    "tapestry": (128, 32, 64),
    "mask": (40, 120, 96),
    "manuscript": (96, 72, 48),
    "collection": (24, 56, 112),
}


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png(colour, size=32):
    light = tuple(min(255, c + 70) for c in colour)
    rows = b""
    for y in range(size):
        row = b"\x00"  # filter: none
        for x in range(size):
            inside = size // 4 <= x < 3 * size // 4 and size // 4 <= y < 3 * size // 4
            row += bytes(light if inside else colour)
        rows += row
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


for name, colour in COLOURS.items():
    with open(f"images/{name}.png", "wb") as out:
        out.write(png(colour))
