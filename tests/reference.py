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
  thumbhash -      the PyPI `thumbhash` port of ThumbHash's reference encoder on IN (an opaque
                   RGBA image of at most 100x100): OUT gets the hash, base64 without padding
  compare B.png    Pillow's ImageChops.difference of IN and B.png (RGB): OUT gets a JSON
                   {"mean", "max"} of the absolute differences over all pixels and channels
  animation SOURCE -  (OUT "-") IN, an animation imgfn made from SOURCE, as Pillow reads it:
                   JSON {"format", "frames", "durations" (ms per frame), "loop" (GIF: repeats,
                   WebP: plays, 0 for ever, null without), "diffs"}: each frame's mean absolute
                   difference from SOURCE's frame composed by Pillow and resized by its LANCZOS
  dominant -       the dominant colour of IN: the most frequent bin of a 16-levels-per-channel
                   RGB histogram, fully transparent pixels ignored (all pixels if none is
                   visible), ties to the lowest bin (R, then G, then B); OUT gets the mean
                   colour of that bin's pixels, rounded half up, as #rrggbb
  icc-embed SPEC   IN saved as OUT (its extension picks JPEG quality 95, PNG or lossless WebP)
                   with an ICC profile embedded: SPEC is PROFILE.icc (the RGB numbers kept and
                   labelled with it), gray:PROFILE.icc (IN as grey), cmyk:PROFILE.icc (IN
                   converted by LittleCMS from sRGB into that CMYK profile) or cmyk (Pillow's
                   naive CMYK, no profile); Pillow writes CMYK JPEGs Adobe-inverted
  icc-to-srgb -    LittleCMS (Pillow's ImageCms) converts IN from its embedded profile to
                   sRGB (relative colorimetric intent, no black point compensation, as
                   libvips imports), or Pillow's naive convert("RGB") without one; OUT is an
                   RGB PNG
  attention W,H[;W,H...]
                   libvips' smartcrop(W, H, interesting=attention) of IN (pyvips), for each
                   size: OUT gets a JSON list of {"left", "top", "attention_x", "attention_y"},
                   each crop's top-left and the point libvips centred it on (OUT "-" prints it)

The tests in tests/api/reference.rs run it (scripts/test.sh installs Pillow in target/venv) and
compare its output with imgfn's, pixel by pixel, within a tolerance; tests/api/attention.rs
compares libvips' crop windows with imgfn's gravity=auto; tests/api/placeholder_reference.rs
compares the PyPI port's ThumbHash and this dominant colour with imgfn's placeholders.
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


def thumbhash_of(src):
    import base64

    import thumbhash  # only this op needs it (PyPI `thumbhash`, pinned in test-requirements)

    im = Image.open(src).convert("RGBA")
    rgba = [v for px in im.getdata() for v in px]
    # The port's alpha branch is broken (a precedence slip makes `a_dc` a tuple): opaque only.
    assert all(a == 255 for a in rgba[3::4]), "the PyPI port hashes opaque images only"
    hashed = bytes(thumbhash.rgba_to_thumb_hash(im.width, im.height, rgba))
    return base64.b64encode(hashed).decode().rstrip("=")


def compare(src, other):
    from PIL import ImageChops, ImageStat

    a = Image.open(src).convert("RGB")
    b = Image.open(other).convert("RGB")
    if a.size != b.size:
        raise SystemExit(f"sizes differ: {a.size} and {b.size}")
    diff = ImageChops.difference(a, b)
    return {"mean": sum(ImageStat.Stat(diff).mean) / 3, "max": max(hi for _, hi in diff.getextrema())}


def dominant(src):
    im = Image.open(src).convert("RGBA")
    pixels = list(im.getdata())
    visible = [p for p in pixels if p[3] > 0] or pixels
    count, sums = {}, {}
    for r, g, b, _ in visible:
        key = (r >> 4, g >> 4, b >> 4)
        count[key] = count.get(key, 0) + 1
        s = sums.setdefault(key, [0, 0, 0])
        s[0] += r
        s[1] += g
        s[2] += b
    top = max(count.values())
    best = min(k for k, n in count.items() if n == top)
    n = count[best]
    return "#" + "".join(f"{(v + n // 2) // n:02x}" for v in sums[best])


def icc_embed(src, dst, spec):
    import io

    from PIL import ImageCms

    im = Image.open(src).convert("RGB")
    kind, _, path = spec.rpartition(":") if ":" in spec else ("", "", spec)
    if spec == "cmyk":
        kind, path = "cmyk", ""
    icc = open(path, "rb").read() if path else None
    if kind == "gray":
        im = im.convert("L")
    elif kind == "cmyk" and icc:
        srgb = ImageCms.createProfile("sRGB")
        cmyk = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        im = ImageCms.profileToProfile(im, srgb, cmyk, outputMode="CMYK")
    elif kind == "cmyk":
        im = im.convert("CMYK")
    extra = {"icc_profile": icc} if icc else {}
    if dst.endswith(".jpg"):
        im.save(dst, "JPEG", quality=95, **extra)
    elif dst.endswith(".webp"):
        im.save(dst, "WEBP", lossless=True, **extra)
    else:
        im.save(dst, "PNG", **extra)


def icc_to_srgb(src, dst):
    import io

    from PIL import ImageCms

    im = Image.open(src)
    icc = im.info.get("icc_profile")
    if icc:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        intent = ImageCms.Intent.RELATIVE_COLORIMETRIC
        out = ImageCms.profileToProfile(
            im, profile, srgb, renderingIntent=intent, outputMode="RGB"
        )
    else:
        out = im.convert("RGB")
    out.save(dst, "PNG")


def animation(src, source):
    """SRC (an animation imgfn made from SOURCE): its frames, per-frame durations and loop
    count as Pillow reads them, and each frame's mean absolute difference (0-255, over RGBA
    composed on grey) from SOURCE's same frame, composed by Pillow and resized by its LANCZOS
    to SRC's size."""
    out, ref = Image.open(src), Image.open(source)
    frames, durations, diffs = getattr(out, "n_frames", 1), [], []
    grey = Image.new("RGBA", out.size, (128, 128, 128, 255))
    for k in range(frames):
        out.seek(k)
        out.load()
        durations.append(out.info.get("duration"))
        ref.seek(min(k, getattr(ref, "n_frames", 1) - 1))
        ref.load()
        want = ref.convert("RGBA").resize(out.size, Image.Resampling.LANCZOS)
        got = out.convert("RGBA")
        a = Image.alpha_composite(grey, got).convert("RGB")
        b = Image.alpha_composite(grey, want).convert("RGB")
        diff = ImageChops.difference(a, b)
        hist = diff.histogram()
        total = sum(i % 256 * n for i, n in enumerate(hist))
        diffs.append(total / (3 * out.size[0] * out.size[1]))
    loop = out.info.get("loop")
    return {"format": out.format, "frames": frames, "durations": durations, "loop": loop, "diffs": diffs}


def write_text(dst, text):
    if dst == "-":
        print(text)
    else:
        with open(dst, "w") as f:
            f.write(text)


def main(op, src, dst, arg):
    if op == "attention":
        return attention(src, dst, arg)
    if op == "thumbhash":
        return write_text(dst, thumbhash_of(src))
    if op == "compare":
        return write_text(dst, json.dumps(compare(src, arg)))
    if op == "animation":
        return write_text(dst, json.dumps(animation(src, arg)))
    if op == "dominant":
        return write_text(dst, dominant(src))
    if op == "icc-embed":
        return icc_embed(src, dst, arg)
    if op == "icc-to-srgb":
        return icc_to_srgb(src, dst)
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
