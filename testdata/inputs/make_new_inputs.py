#!/usr/bin/env python3
"""Make the JPEG XL, TIFF and BMP inputs of tests/api/new_inputs.rs and their references.

Each input is made by a reference encoder (libjxl's `cjxl`, Debian's `libjxl-tools`; Pillow)
from the photos beside this directory, and decoded by a reference decoder that imgfn takes no
part in (`djxl` to PNG; Pillow), upright (orientation applied), into ref/<input>.png.
manifest.json lists each input with what `fmt=json` must say of it.

    apt-get install libjxl-tools
    target/venv/bin/python testdata/inputs/make_new_inputs.py [OUT_DIR]

OUT_DIR defaults to this directory (testdata/inputs/new/). The 16-bit RGB TIFF is written by
`tiff_rgb16` below (Pillow has no 16-bit RGB mode); its reference is its 8-bit source.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

from PIL import Image, ImageOps

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tiff_rgb16(img, path):
    """A big-endian, uncompressed, one-strip 16-bit RGB TIFF of an 8-bit RGB image (v * 257)."""
    w, h = img.size
    data = b"".join(struct.pack(">HHH", *(v * 257 for v in px)) for px in img.getdata())
    entries = []  # (tag, type, count, value-or-offset bytes)
    n_entries = 10
    ifd_at = 8
    extra_at = ifd_at + 2 + n_entries * 12 + 4
    bits = struct.pack(">HHH", 16, 16, 16)
    strip_at = extra_at + len(bits)

    def short(tag, v):
        entries.append(struct.pack(">HHI", tag, 3, 1) + struct.pack(">H", v) + b"\0\0")

    def long(tag, v):
        entries.append(struct.pack(">HHII", tag, 4, 1, v))

    long(256, w)  # ImageWidth
    long(257, h)  # ImageLength
    entries.append(struct.pack(">HHII", 258, 3, 3, extra_at))  # BitsPerSample 16,16,16
    short(259, 1)  # no compression
    short(262, 2)  # RGB
    long(273, strip_at)  # StripOffsets
    short(277, 3)  # SamplesPerPixel
    long(278, h)  # RowsPerStrip
    long(279, len(data))  # StripByteCounts
    short(284, 1)  # chunky
    assert len(entries) == n_entries
    out = b"MM\0\x2a" + struct.pack(">I", ifd_at) + struct.pack(">H", n_entries)
    out += b"".join(entries) + b"\0\0\0\0" + bits + data
    with open(path, "wb") as f:
        f.write(out)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "new")
    ref = os.path.join(out, "ref")
    os.makedirs(ref, exist_ok=True)
    manifest = []
    tmp = tempfile.mkdtemp()

    def add(name, reference, alpha, fmt):
        w, h = reference.size
        reference.save(os.path.join(ref, name + ".png"))
        manifest.append(
            {"file": name, "format": fmt, "width": w, "height": h, "has_alpha": alpha}
        )

    # Sources: the photos of testdata/ (licences in testdata/SOURCES.md), made small.
    photo = Image.open(os.path.join(TESTDATA, "small.jpg")).convert("RGB")
    photo = photo.resize((240, 160), Image.LANCZOS)
    cutout = Image.open(os.path.join(TESTDATA, "alpha-small.png")).convert("RGBA")
    cutout = cutout.resize((200, 150), Image.LANCZOS)
    grey = photo.convert("L")
    photo_png = os.path.join(tmp, "photo.png")
    photo.save(photo_png)
    cutout_png = os.path.join(tmp, "cutout.png")
    cutout.save(cutout_png)
    grey_png = os.path.join(tmp, "grey.png")
    grey.save(grey_png)
    photo_jpg = os.path.join(tmp, "photo.jpg")
    photo.save(photo_jpg, quality=90)
    # A rotated original: stored sideways, orientation 6 in the header.
    sideways = photo.transpose(Image.Transpose.ROTATE_90)
    sideways_jpg = os.path.join(tmp, "sideways.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    sideways.save(sideways_jpg, quality=92, exif=exif)

    # JPEG XL, by cjxl; references by djxl (which applies the orientation).
    jxl = [
        ("lossy.jxl", photo_png, ["-d", "1", "-m", "0"], False),
        ("lossless-alpha.jxl", cutout_png, ["-d", "0"], True),
        ("grey-lossless.jxl", grey_png, ["-d", "0"], False),
        ("jpeg-recompressed.jxl", photo_jpg, ["-j", "1"], False),
        ("orient-6.jxl", sideways_jpg, ["-j", "0", "-d", "1"], False),
    ]
    for name, src, args, alpha in jxl:
        path = os.path.join(out, name)
        run("cjxl", src, path, *args)
        decoded = os.path.join(tmp, name + ".png")
        run("djxl", path, decoded)
        img = Image.open(decoded)
        img = img.convert("RGBA" if alpha else "RGB")
        add(name, img, alpha, "jxl")

    # TIFF and BMP, by Pillow; references by Pillow (orientation applied).
    def pillow(name, img, fmt, alpha, **kw):
        path = os.path.join(out, name)
        img.save(path, **kw)
        back = ImageOps.exif_transpose(Image.open(path))
        add(name, back.convert("RGBA" if alpha else "RGB"), alpha, fmt)

    pillow("rgb-deflate.tif", photo, "tiff", False, compression="tiff_adobe_deflate")
    pillow("rgba-lzw.tif", cutout, "tiff", True, compression="tiff_lzw")
    # 16-bit grey (v * 257): Pillow would clip it to 8 bits on the way back, so the
    # reference is the 8-bit source.
    grey16 = Image.frombytes("I;16", grey.size, bytes(b for v in grey.getdata() for b in (v, v)))
    grey16.save(os.path.join(out, "grey16.tif"), compression="tiff_adobe_deflate")
    assert Image.open(os.path.join(out, "grey16.tif")).getpixel((5, 5)) == grey.getpixel((5, 5)) * 257
    add("grey16.tif", grey.convert("RGB"), False, "tiff")
    pillow("orient-6.tif", sideways, "tiff", False, tiffinfo={274: 6}, compression="tiff_adobe_deflate")
    # Two pages: the first is the one shown.
    second = photo.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    pillow("multipage.tif", photo, "tiff", False, save_all=True, append_images=[second],
           compression="tiff_adobe_deflate")
    tiff_rgb16(photo, os.path.join(out, "rgb16.tif"))
    add("rgb16.tif", photo, False, "tiff")

    pillow("rgb24.bmp", photo, "bmp", False)
    pillow("palette8.bmp", photo.quantize(64), "bmp", False)
    pillow("grey8.bmp", grey, "bmp", False)

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
