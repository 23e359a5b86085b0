#!/usr/bin/env python3
"""PSNR of resized outputs against a Pillow reference.

usage: quality.py ORIGINAL OUTPUT [OUTPUT ...] [--labels a,b] [--json]

The reference for each output is Pillow's Image.LANCZOS resize of the full
original (EXIF orientation applied) to that output's own size. Images with alpha
(output or original) are composited over white before comparing, so the PSNR is
over what a page would show on a white background. PSNR is over all R, G, B
samples: 10*log10(255^2 / MSE). AVIF outputs are decoded with `avifdec` (apt
package libavif-bin), falling back to Pillow's own AVIF plugin if avifdec is
missing.

Prints one line per output (label, dB, bytes, size) and, with --json, one JSON
line at the end: {"outputs":[{"label","path","psnr_db","bytes","width","height"}],
"diff_db": psnr(first) - psnr(second)}.
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image, ImageOps


def load(path):
    with open(path, "rb") as f:
        head = f.read(32)
    if head[4:8] == b"ftyp" and (b"avif" in head or b"avis" in head):
        if shutil.which("avifdec"):
            with tempfile.TemporaryDirectory() as d:
                png = os.path.join(d, "out.png")
                subprocess.run(["avifdec", path, png], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                im = Image.open(png)
                im.load()
                return im
    im = Image.open(path)
    im.load()
    return im


def over_white(im):
    """RGB float array of `im`, composited over white if it has alpha."""
    if im.mode in ("LA", "PA", "RGBA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), dtype=np.float64)
        a = rgba[..., 3:4] / 255.0
        return rgba[..., :3] * a + 255.0 * (1.0 - a)
    return np.asarray(im.convert("RGB"), dtype=np.float64)


def psnr(x, y):
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return float("inf")
    return 10.0 * math.log10(255.0 ** 2 / mse)


class Reference:
    def __init__(self, original):
        im = Image.open(original)
        im.load()
        im = ImageOps.exif_transpose(im)
        has_alpha = im.mode in ("LA", "PA", "RGBA") or "transparency" in im.info
        # Pillow resizes RGBA premultiplied (RGBa), like imgfn and libvips do.
        self.im = im.convert("RGBA" if has_alpha else "RGB")
        self.cache = {}

    def at(self, size):
        if size not in self.cache:
            self.cache[size] = over_white(self.im.resize(size, Image.LANCZOS))
        return self.cache[size]


def main(argv):
    as_json = "--json" in argv
    argv = [a for a in argv if a != "--json"]
    labels = None
    if "--labels" in argv:
        i = argv.index("--labels")
        labels = argv[i + 1].split(",")
        del argv[i:i + 2]
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    original, outputs = argv[0], argv[1:]
    labels = labels or [os.path.basename(p) for p in outputs]
    ref = Reference(original)
    results = []
    for label, path in zip(labels, outputs):
        im = load(path)
        out = over_white(im)
        db = psnr(out, ref.at(im.size))
        r = {"label": label, "path": path, "psnr_db": round(db, 3),
             "bytes": os.path.getsize(path), "width": im.size[0], "height": im.size[1]}
        results.append(r)
        print(f"  {label:<10} {db:7.3f} dB  {r['bytes']:>8} bytes  {im.size[0]}x{im.size[1]}",
              file=sys.stderr)
    diff = None
    if len(results) >= 2:
        diff = round(results[0]["psnr_db"] - results[1]["psnr_db"], 3)
        print(f"  {'diff':<10} {diff:+7.3f} dB ({labels[0]} - {labels[1]})", file=sys.stderr)
    if as_json:
        print(json.dumps({"outputs": results, "diff_db": diff}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
