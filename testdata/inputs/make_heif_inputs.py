#!/usr/bin/env python3
"""Make the AVIF and HEIC inputs of tests/api/heif.rs and their references.

AVIF files are made by libavif's `avifenc` (Debian's `libavif-bin`) and decoded by its
`avifdec`; HEIC files by pillow-heif (libheif with x265, pinned in scripts/test-requirements.txt)
and decoded by it. imgfn takes no part in either. References are upright: libheif applies
`irot`/`imir` itself; avifdec writes the stored pixels, so the transform the file declares is
applied here with Pillow, as ISO/IEC 23008-12 defines it (irot: anti-clockwise quarter turns,
imir mode 0: top and bottom exchanged, 1: left and right; irot before imir).
manifest.json lists each input with what `fmt=json` must say of it.

    apt-get install libavif-bin
    target/venv/bin/python testdata/inputs/make_heif_inputs.py [OUT_DIR]

OUT_DIR defaults to testdata/inputs/heif/.
"""
import json
import os
import subprocess
import sys
import tempfile

from PIL import Image
import pillow_heif

pillow_heif.register_heif_opener()

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)


def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "heif")
    os.makedirs(os.path.join(out, "ref"), exist_ok=True)
    photo = Image.open(os.path.join(TESTDATA, "medium.jpg")).convert("RGB")
    photo = photo.resize((480, 320), Image.LANCZOS)
    alpha = Image.open(os.path.join(TESTDATA, "alpha.png")).convert("RGBA")
    alpha = alpha.resize((360, 256), Image.LANCZOS)
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "photo.png")
        photo.save(src)
        src_alpha = os.path.join(tmp, "alpha.png")
        alpha.save(src_alpha)
        # (file, source, avifenc arguments, displayed size, alpha, orientation as
        # (irot, imir or None))
        avifs = [
            ("yuv420.avif", src, ["-y", "420"], False, (0, None)),
            ("yuv444.avif", src, ["-y", "444"], False, (0, None)),
            ("yuv422-12bit-limited.avif", src, ["-y", "422", "-d", "12", "-r", "limited"], False, (0, None)),
            ("mono.avif", src, ["-y", "400"], False, (0, None)),
            ("alpha-10bit.avif", src_alpha, ["-d", "10"], True, (0, None)),
            ("alpha-premultiplied.avif", src_alpha, ["-p"], True, (0, None)),
            ("grid-2x2.avif", src, ["-y", "444", "-g", "2x2"], False, (0, None)),
            ("irot1-imir0.avif", src, ["--irot", "1", "--imir", "0"], False, (1, 0)),
        ]
        for name, source, args, has_alpha, (irot, imir) in avifs:
            path = os.path.join(out, name)
            run("avifenc", "-s", "8", *args, source, path)
            ref = os.path.join(tmp, "ref.png")
            run("avifdec", path, ref)
            img = Image.open(ref)
            img.load()
            img = img.convert("RGBA" if has_alpha else "RGB")
            stored = img.size
            if irot:
                img = img.rotate(90 * irot, expand=True)
            if imir == 0:
                img = img.transpose(Image.FLIP_TOP_BOTTOM)
            elif imir == 1:
                img = img.transpose(Image.FLIP_LEFT_RIGHT)
            img.save(os.path.join(out, "ref", name + ".png"))
            manifest.append(entry(name, "avif", img.size, has_alpha, stored))

        # HEIC: libheif through pillow-heif. The grid is how iPhones store photos (512 px
        # tiles there, 128 here); EXIF orientation 6 becomes irot on encoding.
        heics = [
            ("plain.heic", photo, {}),
            ("alpha.heic", alpha, {}),
            ("grid-rot.heic", photo, {"tile_size": 128, "exif": exif_orientation(6)}),
        ]
        for name, img, opts in heics:
            path = os.path.join(out, name)
            img.save(path, format="HEIF", quality=90, **opts)
            ref = pillow_heif.open_heif(path, convert_hdr_to_8bit=True).to_pillow()
            has_alpha = ref.mode == "RGBA"
            ref.save(os.path.join(out, "ref", name + ".png"))
            stored = (img.width, img.height)
            manifest.append(entry(name, "heic", ref.size, has_alpha, stored))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    malformed(out)


def boxes(data, start=0, end=None):
    """(type, box start, payload start, box end) of the boxes in data[start:end]."""
    end = len(data) if end is None else end
    at = start
    while at + 8 <= end:
        size = int.from_bytes(data[at:at + 4], "big")
        kind = bytes(data[at + 4:at + 8])
        header = 8
        if size == 1:
            size = int.from_bytes(data[at + 8:at + 16], "big")
            header = 16
        elif size == 0:
            size = end - at
        yield kind, at, at + header, at + size
        at += size


def find(data, path):
    """The (box start, payload start, end) of the first box along path, e.g. meta/iprp/ipco."""
    start, end = 0, len(data)
    found = None
    for i, kind in enumerate(path):
        for k, b, p, e in boxes(data, start, end):
            if k == kind:
                found = (b, p, e)
                # meta is a FullBox: its children follow 4 bytes of version and flags.
                start, end = (p + 4 if kind == b"meta" else p), e
                break
        else:
            raise KeyError(path)
    return found


def ispe_offsets(data):
    """Payload offsets of every ispe in ipco."""
    _, p, e = find(data, [b"meta", b"iprp", b"ipco"])
    return [pp for k, b, pp, ee in boxes(data, p, e) if k == b"ispe"]


def grid_descriptor(data):
    """Offset of the 2x2, 480x320 grid's descriptor (version, flags, rows - 1, columns - 1,
    16-bit width and height), wherever the grid item's data lies."""
    at = bytes(data).find(bytes([0, 0, 1, 1]) + (480).to_bytes(2, "big") + (320).to_bytes(2, "big"))
    assert at > 0
    return at


def malformed(out):
    """Hostile versions of the fixtures: each must be a quick 4xx, never a 5xx."""
    mdir = os.path.join(out, "malformed")
    os.makedirs(mdir, exist_ok=True)
    read = lambda n: bytearray(open(os.path.join(out, n), "rb").read())
    cases = []

    def write(name, data, png, json_status, why):
        open(os.path.join(mdir, name), "wb").write(bytes(data))
        cases.append({"file": name, "png": png, "json": json_status, "why": why})

    avif = read("yuv420.avif")
    write("truncated-half.avif", avif[: len(avif) // 2], [422], [422],
          "the coded item lies past the end of the file")
    write("truncated-in-meta.avif", avif[:120], [422], [422], "the meta box is cut")
    small = bytearray(avif)
    for at in ispe_offsets(small):
        small[at + 4:at + 12] = (240).to_bytes(4, "big") + (160).to_bytes(4, "big")
    write("ispe-smaller-than-frame.avif", small, [422], [200],
          "ispe says 240x160, the AV1 frame is 480x320: refused, never decoded past the header's size")
    huge = bytearray(avif)
    for at in ispe_offsets(huge):
        huge[at + 4:at + 12] = (60000).to_bytes(4, "big") * 2
    write("ispe-60000x60000.avif", huge, [422], [200],
          "ispe claims 3.6 GP: the header answers fmt=json, a render is refused by the pixel limit")
    zero = bytearray(avif)
    for at in ispe_offsets(zero):
        zero[at + 4:at + 12] = bytes(8)
    write("ispe-zero.avif", zero, [422], [422], "a zero size")
    grid = read("grid-2x2.avif")
    g = grid_descriptor(grid)
    many = bytearray(grid)
    many[g + 2:g + 4] = bytes([255, 255])
    write("grid-256x256-tiles.avif", many, [422], [422], "65536 tiles declared (4 present)")
    uncovered = bytearray(grid)
    # 2x2 tiles of 240x160 cannot make a 480x400 grid.
    uncovered[g + 6:g + 8] = (400).to_bytes(2, "big")
    for at in ispe_offsets(uncovered):  # the grid's own ispe says the same (tiles' unchanged)
        if uncovered[at + 4:at + 12] == (480).to_bytes(4, "big") + (320).to_bytes(4, "big"):
            uncovered[at + 8:at + 12] = (400).to_bytes(4, "big")
    write("grid-tiles-do-not-cover.avif", uncovered, [422], [422], "tiles cover 480x320 of a 480x400 grid")
    absurd = bytearray(avif)
    b, _, _ = find(absurd, [b"meta"])
    absurd[b:b + 4] = (0xFFFFFFF0).to_bytes(4, "big")
    write("meta-size-4gb.avif", absurd, [422], [422], "a box larger than the file")
    large = bytearray(avif)
    _, p, e = find(large, [b"meta", b"iloc"])
    # The last 4 bytes of avifenc's iloc are the last extent's 32-bit length.
    large[e - 4:e] = (0x7FFFFFFF).to_bytes(4, "big")
    write("iloc-extent-2gb.avif", large, [422], [422], "an extent far past the end of the file")
    bitstream = bytearray(avif)
    _, p, e = find(bitstream, [b"mdat"])
    bitstream[p:e] = bytes(e - p)
    write("av1-zeroed.avif", bitstream, [422], [200], "the AV1 data is zeros")
    heic = read("grid-rot.heic")
    write("truncated-half.heic", heic[: len(heic) // 2], [415, 422], [422],
          "HEVC items past the end of the file (415 in a build without HEIC)")
    with open(os.path.join(mdir, "manifest.json"), "w") as f:
        json.dump(cases, f, indent=1)
        f.write("\n")


def entry(name, fmt, size, has_alpha, stored):
    return {
        "file": name,
        "format": fmt,
        "width": size[0],
        "height": size[1],
        "has_alpha": has_alpha,
        "stored": list(stored),
    }


def exif_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


if __name__ == "__main__":
    main()
