#!/usr/bin/env python3
"""Makes the README's pictures of the demo model with vqd (pure Python besides vqd):

  generated.png  one image per prompt of PROMPTS (seed 0, the model's default guidance)
  editing.png    a rendered scene, then vqd's edit of it (--init-image, --strength) with a prompt
                 that changes the colour
  inpainting.png a rendered scene, the mask (white: regenerate), then the inpainted result
  previews.png   a generation's previews (--preview-every 10) and its final image

Every picture is a row of 32x32 images scaled 4x (nearest), 4 px apart on white.

    examples.py --vqd build/tools/vqd --model DIR --out docs/demo
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenes  # noqa: E402
import score  # noqa: E402

PROMPTS = (
    "a small red circle at the top left on a white background",
    "a large blue square at the center on a black background",
    "a large yellow triangle at the bottom right on a gray background",
    "a small green square at the top right on a black background",
    "a purple circle",
    "an orange triangle at the bottom left",
    "a large green circle on a white background",
    "a small blue triangle at the center",
)
EDIT = (scenes.Scene("circle", "red", "center", "white", "large"), "a large blue circle at the center on a white background", 0.6)
INPAINT = (scenes.Scene("square", "yellow", "top left", "black", "small"),
           "a small red circle at the top left on a black background")
PREVIEW_PROMPT = "a large orange square at the top right on a gray background"
SCALE, GAP = 4, 4


def write_png(path, rows):
    """rows of (r, g, b) -> an 8-bit RGB PNG."""
    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + bytes(v for p in row for v in p) for row in rows)

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def strip(images):
    """Images side by side, scaled SCALE times, GAP pixels apart on white."""
    size = len(images[0]) * SCALE
    width = len(images) * size + (len(images) + 1) * GAP
    rows = [[(255, 255, 255)] * width for _ in range(size + 2 * GAP)]
    for i, image in enumerate(images):
        x0 = GAP + i * (size + GAP)
        for y in range(size):
            for x in range(size):
                rows[GAP + y][x0 + x] = tuple(image[y // SCALE][x // SCALE])
    return rows


def vqd(args, *flags):
    result = subprocess.run([args.vqd, "generate", "--model", args.model, *flags],
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"examples: vqd generate {' '.join(flags)} failed:\n{result.stderr}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vqd", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp()

    generated = []
    for i, prompt in enumerate(PROMPTS):
        vqd(args, "--prompt", prompt, "--seed", "0", "--out", f"{tmp}/gen{i}")
        generated.append(score.read_png(f"{tmp}/gen{i}-0.png"))
    write_png(os.path.join(args.out, "generated.png"), strip(generated))

    scene, prompt, strength = EDIT
    write_png(f"{tmp}/edit-source.png", scene.render())
    vqd(args, "--prompt", prompt, "--init-image", f"{tmp}/edit-source.png", "--strength", str(strength), "--seed", "0",
        "--out", f"{tmp}/edit")
    write_png(os.path.join(args.out, "editing.png"), strip([scene.render(), score.read_png(f"{tmp}/edit-0.png")]))

    scene, prompt = INPAINT
    size = scenes.SIZE
    mask = [[(255, 255, 255) if x < size // 2 and y < size // 2 else (0, 0, 0) for x in range(size)]
            for y in range(size)]  # regenerate the top left quarter (the square), keep the rest
    write_png(f"{tmp}/inpaint-source.png", scene.render())
    write_png(f"{tmp}/inpaint-mask.png", mask)
    vqd(args, "--prompt", prompt, "--init-image", f"{tmp}/inpaint-source.png", "--mask", f"{tmp}/inpaint-mask.png",
        "--seed", "0", "--out", f"{tmp}/inpaint")
    write_png(os.path.join(args.out, "inpainting.png"),
              strip([scene.render(), mask, score.read_png(f"{tmp}/inpaint-0.png")]))

    vqd(args, "--prompt", PREVIEW_PROMPT, "--preview-every", "10", "--seed", "0", "--out", f"{tmp}/preview")
    frames = [score.read_png(f"{tmp}/preview-step{s:02d}-0.png") for s in range(10, 100, 10)]
    write_png(os.path.join(args.out, "previews.png"), strip(frames + [score.read_png(f"{tmp}/preview-0.png")]))
    print(f"wrote generated.png, editing.png, inpainting.png and previews.png to {args.out}")


if __name__ == "__main__":
    main()
