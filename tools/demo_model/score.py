#!/usr/bin/env python3
"""Scores generated demo-model images by transparent image analysis, with no third-party
packages: which pixels differ from the prompt's background (the largest connected blob of
them is the shape), the palette colour nearest to their mean (colour), which of the ideal
circle, square and triangle masks drawn in its bounding box it overlaps best (shape), the
bounding box's side (size) and the position its centre is nearest to.

    score.py CASES.json IMAGE_DIR [--min-colour 0.9 --min-shape 0.8] [--json OUT]

CASES.json: [{"file": "case-000.png", "shape": ..., "colour": ..., "background": ..., "size": ...,
"position": ...}, ...]. Prints the accuracy of each attribute; exits 1 when colour or shape
accuracy is below its minimum.
"""
import argparse
import json
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scenes  # noqa: E402

BACKGROUND_DISTANCE = 70  # squared-distance root above which a pixel is not background


def read_png(path):
    """8-bit RGB or RGBA, non-interlaced PNG -> rows of (r, g, b)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    pos, idat, width = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour_type not in (2, 6) or interlace != 0:
                raise ValueError(f"{path}: only 8-bit RGB/RGBA non-interlaced PNGs are read")
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, previous = [], bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 255
        rows.append([tuple(line[x * channels:x * channels + 3]) for x in range(width)])
        previous = line
    return rows


def distance(a, b):
    return sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5


def largest_blob(mask):
    height, width = len(mask), len(mask[0])
    seen = [[False] * width for _ in range(height)]
    best = []
    for y in range(height):
        for x in range(width):
            if mask[y][x] and not seen[y][x]:
                blob, stack = [], [(x, y)]
                seen[y][x] = True
                while stack:
                    px, py = stack.pop()
                    blob.append((px, py))
                    for nx, ny in ((px + 1, py), (px - 1, py), (px, py + 1), (px, py - 1)):
                        if 0 <= nx < width and 0 <= ny < height and mask[ny][nx] and not seen[ny][nx]:
                            seen[ny][nx] = True
                            stack.append((nx, ny))
                if len(blob) > len(best):
                    best = blob
    return best


def nearest_shape(blob, cx, cy, side):
    """The shape whose ideal mask, drawn in the blob's bounding box, overlaps the blob best
    (intersection over union): a circle, square and triangle of the same box differ in many
    pixels, which a few wrong edge pixels do not outweigh."""
    def iou(shape):
        ideal = {(x, y) for y in range(scenes.SIZE) for x in range(scenes.SIZE)
                 if scenes.inside(shape, x + 0.5, y + 0.5, cx, cy, side)}
        return len(blob & ideal) / max(1, len(blob | ideal))
    return max(scenes.SHAPES, key=iou)


def analyse(pixels, background):
    """Attributes read off an image, given the background colour the prompt asked for."""
    bg = scenes.BACKGROUNDS[background]
    mask = [[distance(p, bg) > BACKGROUND_DISTANCE for p in row] for row in pixels]
    blob = largest_blob(mask)
    if len(blob) < 4:
        return {"shape": None, "colour": None, "size": None, "position": None}
    mean = tuple(sum(pixels[y][x][c] for x, y in blob) / len(blob) for c in range(3))
    colour = min(scenes.COLOURS, key=lambda name: distance(mean, scenes.COLOURS[name]))
    xs, ys = [x for x, _ in blob], [y for _, y in blob]
    w, h = max(xs) - min(xs) + 1, max(ys) - min(ys) + 1
    side = max(w, h)
    shape = nearest_shape(set(blob), (min(xs) + max(xs) + 1) / 2, (min(ys) + max(ys) + 1) / 2, side)
    size = min(scenes.SIZES, key=lambda name: abs(scenes.SIZES[name] - side))
    cx, cy = (min(xs) + max(xs) + 1) / 2, (min(ys) + max(ys) + 1) / 2
    position = min(scenes.POSITIONS,
                   key=lambda p: distance((cx, cy), scenes.POSITIONS[p](scenes.SIZES[size])))
    return {"shape": shape, "colour": colour, "size": size, "position": position}


ATTRIBUTES = ("colour", "shape", "size", "position")


def score(cases, image_dir):
    correct = {a: 0 for a in ATTRIBUTES}
    rows = []
    for case in cases:
        found = analyse(read_png(os.path.join(image_dir, case["file"])), case["background"])
        for a in ATTRIBUTES:
            correct[a] += found[a] == case[a]
        rows.append({"file": case["file"], "wanted": {a: case[a] for a in ATTRIBUTES}, "found": found})
    return {a: correct[a] / len(cases) for a in ATTRIBUTES}, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cases")
    parser.add_argument("image_dir")
    parser.add_argument("--min-colour", type=float, default=0.0)
    parser.add_argument("--min-shape", type=float, default=0.0)
    parser.add_argument("--json", help="write the accuracies and every case's reading here")
    args = parser.parse_args()
    with open(args.cases) as f:
        cases = json.load(f)
    accuracy, rows = score(cases, args.image_dir)
    for a in ATTRIBUTES:
        print(f"{a:9s} {accuracy[a] * 100:5.1f}% of {len(cases)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"accuracy": accuracy, "cases": rows}, f, indent=1)
    return check_minimums(accuracy, {"colour": args.min_colour, "shape": args.min_shape})


def check_minimums(accuracy, minimum):
    """Prints the attributes below their minimum; 1 when there are any, else 0."""
    failed = [f"{a} {accuracy[a]:.3f} < {m}" for a, m in minimum.items() if accuracy[a] < m]
    if failed:
        print("FAIL: " + "; ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
