#!/usr/bin/env python3
"""The independent reference of imgfn's pixel tests: one operation done by Pillow.

    reference.py OP IN.png OUT.png [ARG]

OP is one of:
  transpose NAME   Pillow's Image.transpose (rotate-90 means 90 degrees clockwise, as imgfn's
                   rot; flip-h mirrors left-right, flip-v top-bottom)
  blur SIGMA       ImageFilter.GaussianBlur(SIGMA)
  sharpen SIGMA    ImageFilter.UnsharpMask(radius=SIGMA, percent=100, threshold=0)
  crop X,Y,W,H     Image.crop in pixels of the input
  trim T[,RRGGBB[AA]]  crop to the bounding box (ImageChops.difference, Image.getbbox) of the
                   pixels where some channel differs from the colour (default: the top-left
                   pixel's) by more than T, both-transparent pixels counting as border
  attention W,H[;W,H...]
                   libvips' smartcrop(W, H, interesting=attention) of IN (pyvips), for each
                   size: OUT gets a JSON list of {"left", "top", "attention_x", "attention_y"},
                   each crop's top-left and the point libvips centred it on (OUT "-" prints it)

The tests in tests/api/reference.rs run it (scripts/test.sh installs Pillow in target/venv) and
compare its output with imgfn's, pixel by pixel, within a tolerance; tests/api/attention.rs
compares libvips' crop windows with imgfn's gravity=auto.
"""
import json
import sys

from PIL import Image, ImageChops, ImageFilter

T = Image.Transpose
TRANSPOSE = {
    "rotate-90": T.ROTATE_270,  # Pillow's ROTATE_n turns counter-clockwise
    "rotate-180": T.ROTATE_180,
    "rotate-270": T.ROTATE_90,
    "flip-h": T.FLIP_LEFT_RIGHT,
    "flip-v": T.FLIP_TOP_BOTTOM,
    "transpose": T.TRANSPOSE,
    "transverse": T.TRANSVERSE,
}


def attention(src, dst, arg):
    import pyvips  # only this op needs it (pyvips-binary ships libvips)

    im = pyvips.Image.new_from_file(src)
    windows = []
    for size in arg.split(";"):
        w, h = (int(v) for v in size.split(","))
        out, found = im.smartcrop(
            w, h, interesting="attention", attention_x=True, attention_y=True
        )
        # The crop's offsets are minus its top-left in the input.
        windows.append({"left": -out.xoffset, "top": -out.yoffset, **found})
    text = json.dumps(windows)
    if dst == "-":
        print(text)
    else:
        with open(dst, "w") as f:
            f.write(text)


def trim(im, arg):
    threshold, _, colour = arg.partition(",")
    threshold = int(threshold)
    if colour:
        border = tuple(int(colour[i : i + 2], 16) for i in range(0, len(colour), 2))
        border = border + (255,) * (4 - len(border))
    else:
        border = im.getpixel((0, 0))
    diff = ImageChops.difference(im, Image.new("RGBA", im.size, border))
    bands = [b.point(lambda v: 255 if v > threshold else 0) for b in diff.split()]
    mask = bands[0]
    for band in bands[1:]:
        mask = ImageChops.lighter(mask, band)
    if border[3] == 0:
        # Transparent on transparent is border whatever the colour channels say.
        opaque = im.getchannel("A").point(lambda v: 255 if v > 0 else 0)
        mask = ImageChops.multiply(mask, opaque)
    box = mask.getbbox()
    return im.crop(box) if box else im


def main(op, src, dst, arg):
    if op == "attention":
        return attention(src, dst, arg)
    im = Image.open(src)
    im.load()
    if op == "transpose":
        out = im.transpose(TRANSPOSE[arg])
    elif op == "blur":
        out = im.filter(ImageFilter.GaussianBlur(float(arg)))
    elif op == "sharpen":
        out = im.filter(ImageFilter.UnsharpMask(radius=float(arg), percent=100, threshold=0))
    elif op == "crop":
        x, y, w, h = (int(v) for v in arg.split(","))
        out = im.crop((x, y, x + w, y + h))
    elif op == "trim":
        out = trim(im.convert("RGBA"), arg)
    else:
        raise SystemExit(f"unknown op {op}")
    out.save(dst, "PNG")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
