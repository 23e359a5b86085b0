#!/usr/bin/env python3
"""Generate hostile image files for imgfn, with a manifest of requests and expected statuses.

Run from anywhere: ``python3 testdata/hostile/make.py``. It (re)writes every file below into
``testdata/hostile/``, the request list into ``testdata/hostile/manifest.json`` and the fuzz
seeds into ``fuzz/seeds/decode/hostile-*``. Pure Python 3 standard library (struct, zlib,
json); the output is byte-for-byte the same on every run (no time stamps, no randomness; the
zlib streams depend only on the zlib library version). Files in
``testdata/hostile/`` that this script does not make are reported, never deleted.

The point of every file is a small input that claims a lot of work or hits a parser corner.
None of them may give a 5xx, a hang or a crash. ``manifest.json`` is a list of
``{"file": "hostile/<name>", "query": "...", "expect": [statuses], "why": "..."}``; the key
is relative to ``testdata/`` (the server's default root). ``expect`` always allows 503 (the
decode budget may be full, answered with ``Retry-After``); a refusal is any of 400, 413, 415
and 422 (in practice 415 or 422). 200 is listed only when the file is legitimately
decodable and within the documented limits, or when a tolerant decoder may legitimately
produce a small image; the ``why`` says which. A status alone cannot show memory or time:
a harness should also watch RSS and latency on the files marked "at the limit".

Classes and files
-----------------

(Animations rendered animated, issue 12: ``gif-2000-frames.gif`` (over IMGFN_MAX_FRAMES),
``gif-40-frames-on-4000x4000.gif`` (640 MP over all frames), ``webp-anim-second-frame-garbage.webp``
and ``webp-anim-truncated.webp``; see ``make_animations``.)

1. GIF frames that disagree with the logical screen (a hand-written LZW encoder makes
   valid streams):
   - ``gif-frame-14500-on-1x1-canvas.gif``: screen 1x1, first image descriptor 14500x14500
     (210 MP) with three clear codes, 256 pixels of data and EOI. A decoder that allocates
     the frame it is told about asks for 210 M pixels (841 MB RGBA) for a 1x1 image.
   - ``gif-second-frame-14500.gif``: a normal 16x16 animation whose first frame is fine
     and whose second frame is 14500x14500 (only the first frame should ever be decoded).
   - ``gif-frame-offset-outside-canvas.gif``: 16x16 screen, 16x16 frame at left=top=65530
     (left + width overflows a u16).
2. Zero-sized GIFs:
   - ``gif-zero-screen.gif``: logical screen 0x0 and a 0x0 frame (clear + EOI).
   - ``gif-zero-width-frame.gif``: 16x16 screen, 0x16 frame.
3. Progressive JPEG bombs (built from scratch: DQT, DHT, SOF2, SOS..., EOI):
   - ``jpeg-progressive-10000x10000-ycck-empty-scans.jpg``: SOF2 10000x10000 with 4
     components (Adobe APP14, transform 2 = YCCK), six scans with no entropy data at all.
     Exactly 100 MP (at ``max_source_pixels``, not over it); libjpeg keeps a 16-bit
     coefficient per sample of a progressive image: 10000*10000*4*2 = 800 MB for 227 bytes.
   - ``jpeg-progressive-4000x4000-2000-empty-scans.jpg``: greyscale SOF2 4000x4000,
     a DC scan and 1999 AC scans, none with entropy data: 2000 passes over 250,000 blocks
     from 20 KB.
   - ``jpeg-progressive-4000x4000-883-scans-complete.jpg``: the same idea, but every scan
     is really coded (DC 0 for every block; AC bands as end-of-band runs of 32767 blocks) in
     a legal successive-approximation script (DC; then every single-coefficient band 1..63
     at Al 13, refined down to Al 0): 883 scans, 59 KB. The script follows the progression
     rules libjpeg checks (so no "bogus progression" warning is expected; not run through
     libjpeg here).
4. JPEG parser differentials, spliced from the real baseline ``testdata/small.jpg``
   (640x427, 4:2:0, Aitzol Berasategi, CC-BY-4.0: these are adaptations and keep that
   licence, see testdata/SOURCES.md). Its DQT/DHT/SOS and entropy data are kept as they are.
   - ``jpeg-rst0-before-sof.jpg``: a lengthless RST0 (FFD0) just before the SOF0: a walker
     that reads a length after every marker reads FFC0 = 65472 and jumps into the scan
     data. libjpeg treats RSTn/TEM outside a scan as parameterless and decodes the image.
   - ``jpeg-tem-fake-length-hides-sof.jpg``: TEM (FF01), then ``00 06``, then a COM whose
     text is a complete SOF0 segment saying 65535x65535. A naive walker reads TEM's
     "length" 6, lands on the fake SOF inside the comment and reports 65535x65535; libjpeg
     skips the two bytes (warning: extraneous bytes), skips the comment, reads 640x427.
   - ``jpeg-two-sof-256-then-65535x4.jpg``: the SOF0 replaced by two: 256x256 3
     components, then 65535x65535 4 components. libjpeg: "Invalid JPEG file structure:
     two SOF markers" (first-SOF and last-SOF parsers disagree).
   - ``jpeg-two-sof-real-then-65535.jpg``: the real SOF0, then a second SOF0 65535x65535.
   - ``jpeg-sof-after-scan-65535.jpg``: a second SOF0 (65535x65535) after the entropy
     data, before EOI: the header is fine, the error (if any) comes at the end of decoding.
   - ``jpeg-junk-before-eoi.jpg``: text bytes and 0xFF fill between the entropy data and EOI
     (libjpeg warns "extraneous bytes before marker 0xd9" and decodes).
   - ``jpeg-junk-after-eoi.jpg``: after EOI, zeros and a fake second JPEG (SOI, SOF0
     65535x65535, EOI): a parser that scans the whole file for SOF finds the wrong one.
   - ``jpeg-sof-zero-components.jpg``: SOF0 with Nf = 0.
   - ``jpeg-sof-sampling-0.jpg`` / ``jpeg-sof-sampling-5.jpg``: luma sampling factors 0x0
     and 5x5 (legal range 1..4).
   - ``jpeg-sof-duplicate-component-ids.jpg``: component ids 1,1,1 in SOF and SOS.
   - ``jpeg-sof-height-0-dnl.jpg``: height 0 in SOF0 and a DNL segment (427) after the scan
     (the DNL form of T.81, which libjpeg does not support).
   - ``jpeg-sos-unknown-component.jpg``: the scan names component 9, not in the frame.
   - ``jpeg-dht-counts-sum-300.jpg``: an extra DHT (AC table 3) whose 16 counts sum to 300
     (> 256), with 300 symbols present so the segment length is consistent.
   - ``jpeg-dht-overlong-codes.jpg``: the luma DC table replaced by counts [3,1,1,...]:
     three 1-bit codes, so every canonical code overflows its length (Kraft sum > 1).
     libjpeg refuses it only when it builds the table, at the start of decoding.
5. PNG decompression bombs and chunk abuse:
   - ``png-bomb-10000x10000-gray8.png``: 10000x10000 8-bit grey, IDAT = zlib of 100 MB of
     zeros (~97 KB). Exactly 100 MP: at the limit, so it is decoded (and must be bounded).
   - ``png-bomb-20000x20000-gray1.png``: 20000x20000 1-bit grey (400 MP, over the 100 MP
     limit), IDAT = zlib of 50 MB of zeros (~49 KB); as 8-bit RGB it would be 1.2 GB.
   - ``png-iccp-zlib-bomb-50mb.png``: valid 1x1 with an iCCP whose profile inflates to 50 MB.
   - ``png-ztxt-zlib-bomb-50mb.png``: valid 1x1 with a zTXt whose text inflates to 50 MB.
   - ``png-iccp-zero-length.png``: valid 1x1 with an empty iCCP chunk (no name, no method).
   - ``png-ztxt-length-2gb-truncated.png``: IHDR then a zTXt claiming 2^31-1 bytes; the file
     ends 20 bytes later (no IDAT, no IEND).
   - ``png-1x1-idat-inflates-50mb.png``: IHDR 1x1 (2 bytes of image data needed) but the
     IDAT stream (in 8 KB chunks) inflates to 50 MB.
6. WebP (VP8L bitstreams written by hand: one colour, every prefix code a single symbol, so
   a pixel costs zero bits and any size fits in 13 bytes):
   - ``webp-vp8l-16384x16384.webp``: VP8L at its maximum 16384x16384 (268 MP), 34 bytes.
   - ``webp-vp8l-10000x10000.webp``: 10000x10000 (100 MP, at the limit), 34 bytes: 400 MB
     of RGBA from 34 bytes.
   - ``webp-vp8x-canvas-16383-vp8l-1x1.webp``: VP8X canvas 16383x16383, VP8L payload 1x1.
   - ``webp-vp8x-canvas-10000-vp8l-1x1.webp``: VP8X canvas 10000x10000 (at the limit),
     VP8L payload 1x1.
   - ``webp-riff-size-larger-than-file.webp``: a valid 64x64 VP8L with RIFF size
     0xFFFFFFF8 (size + 8 wraps a u32 to 0).
   - ``webp-riff-size-too-small.webp``: the same with RIFF size 12: the VP8L payload lies
     outside the RIFF.
   - ``webp-anim-frame-16384-on-16x16-canvas.webp``: animated (VP8X + ANIM + ANMF), canvas
     16x16, first frame 16384x16384 (1 GiB of RGBA for a 16x16 image).
   - ``webp-anim-frame-32-on-16x16-canvas.webp``: the same with a 32x32 first frame (logic,
     not memory: the frame sticks out of the canvas).
7. ``tiny-1x1.png``: a valid 1x1 RGB PNG, the source for output-size attacks (requests
   that ask a 1-pixel original for a 50-67 MP output or a 4096x4096 AVIF at q=100).
8. ``html-appended.jpg``: a valid 16x16 grey baseline JPEG (built here, 141 bytes) followed
   by an HTML document with a script, within the first 512 bytes a browser sniffs. The
   original must be served as ``image/jpeg`` with ``X-Content-Type-Options: nosniff``.

Fuzz seeds
----------
Copies of the smallest files (each under 4 KB), as ``fuzz/seeds/decode/hostile-<name>``:
gif-frame-14500-on-1x1-canvas.gif, gif-second-frame-14500.gif,
gif-frame-offset-outside-canvas.gif, gif-zero-screen.gif, gif-zero-width-frame.gif,
jpeg-progressive-10000x10000-ycck-empty-scans.jpg, png-iccp-zero-length.png,
png-ztxt-length-2gb-truncated.png, webp-vp8l-16384x16384.webp,
webp-vp8x-canvas-16383-vp8l-1x1.webp, webp-riff-size-larger-than-file.webp,
webp-anim-frame-16384-on-16x16-canvas.webp, tiny-1x1.png, html-appended.jpg.

Licences: files derived from small.jpg (class 4) are CC-BY-4.0 adaptations (Aitzol
Berasategi, 2018); everything else is generated from scratch here (CC0-1.0).
"""

import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TESTDATA = os.path.dirname(HERE)
REPO = os.path.dirname(TESTDATA)
SEED_DIR = os.path.join(REPO, "fuzz", "seeds", "decode")

SEEDS = [
    "gif-frame-14500-on-1x1-canvas.gif",
    "gif-second-frame-14500.gif",
    "gif-frame-offset-outside-canvas.gif",
    "gif-zero-screen.gif",
    "gif-zero-width-frame.gif",
    "jpeg-progressive-10000x10000-ycck-empty-scans.jpg",
    "png-iccp-zero-length.png",
    "png-ztxt-length-2gb-truncated.png",
    "webp-vp8l-16384x16384.webp",
    "webp-vp8x-canvas-16383-vp8l-1x1.webp",
    "webp-riff-size-larger-than-file.webp",
    "webp-anim-frame-16384-on-16x16-canvas.webp",
    "webp-anim-second-frame-garbage.webp",
    "webp-anim-truncated.webp",
    "gif-40-frames-on-4000x4000.gif",
    "tiny-1x1.png",
    "html-appended.jpg",
]

# Expected statuses. 503 (decode budget full, Retry-After) is acceptable everywhere.
REFUSE = [400, 413, 415, 422, 503]
OK = [200, 503]
OK_OR_REFUSE = [200, 400, 413, 415, 422, 503]
LIMIT = [422, 503]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def zlib_of_zeros(n, level=9, chunk=1 << 20):
    """zlib stream of `n` zero bytes, compressed in pieces (never holds `n` bytes at once)."""
    c = zlib.compressobj(level)
    out = []
    zeros = bytes(chunk)
    left = n
    while left:
        take = min(left, chunk)
        out.append(c.compress(zeros if take == chunk else bytes(take)))
        left -= take
    out.append(c.flush())
    return b"".join(out)


# --- GIF ---------------------------------------------------------------------------------------

def lzw_encode(indices, min_code_size, leading_clears=1):
    """GIF LZW (variable width, LSB first). Returns the packed bytes, without sub-blocks."""
    clear = 1 << min_code_size
    eoi = clear + 1
    acc = 0
    nacc = 0
    out = bytearray()

    def emit(code, width):
        nonlocal acc, nacc
        acc |= code << nacc
        nacc += width
        while nacc >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nacc -= 8

    def reset():
        return {(i,): i for i in range(clear)}, eoi + 1, min_code_size + 1

    table, next_code, width = reset()
    for _ in range(leading_clears):
        emit(clear, width)
    w = ()
    for k in indices:
        wk = w + (k,)
        if wk in table:
            w = wk
            continue
        emit(table[w], width)
        table[wk] = next_code
        next_code += 1
        # The decoder reads the next code wider once its next free entry passes 2^width.
        if next_code > (1 << width) and width < 12:
            width += 1
        if next_code == 4096:
            emit(clear, width)
            table, next_code, width = reset()
        w = (k,)
    if w:
        emit(table[w], width)
    emit(eoi, width)
    if nacc:
        out.append(acc & 0xFF)
    return bytes(out)


def gif_subblocks(data):
    out = bytearray()
    for i in range(0, len(data), 255):
        part = data[i:i + 255]
        out.append(len(part))
        out += part
    out.append(0)
    return bytes(out)


def gif_header(w, h, palette):
    """GIF89a header, logical screen and global colour table (2, 4, ... 256 entries)."""
    n = len(palette)
    size_bits = max(0, (n - 1).bit_length() - 1)
    assert 2 << size_bits == n, "palette must have 2^k entries"
    packed = 0x80 | (size_bits << 4) | size_bits  # GCT present, colour resolution, GCT size
    return (b"GIF89a" + struct.pack("<HHBBB", w, h, packed, 0, 0)
            + b"".join(bytes(c) for c in palette))


def gif_image(left, top, w, h, lzw_min, lzw_data):
    return (b"\x2c" + struct.pack("<HHHHB", left, top, w, h, 0)
            + bytes([lzw_min]) + gif_subblocks(lzw_data))


def gif_gce(delay_cs):
    return b"\x21\xf9\x04" + struct.pack("<BHB", 0, delay_cs, 0) + b"\x00"


GIF_LOOP = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
GIF_PALETTE4 = [(0, 0, 0), (255, 255, 255), (200, 40, 40), (40, 80, 200)]


def gif_pattern(w, h):
    """A 4-colour checker-ish pattern (so the LZW stream is not trivial)."""
    return [((x // 2) + (y // 2) + (x * y)) % 4 for y in range(h) for x in range(w)]


# --- JPEG --------------------------------------------------------------------------------------

def seg(marker, payload):
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def sof_payload(w, h, comps, precision=8):
    """comps: [(id, hv, tq)]"""
    return (struct.pack(">BHHB", precision, h, w, len(comps))
            + b"".join(bytes(c) for c in comps))


def sos_payload(comps, ss, se, ah, al):
    """comps: [(id, td<<4|ta)]"""
    return (bytes([len(comps)]) + b"".join(bytes(c) for c in comps)
            + bytes([ss, se, (ah << 4) | al]))


def dht_payload(tc, th, counts, symbols):
    assert len(counts) == 16 and sum(counts) == len(symbols)
    return bytes([(tc << 4) | th]) + bytes(counts) + bytes(symbols)


def one_code(symbol):
    """Huffman counts/symbols for a table with a single 1-bit code '0'."""
    return [1] + [0] * 15, [symbol]


DQT_ONES = seg(0xDB, b"\x00" + b"\x01" * 64)
ADOBE_YCCK = seg(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 2))


class BitsMSB:
    """JPEG entropy-coded bits: MSB first, 0xFF stuffed, last byte padded with ones."""

    def __init__(self):
        self.acc = 0
        self.n = 0
        self.out = bytearray()

    def put(self, value, nbits):
        self.acc = (self.acc << nbits) | (value & ((1 << nbits) - 1))
        self.n += nbits
        while self.n >= 8:
            self.n -= 8
            byte = (self.acc >> self.n) & 0xFF
            self.out.append(byte)
            if byte == 0xFF:
                self.out.append(0)
        self.acc &= (1 << self.n) - 1

    def finish(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)
        return bytes(self.out)


def eob_runs(blocks):
    """AC scan data covering `blocks` all-zero blocks with EOB14 runs (code '0' + 14 bits)."""
    b = BitsMSB()
    left = blocks
    while left:
        run = min(left, 32767)
        assert run >= 16384, "the tail run must still be an EOB14 run"
        b.put(0, 1)               # the one code of the AC table: symbol 0xE0 (EOB14)
        b.put(run - 16384, 14)
        left -= run
    return b.finish()


def split_jpeg(data):
    """Split a single-scan baseline JPEG: ([(marker, payload)] before SOS, SOS payload,
    entropy-coded data, and check it ends with EOI)."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    segs = []
    i = 2
    while True:
        assert data[i] == 0xFF, f"no marker at {i}"
        m = data[i + 1]
        n = struct.unpack(">H", data[i + 2:i + 4])[0]
        payload = data[i + 4:i + 2 + n]
        i += 2 + n
        if m == 0xDA:
            sos = payload
            break
        segs.append((m, payload))
    assert data[-2:] == b"\xff\xd9", "small.jpg must end with EOI"
    entropy = data[i:-2]
    # One scan only: no other SOS marker inside the entropy data.
    assert b"\xff\xda" not in entropy
    return segs, sos, entropy


def join_jpeg(segs, sos, entropy, before_eoi=b"", after_eoi=b""):
    out = bytearray(b"\xff\xd8")
    for m, p in segs:
        out += p if m is None else seg(m, p)   # m None: raw bytes spliced in as they are
    out += seg(0xDA, sos) + entropy + before_eoi + b"\xff\xd9" + after_eoi
    return bytes(out)


def tiny_jpeg():
    """A valid 16x16 grey baseline JPEG: 4 blocks, each DC diff 0 then EOB (2 bits each)."""
    dc_counts, dc_syms = one_code(0x00)       # DC: size 0 (difference 0)
    ac_counts, ac_syms = one_code(0x00)       # AC: EOB
    b = BitsMSB()
    for _ in range(4):
        b.put(0, 1)
        b.put(0, 1)
    return (b"\xff\xd8" + DQT_ONES
            + seg(0xC4, dht_payload(0, 0, dc_counts, dc_syms))
            + seg(0xC4, dht_payload(1, 0, ac_counts, ac_syms))
            + seg(0xC0, sof_payload(16, 16, [(1, 0x11, 0)]))
            + seg(0xDA, sos_payload([(1, 0x00)], 0, 63, 0, 0))
            + b.finish() + b"\xff\xd9")


# --- PNG ---------------------------------------------------------------------------------------

PNG_SIG = b"\x89PNG\r\n\x1a\n"


def chunk(typ, data, length=None):
    n = len(data) if length is None else length
    return struct.pack(">I", n) + typ + data + struct.pack(">I", zlib.crc32(typ + data))


def ihdr(w, h, depth, ctype):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))


def idat_chunks(stream, size=1 << 16):
    return b"".join(chunk(b"IDAT", stream[i:i + size]) for i in range(0, len(stream), size))


IEND = chunk(b"IEND", b"")
GRAY1x1 = zlib.compress(b"\x00\x80", 9)  # filter 0, one mid-grey sample


# --- WebP --------------------------------------------------------------------------------------

class BitsLSB:
    def __init__(self):
        self.acc = 0
        self.n = 0

    def put(self, value, nbits):
        assert 0 <= value < (1 << nbits)
        self.acc |= value << self.n
        self.n += nbits

    def bytes(self):
        return self.acc.to_bytes((self.n + 7) // 8, "little")


def vp8l_solid(w, h, argb=(255, 0x66, 0x99, 0xCC)):
    """A VP8L bitstream of one colour: no transform, no colour cache, one prefix-code group
    whose five codes are 'simple' with a single symbol (0 bits per pixel)."""
    assert 1 <= w <= 16384 and 1 <= h <= 16384
    a, r, g, b = argb
    bits = BitsLSB()
    bits.put(0x2F, 8)         # signature
    bits.put(w - 1, 14)
    bits.put(h - 1, 14)
    bits.put(0, 1)            # alpha_is_used (a hint)
    bits.put(0, 3)            # version 0
    bits.put(0, 1)            # no (more) transforms
    bits.put(0, 1)            # no colour cache
    bits.put(0, 1)            # no meta prefix codes
    for sym in (g, r, b, a, 0):   # green, red, blue, alpha, distance
        bits.put(1, 1)        # simple code
        bits.put(0, 1)        # one symbol
        bits.put(1, 1)        # symbol stored in 8 bits
        bits.put(sym, 8)
    return bits.bytes()


def riff_chunk(fourcc, payload):
    pad = b"\x00" if len(payload) % 2 else b""
    return fourcc + struct.pack("<I", len(payload)) + payload + pad


def webp(chunks, riff_size=None):
    body = b"WEBP" + b"".join(chunks)
    size = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", size) + body


def u24(v):
    return struct.pack("<I", v)[:3]


def vp8x(flags, cw, ch):
    return riff_chunk(b"VP8X", bytes([flags]) + b"\x00\x00\x00" + u24(cw - 1) + u24(ch - 1))


def anmf(x, y, w, h, duration, frame_chunks):
    return riff_chunk(b"ANMF", u24(x // 2) + u24(y // 2) + u24(w - 1) + u24(h - 1)
                      + u24(duration) + b"\x00" + b"".join(frame_chunks))


# --------------------------------------------------------------------------------------------
# The files
# --------------------------------------------------------------------------------------------

def make_gifs(files):
    lzw_min = 2  # 4-colour palette
    # 1. 14500x14500 frame on a 1x1 screen: 3 clears, 256 pixels, EOI.
    data = lzw_encode(gif_pattern(16, 16), lzw_min, leading_clears=3)
    files["gif-frame-14500-on-1x1-canvas.gif"] = (
        gif_header(1, 1, GIF_PALETTE4) + gif_image(0, 0, 14500, 14500, lzw_min, data) + b"\x3b")

    full16 = lzw_encode(gif_pattern(16, 16), lzw_min)
    files["gif-second-frame-14500.gif"] = (
        gif_header(16, 16, GIF_PALETTE4) + GIF_LOOP
        + gif_gce(10) + gif_image(0, 0, 16, 16, lzw_min, full16)
        + gif_gce(10) + gif_image(0, 0, 14500, 14500, lzw_min, data)
        + b"\x3b")

    files["gif-frame-offset-outside-canvas.gif"] = (
        gif_header(16, 16, GIF_PALETTE4)
        + gif_image(65530, 65530, 16, 16, lzw_min, full16) + b"\x3b")

    # 2. Zero sizes: clear + EOI only.
    empty = lzw_encode([], lzw_min)
    files["gif-zero-screen.gif"] = (
        gif_header(0, 0, GIF_PALETTE4) + gif_image(0, 0, 0, 0, lzw_min, empty) + b"\x3b")
    files["gif-zero-width-frame.gif"] = (
        gif_header(16, 16, GIF_PALETTE4) + gif_image(0, 0, 0, 16, lzw_min, empty) + b"\x3b")


def make_progressive(files):
    dc_counts, dc_syms = one_code(0x00)     # DC: difference 0
    ac_counts, ac_syms = one_code(0x00)     # AC: EOB
    eob14_counts, eob14_syms = one_code(0xE0)  # AC: EOB run 2^14 + 14 bits
    tables = (DQT_ONES + seg(0xC4, dht_payload(0, 0, dc_counts, dc_syms))
              + seg(0xC4, dht_payload(1, 0, ac_counts, ac_syms)))

    # 3a. 10000x10000, 4 components (YCCK), six scans with no entropy data.
    comps = [(c, 0x11, 0) for c in (1, 2, 3, 4)]
    scans = [seg(0xDA, sos_payload([(c, 0x00) for c in (1, 2, 3, 4)], 0, 0, 0, 1)),
             seg(0xDA, sos_payload([(c, 0x00) for c in (1, 2, 3, 4)], 0, 0, 1, 0))]
    scans += [seg(0xDA, sos_payload([(c, 0x00)], 1, 63, 0, 0)) for c in (1, 2, 3, 4)]
    files["jpeg-progressive-10000x10000-ycck-empty-scans.jpg"] = (
        b"\xff\xd8" + ADOBE_YCCK + tables + seg(0xC2, sof_payload(10000, 10000, comps))
        + b"".join(scans) + b"\xff\xd9")

    # 3b. 4000x4000 grey, 2000 scans with no entropy data.
    grey = seg(0xC2, sof_payload(4000, 4000, [(1, 0x11, 0)]))
    scans = [seg(0xDA, sos_payload([(1, 0x00)], 0, 0, 0, 0))]
    scans += [seg(0xDA, sos_payload([(1, 0x00)], 1, 63, 0, 0))] * 1999
    files["jpeg-progressive-4000x4000-2000-empty-scans.jpg"] = (
        b"\xff\xd8" + tables + grey + b"".join(scans) + b"\xff\xd9")

    # 3c. 4000x4000 grey, 883 fully coded scans in a legal script.
    blocks = 500 * 500
    tables = (DQT_ONES + seg(0xC4, dht_payload(0, 0, dc_counts, dc_syms))
              + seg(0xC4, dht_payload(1, 0, eob14_counts, eob14_syms)))
    out = bytearray(b"\xff\xd8" + tables + grey)
    out += seg(0xDA, sos_payload([(1, 0x00)], 0, 0, 0, 0)) + bytes(blocks // 8)  # '0' per block
    runs = eob_runs(blocks)
    for al in range(13, -1, -1):
        ah = 0 if al == 13 else al + 1
        for k in range(1, 64):
            out += seg(0xDA, sos_payload([(1, 0x00)], k, k, ah, al)) + runs
    out += b"\xff\xd9"
    files["jpeg-progressive-4000x4000-883-scans-complete.jpg"] = bytes(out)


FAKE_SOF_HUGE = seg(0xC0, sof_payload(65535, 65535, [(1, 0x22, 0), (2, 0x11, 1), (3, 0x11, 1)]))


def make_jpeg_differentials(files):
    with open(os.path.join(TESTDATA, "small.jpg"), "rb") as f:
        base = f.read()
    segs, sos, entropy = split_jpeg(base)
    markers = [m for m, _ in segs]
    assert markers.count(0xC0) == 1 and not any(m in markers for m in range(0xC1, 0xD0)
                                               if m not in (0xC4, 0xC8, 0xCC)), \
        "small.jpg must be baseline (SOF0) with one frame header"
    sof_at = markers.index(0xC0)
    sof = segs[sof_at][1]
    prec, h, w, nf = struct.unpack(">BHHB", sof[:6])
    assert (prec, w, h, nf) == (8, 640, 427, 3), (prec, w, h, nf)
    comps = [tuple(sof[6 + 3 * i:9 + 3 * i]) for i in range(nf)]
    assert [c[0] for c in comps] == [1, 2, 3]
    assert sos[0] == 3 and [sos[1], sos[3], sos[5]] == [1, 2, 3]

    def with_segments(new_segs, **kw):
        return join_jpeg(new_segs, kw.pop("sos", sos), entropy, **kw)

    def replace_sof(*replacement):
        return segs[:sof_at] + list(replacement) + segs[sof_at + 1:]

    # (a) lengthless markers before SOS.
    files["jpeg-rst0-before-sof.jpg"] = with_segments(
        replace_sof((None, b"\xff\xd0"), (0xC0, sof)))
    tem = b"\xff\x01" + b"\x00\x06" + seg(0xFE, FAKE_SOF_HUGE)
    assert tem[2 + 6:2 + 6 + 2] == b"\xff\xc0"  # where a walker reading TEM's "length" lands
    files["jpeg-tem-fake-length-hides-sof.jpg"] = with_segments(
        replace_sof((None, tem), (0xC0, sof)))

    # (b) two frame headers.
    four = [(c, 0x11, 0) for c in (1, 2, 3, 4)]
    files["jpeg-two-sof-256-then-65535x4.jpg"] = with_segments(
        replace_sof((0xC0, sof_payload(256, 256, comps)), (0xC0, sof_payload(65535, 65535, four))))
    files["jpeg-two-sof-real-then-65535.jpg"] = with_segments(
        replace_sof((0xC0, sof), (0xC0, sof_payload(65535, 65535, comps))))
    files["jpeg-sof-after-scan-65535.jpg"] = with_segments(
        segs, before_eoi=seg(0xC0, sof_payload(65535, 65535, comps)))

    # (c) junk around EOI.
    junk = b"imgfn: junk after the entropy-coded data, before EOI. " + b"\xff" * 16
    assert b"\xff" not in junk[:-16]
    files["jpeg-junk-before-eoi.jpg"] = with_segments(segs, before_eoi=junk)
    trailer = bytes(32) + b"\xff\xd8" + FAKE_SOF_HUGE + b"\xff\xd9" + b"imgfn: trailing junk\n"
    files["jpeg-junk-after-eoi.jpg"] = with_segments(segs, after_eoi=trailer)

    # (d) bad frame headers.
    files["jpeg-sof-zero-components.jpg"] = with_segments(
        replace_sof((0xC0, sof_payload(640, 427, []))))
    for name, hv in (("jpeg-sof-sampling-0.jpg", 0x00), ("jpeg-sof-sampling-5.jpg", 0x55)):
        bad = [(1, hv, comps[0][2])] + comps[1:]
        files[name] = with_segments(replace_sof((0xC0, sof_payload(640, 427, bad))))
    dup = [(1, c[1], c[2]) for c in comps]
    dup_sos = bytes([3, 1, sos[2], 1, sos[4], 1, sos[6]]) + sos[7:]
    files["jpeg-sof-duplicate-component-ids.jpg"] = with_segments(
        replace_sof((0xC0, sof_payload(640, 427, dup))), sos=dup_sos)
    files["jpeg-sof-height-0-dnl.jpg"] = with_segments(
        replace_sof((0xC0, sof_payload(640, 0, comps))),
        before_eoi=seg(0xDC, struct.pack(">H", 427)))

    # (e) a scan naming a component the frame does not have.
    files["jpeg-sos-unknown-component.jpg"] = with_segments(
        segs, sos=sos[:5] + bytes([9]) + sos[6:])

    # (f) bad Huffman tables.
    counts = [0] * 14 + [100, 200]
    over = (0xC4, dht_payload(1, 3, counts, [k % 256 for k in range(300)]))
    first_dht = markers.index(0xC4)
    files["jpeg-dht-counts-sum-300.jpg"] = with_segments(
        segs[:first_dht] + [over] + segs[first_dht:])
    dc0 = [i for i, (m, p) in enumerate(segs) if m == 0xC4 and p[0] == 0x00]
    assert len(dc0) == 1, "small.jpg: one DHT segment holding exactly the DC 0 table"
    table = segs[dc0[0]][1]
    syms = list(table[17:])
    assert len(table) == 17 + sum(table[1:17]) and 4 <= len(syms) <= 18
    # The same symbols, but three codes of length 1, then one per length.
    counts = [3] + [1] * (len(syms) - 3)
    overlong = (0xC4, dht_payload(0, 0, counts + [0] * (16 - len(counts)), syms))
    files["jpeg-dht-overlong-codes.jpg"] = with_segments(
        segs[:dc0[0]] + [overlong] + segs[dc0[0] + 1:])


def make_pngs(files):
    raw = 10000 * (1 + 10000)
    files["png-bomb-10000x10000-gray8.png"] = (
        PNG_SIG + ihdr(10000, 10000, 8, 0) + idat_chunks(zlib_of_zeros(raw)) + IEND)
    raw = 20000 * (1 + 20000 // 8)
    files["png-bomb-20000x20000-gray1.png"] = (
        PNG_SIG + ihdr(20000, 20000, 1, 0) + idat_chunks(zlib_of_zeros(raw)) + IEND)

    fifty = zlib_of_zeros(50 << 20)
    head = PNG_SIG + ihdr(1, 1, 8, 0)
    tail = chunk(b"IDAT", GRAY1x1) + IEND
    files["png-iccp-zlib-bomb-50mb.png"] = head + chunk(b"iCCP", b"bomb\x00\x00" + fifty) + tail
    files["png-ztxt-zlib-bomb-50mb.png"] = head + chunk(b"zTXt", b"Comment\x00\x00" + fifty) + tail
    files["png-iccp-zero-length.png"] = head + chunk(b"iCCP", b"") + tail
    start = b"Comment\x00\x00" + zlib.compress(b"x" * 64)[:8]
    # Length field 2^31-1 (the largest PNG allows), then only 20 bytes and the end of file.
    files["png-ztxt-length-2gb-truncated.png"] = (
        head + struct.pack(">I", 0x7FFFFFFF) + b"zTXt" + start + b"\x00\x00\x00")
    files["png-1x1-idat-inflates-50mb.png"] = head + idat_chunks(fifty, 8192) + IEND

    # 7. tiny valid 1x1 RGB.
    files["tiny-1x1.png"] = (PNG_SIG + ihdr(1, 1, 8, 2)
                             + chunk(b"IDAT", zlib.compress(b"\x00\xc8\x50\x28", 9)) + IEND)


def make_webps(files):
    files["webp-vp8l-16384x16384.webp"] = webp([riff_chunk(b"VP8L", vp8l_solid(16384, 16384))])
    files["webp-vp8l-10000x10000.webp"] = webp([riff_chunk(b"VP8L", vp8l_solid(10000, 10000))])
    one = riff_chunk(b"VP8L", vp8l_solid(1, 1))
    files["webp-vp8x-canvas-16383-vp8l-1x1.webp"] = webp([vp8x(0, 16383, 16383), one])
    files["webp-vp8x-canvas-10000-vp8l-1x1.webp"] = webp([vp8x(0, 10000, 10000), one])
    s64 = riff_chunk(b"VP8L", vp8l_solid(64, 64))
    files["webp-riff-size-larger-than-file.webp"] = webp([s64], riff_size=0xFFFFFFF8)
    files["webp-riff-size-too-small.webp"] = webp([s64], riff_size=12)
    anim = riff_chunk(b"ANIM", b"\xff\xff\xff\xff" + struct.pack("<H", 0))
    for name, n in (("webp-anim-frame-16384-on-16x16-canvas.webp", 16384),
                    ("webp-anim-frame-32-on-16x16-canvas.webp", 32)):
        frame = anmf(0, 0, n, n, 100, [riff_chunk(b"VP8L", vp8l_solid(n, n))])
        files[name] = webp([vp8x(0x02, 16, 16), anim, frame])


def make_animations(files):
    """Animations that stay animated (GIF or WebP out): the frame limits are read from the
    container before any frame is decoded, and broken frames end the render with a 4xx."""
    lzw_min = 2
    full16 = lzw_encode(gif_pattern(16, 16), lzw_min)
    frames = b"".join(gif_gce(2) + gif_image(0, 0, 16, 16, lzw_min, full16) for _ in range(2000))
    files["gif-2000-frames.gif"] = gif_header(16, 16, GIF_PALETTE4) + GIF_LOOP + frames + b"\x3b"
    one = lzw_encode(gif_pattern(1, 1), lzw_min)
    frames = b"".join(gif_gce(2) + gif_image(0, 0, 1, 1, lzw_min, one) for _ in range(40))
    files["gif-40-frames-on-4000x4000.gif"] = (
        gif_header(4000, 4000, GIF_PALETTE4) + GIF_LOOP + frames + b"\x3b")
    anim = riff_chunk(b"ANIM", b"\xff\xff\xff\xff" + struct.pack("<H", 0))
    good = anmf(0, 0, 16, 16, 100, [riff_chunk(b"VP8L", vp8l_solid(16, 16))])
    bad = anmf(0, 0, 16, 16, 100, [riff_chunk(b"VP8L", b"\x2f\x0f\xc0\x03" + b"\xa5" * 40)])
    files["webp-anim-second-frame-garbage.webp"] = webp([vp8x(0x02, 16, 16), anim, good, bad])
    whole = webp([vp8x(0x02, 16, 16), anim, good, good])
    files["webp-anim-truncated.webp"] = whole[: len(whole) - 20]


def make_html_appended(files):
    html = (b"<!DOCTYPE html><html><head><title>imgfn sniff test</title></head><body>"
            b"<script>document.title = 'imgfn-sniffed'; /* served as HTML: nosniff failed */"
            b"</script><h1>If this renders as a page, the JPEG was sniffed as HTML.</h1>"
            b"</body></html>\n")
    jpg = tiny_jpeg()
    assert len(jpg) + 64 < 512, "the HTML must start within the bytes a browser sniffs"
    files["html-appended.jpg"] = jpg + html


# --------------------------------------------------------------------------------------------
# The manifest
# --------------------------------------------------------------------------------------------

def manifest():
    m = []

    def add(name, query, expect, why):
        m.append({"file": "hostile/" + name, "query": query, "expect": sorted(expect), "why": why})

    HDR = "fmt=json reads the header only: "
    # --- GIF ---
    n = "gif-frame-14500-on-1x1-canvas.gif"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "the logical screen says 1x1 (200 with 1x1); a probe "
        "that also checks the first frame may refuse it (422).")
    for q in ("w=64&fmt=png", "w=64&fmt=webp", "w=64&fmt=gif"):
        add(n, q, OK_OR_REFUSE, "First frame is 14500x14500 (210 MP, 841 MB as RGBA) on a 1x1 "
            "screen with only 256 pixels of LZW data. 422 (frame exceeds the screen / "
            "truncated frame) or a 200 from a decoder that clips the frame to the 1x1 screen; "
            "a 200 must not have allocated the frame (watch RSS).")
    n = "gif-second-frame-14500.gif"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "16x16 screen, 200 expected.")
    for q in ("w=64&fmt=png", "w=64&fmt=avif"):
        add(n, q, OK_OR_REFUSE, "Frame 1 is a valid 16x16; frame 2 is 14500x14500 with 256 "
            "pixels of data. Only the first frame is decoded, so 200 is right; 422 is "
            "acceptable from a server that validates every frame descriptor.")
    n = "gif-frame-offset-outside-canvas.gif"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "16x16 screen, 200 expected.")
    add(n, "w=64&fmt=png", OK_OR_REFUSE, "16x16 frame at left=top=65530 (left+width overflows a "
        "u16): 200 with an empty canvas from a decoder that clips, or 422; never a panic on "
        "the overflow.")
    n = "gif-zero-screen.gif"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "a 0x0 screen. 422 is preferred; 200 reporting 0x0 "
        "is tolerable (no pixels are touched).")
    for q in ("w=64&fmt=png", "w=64&h=64&fit=pad&fmt=webp"):
        add(n, q, REFUSE, "0x0 screen and frame: nothing to resize (aspect ratio 0/0). "
            "Must be refused (422), never a division by zero or a 500.")
    n = "gif-zero-width-frame.gif"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "16x16 screen, 200 expected.")
    add(n, "w=64&fmt=png", OK_OR_REFUSE, "16x16 screen with a 0x16 frame: a blank 16x16 canvas "
        "(200) or 422; never a zero-width allocation panic.")

    # --- progressive JPEG ---
    n = "jpeg-progressive-10000x10000-ycck-empty-scans.jpg"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "SOF2 says 10000x10000 (exactly 100 MP, not over "
        "max_source_pixels), so 200 with those dimensions, or 422 from a probe that prices the "
        "coefficient buffer.")
    for q in ("w=64&fmt=png", "w=64&fmt=jpeg", "w=64&fmt=avif"):
        add(n, q, REFUSE, "227 bytes that make libjpeg allocate its progressive coefficient "
            "buffer: 10000*10000*4 components*2 bytes = 800 MB, plus 400 MB of CMYK output at "
            "full scale. The scans hold no entropy data, so libjpeg would only pad with grey "
            "('premature end of data segment'): a corrupt/truncated file by imgfn's own policy "
            "and too costly: must be 422 (or 503), not 200.")
    n = "jpeg-progressive-4000x4000-2000-empty-scans.jpg"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "4000x4000 grey; 200, or 422 from a probe that counts "
        "scans.")
    for q in ("w=64&fmt=png", "w=64&fmt=webp"):
        add(n, q, REFUSE, "2000 SOS segments with no entropy data: each is a full pass over "
            "250,000 blocks (seconds of CPU from 20 KB), and every scan is empty (libjpeg pads "
            "with grey). Must be refused (scan cap / corrupt), not decoded.")
    n = "jpeg-progressive-4000x4000-883-scans-complete.jpg"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "4000x4000 grey; 200, or 422 from a probe that counts "
        "scans.")
    add(n, "w=64&fmt=png", OK_OR_REFUSE, "A conformant progressive file: 883 fully coded scans in "
        "a legal successive-approximation script (no libjpeg warning), 16 MP within limits. "
        "200 is legitimate if it finishes in reasonable time; 422 from a scan cap (real "
        "encoders write at most a few dozen scans) is the better answer.")

    # --- JPEG differentials (from small.jpg, 640x427) ---
    dc = "w=32 takes the DC-only fast path (1/8 scale); w=64 goes to libjpeg at 1/4. "
    for n, json_ok, render_ok, why in [
        ("jpeg-rst0-before-sof.jpg", OK_OR_REFUSE, OK_OR_REFUSE,
         "A lengthless RST0 before SOF0. libjpeg ignores it (parameterless marker) and decodes "
         "640x427; a walker that reads a length after every marker reads 0xFFC0 and jumps into "
         "the entropy data. 200 (as libjpeg) or 422 (refused as malformed: RSTn belongs inside "
         "scans); the probe, completeness check and decoder must agree, never a 5xx."),
        ("jpeg-tem-fake-length-hides-sof.jpg", OK_OR_REFUSE, OK_OR_REFUSE,
         "TEM, 2 stray bytes 00 06, then a COM holding a fake SOF0 65535x65535. libjpeg: "
         "warning (extraneous bytes), then the real 640x427. A naive walker reports "
         "65535x65535. 200 reporting 640x427, or 422 (refusing what libjpeg warns about); "
         "json must never say 65535x65535."),
        ("jpeg-two-sof-256-then-65535x4.jpg", REFUSE, REFUSE,
         "Two SOF0: 256x256x3 then 65535x65535x4. libjpeg stops with 'two SOF markers' while "
         "reading the header: 422 for json and renders."),
        ("jpeg-two-sof-real-then-65535.jpg", REFUSE, REFUSE,
         "The real SOF0 then a second SOF0 65535x65535: duplicate frame header, 422."),
        ("jpeg-sof-after-scan-65535.jpg", OK_OR_REFUSE, OK_OR_REFUSE,
         "A second SOF0 (65535x65535) after the scan, before EOI. The header before the scan is "
         "valid (json 200 with 640x427 or 422); libjpeg meets the SOF only when it finishes "
         "(error: two SOF markers), so a render is 422, or 200 if the decoder stops at the end "
         "of the scan. A 'last SOF wins' parser would say 65535x65535."),
        ("jpeg-junk-before-eoi.jpg", OK_OR_REFUSE, OK_OR_REFUSE,
         "Text bytes and 0xFF fill between the entropy data and EOI: libjpeg warns "
         "(extraneous bytes) and decodes the complete image. 200, or 422 from a server that "
         "refuses files libjpeg warns about."),
        ("jpeg-junk-after-eoi.jpg", OK, OK,
         "Everything up to EOI is the untouched small.jpg; after EOI come zeros and a fake "
         "JPEG (SOI, SOF0 65535x65535, EOI). Bytes after EOI are not part of the image: 200 "
         "with 640x427."),
        ("jpeg-sof-zero-components.jpg", REFUSE, REFUSE,
         "SOF0 with 0 components: libjpeg 'empty JPEG image' at the header: 422."),
        ("jpeg-sof-sampling-0.jpg", REFUSE, REFUSE,
         "Luma sampling factors 0x0 (legal 1..4): libjpeg 'bogus sampling factors' at the "
         "header: 422 (a divide by the sampling factor must not happen)."),
        ("jpeg-sof-sampling-5.jpg", REFUSE, REFUSE,
         "Luma sampling factors 5x5 (legal 1..4): 422 at the header."),
        ("jpeg-sof-duplicate-component-ids.jpg", OK_OR_REFUSE, OK_OR_REFUSE,
         "Component ids 1,1,1 in SOF and SOS. libjpeg-turbo renames duplicates and may decode "
         "(200); a stricter parser refuses (422). Both are fine; the DC fast path and libjpeg "
         "must not map components differently without one of them refusing."),
        ("jpeg-sof-height-0-dnl.jpg", REFUSE, REFUSE,
         "SOF0 height 0 with a DNL segment after the scan (T.81's deferred height; libjpeg "
         "does not support it: 'empty JPEG image'). 422; never a 0-row allocation."),
        ("jpeg-sos-unknown-component.jpg", REFUSE, REFUSE,
         "The scan names component 9, which the frame does not have: libjpeg 'invalid "
         "component ID 9 in SOS' while reading the header: 422."),
        ("jpeg-dht-counts-sum-300.jpg", REFUSE, REFUSE,
         "An extra DHT (AC table 3, unused) whose counts sum to 300 > 256, with 300 symbols: "
         "libjpeg 'bogus Huffman table definition' at the header: 422, even though no scan "
         "uses the table."),
        ("jpeg-dht-overlong-codes.jpg", OK_OR_REFUSE, REFUSE,
         "The luma DC table has three 1-bit codes (every canonical code overflows its length). "
         "libjpeg parses it with the header (json 200, or 422 from a stricter probe) and "
         "refuses it when it builds the table to decode: renders 422 (the DC fast path must "
         "refuse it too, not read past its tables)."),
    ]:
        add(n, "fmt=json", json_ok, HDR + why)
        add(n, "w=64&fmt=png", render_ok, dc + why)
        add(n, "w=32&fmt=png", render_ok, dc + why)
    add("jpeg-tem-fake-length-hides-sof.jpg", "w=64&fmt=webp", OK_OR_REFUSE,
        "As w=64&fmt=png: the output must be 640x427-shaped (64x43), never planned from "
        "65535x65535.")

    # --- PNG ---
    n = "png-bomb-10000x10000-gray8.png"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "10000x10000 (exactly 100 MP): 200.")
    for q in ("w=64&fmt=png", "w=64&fmt=webp", "w=64&fmt=avif"):
        add(n, q, OK_OR_REFUSE, "A real 10000x10000 grey PNG (all black) from ~97 KB: 100 MB of "
            "IDAT after inflate, 300 MB as RGB. Exactly at max_source_pixels (not over), so a "
            "200 is within the documented contract; 422 from a memory-weighted admission and "
            "503 from the pixel budget are fine. Watch RSS and time.")
    add(n, "fmt=png", LIMIT, "No resize: the output would be 10000x10000 = 100 MP > "
        "max_output_pixels (50 MP): 422, decided from the plan before any decoding.")
    n = "png-bomb-20000x20000-gray1.png"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "20000x20000 (400 MP): 200 reporting it, or 422.")
    for q in ("w=64&fmt=png", "w=64&fmt=jpeg"):
        add(n, q, REFUSE, "400 MP (1-bit grey; 50 MB after inflate, 1.2 GB as 8-bit RGB) from "
            "~49 KB: over max_source_pixels (100 MP): 422 from the header, nothing inflated.")
    for n, what in [("png-iccp-zlib-bomb-50mb.png", "an iCCP profile that inflates to 50 MB"),
                    ("png-ztxt-zlib-bomb-50mb.png", "a zTXt text that inflates to 50 MB")]:
        add(n, "fmt=json", OK_OR_REFUSE, HDR + f"a valid 1x1 grey with {what}, before IDAT. 200 "
            "(1x1) if the chunk is skipped or inflated under a bound, 422 if refused; never "
            "50 MB inflated per request.")
        add(n, "w=64&fmt=png", OK_OR_REFUSE, f"A valid 1x1 grey with {what}: 200 from a "
            "decoder that ignores or bounds ancillary chunks, or 422. Metadata is never copied "
            "to the output, so there is no reason to inflate it.")
        add(n, "w=64&fmt=webp", OK_OR_REFUSE, f"As w=64&fmt=png ({what}).")
    n = "png-iccp-zero-length.png"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "valid 1x1 with an empty (0-byte) iCCP chunk: 200 if "
        "the ancillary chunk is ignored, 422 if refused.")
    add(n, "w=64&fmt=png", OK_OR_REFUSE, "Empty iCCP (no name, no compression byte): an "
        "ancillary chunk, so 200 (ignored) or 422; never an out-of-bounds read.")
    n = "png-ztxt-length-2gb-truncated.png"
    add(n, "fmt=json", REFUSE, HDR + "a zTXt chunk claims 2^31-1 bytes; the file ends 20 bytes "
        "later, before any IDAT: 422 (truncated), never a 2 GB buffer.")
    add(n, "w=64&fmt=png", REFUSE, "zTXt length 2^31-1 then end of file; no IDAT: 422.")
    n = "png-1x1-idat-inflates-50mb.png"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "1x1 grey: 200.")
    add(n, "w=64&fmt=png", OK_OR_REFUSE, "IHDR 1x1 needs 2 bytes of image data; the IDAT stream "
        "(50 KB in 8 KB chunks) inflates to 50 MB. 200 from a decoder that stops after the "
        "image (trailing data ignored), or 422; must not inflate 50 MB into memory.")

    # --- WebP ---
    n = "webp-vp8l-16384x16384.webp"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "VP8L says 16384x16384: 200 reporting it, or 422.")
    for q in ("w=64&fmt=png", "w=64&fmt=webp"):
        add(n, q, REFUSE, "34 bytes of lossless WebP claiming 16384x16384 = 268 MP (1 GiB "
            "RGBA); a single-symbol prefix code makes every pixel cost 0 bits, so the stream is "
            "'complete'. Over max_source_pixels: 422 from the header.")
    n = "webp-vp8l-10000x10000.webp"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "10000x10000 (exactly 100 MP): 200.")
    add(n, "w=64&fmt=png", OK_OR_REFUSE, "34 bytes that decode to a real 10000x10000 image "
        "(400 MB RGBA). At max_source_pixels, not over, so 200 is within the documented "
        "contract; 422 from a memory-weighted admission is better; watch RSS.")
    add(n, "fmt=webp", LIMIT, "No resize: a 100 MP output > max_output_pixels: 422 from the plan, "
        "before decoding.")
    n = "webp-vp8x-canvas-16383-vp8l-1x1.webp"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "VP8X canvas 16383x16383: 200 reporting the canvas, or "
        "422 (canvas and bitstream disagree).")
    add(n, "w=64&fmt=png", REFUSE, "VP8X canvas 16383x16383 (268 MP) around a 1x1 VP8L. Over "
        "max_source_pixels by the canvas, and invalid (a still image's canvas must equal its "
        "bitstream size): 422.")
    n = "webp-vp8x-canvas-10000-vp8l-1x1.webp"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "canvas 10000x10000 (at the limit): 200 or 422.")
    add(n, "w=64&fmt=png", OK_OR_REFUSE, "VP8X canvas 10000x10000 around a 1x1 VP8L: passes the "
        "pixel limit by the header, invalid by the spec. 422 expected (libwebp refuses the "
        "mismatch); a 200 must not have allocated the 400 MB canvas for one pixel.")
    for n, what in [("webp-riff-size-larger-than-file.webp",
                     "RIFF size 0xFFFFFFF8 (size + 8 wraps a u32 to 0) on a 34-byte file"),
                    ("webp-riff-size-too-small.webp",
                     "RIFF size 12: the VP8L chunk lies outside the RIFF")]:
        add(n, "fmt=json", OK_OR_REFUSE, HDR + f"{what}; the VP8L inside is a valid 64x64. 200 "
            "(64x64) or 422.")
        add(n, "w=64&fmt=png", OK_OR_REFUSE, f"{what}; the payload is a valid 64x64 VP8L. 200 from "
            "a decoder that reads the chunks present, 422 from one that trusts the RIFF size; "
            "never an overflowed length or a read past the buffer.")
    n = "webp-anim-frame-16384-on-16x16-canvas.webp"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "animated, canvas 16x16: 200.")
    for q in ("w=64&fmt=png", "w=64&fmt=gif"):
        add(n, q, OK_OR_REFUSE, "Animated WebP, canvas 16x16, first ANMF frame 16384x16384 "
            "(1 GiB RGBA; the header limits see only 16x16). The spec forbids a frame past "
            "the canvas: 422 expected. 200 only from a decoder that clips without decoding "
            "the whole frame (watch RSS).")
    n = "webp-anim-frame-32-on-16x16-canvas.webp"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "animated, canvas 16x16: 200.")
    add(n, "w=64&fmt=png", OK_OR_REFUSE, "Animated WebP, canvas 16x16, first frame 32x32 (past "
        "the canvas): 422 (invalid) or 200 with the frame clipped to 16x16; never an "
        "out-of-bounds write.")

    # --- animations rendered animated ---
    n = "gif-2000-frames.gif"
    add(n, "fmt=json", OK, HDR + "2000 frames of 16x16: 200 reporting frames 2000.")
    for q in ("w=8&fmt=gif", "w=8&fmt=webp"):
        add(n, q, [422], "2000 frames is over IMGFN_MAX_FRAMES (300), read from the blocks "
            "before any frame is decoded: 422 max_frames at once (no 503: no budget is asked).")
    add(n, "w=8&anim=0", OK, "anim=0: the first frame alone, a 200 GIF.")
    n = "gif-40-frames-on-4000x4000.gif"
    add(n, "fmt=json", OK, HDR + "a 4000x4000 screen: 200.")
    add(n, "w=64&fmt=webp", [422], "40 frames composed on a 16 MP canvas are 640 MP to decode "
        "(over IMGFN_MAX_ANIMATION_PIXELS, 100 MP) for 1.5 KB: 422 from the header.")
    add(n, "w=64&fmt=png", OK_OR_REFUSE, "The first frame only (a still): one 16 MP canvas, "
        "within the limits: 200 (or a budget 503).")
    n = "webp-anim-second-frame-garbage.webp"
    add(n, "fmt=json", OK, HDR + "animated, canvas 16x16, 2 frames: 200.")
    for q in ("w=8&fmt=gif", "w=8&fmt=webp"):
        add(n, q, REFUSE, "The second frame's VP8L bitstream is garbage: the animated render "
            "stops at it with a 422, never a 500 or half an animation.")
    n = "webp-anim-truncated.webp"
    add(n, "fmt=json", OK_OR_REFUSE, HDR + "a truncated animation: 200 from the chunks read, "
        "or 422.")
    for q in ("w=8&fmt=gif", "w=8&fmt=png"):
        add(n, q, OK_OR_REFUSE, "The file ends inside its second frame: 422 (truncated), or a "
            "200 still from a decoder that only needs the first frame.")

    # --- output-size attacks on a 1x1 original ---
    n = "tiny-1x1.png"
    add(n, "fmt=json", OK, "A valid 1x1 RGB PNG: 200.")
    add(n, "w=64&fmt=png", OK, "A valid 1x1 RGB PNG upscaled to 64x64: 200.")
    add(n, "w=8192&h=6103&fit=fill&fmt=webp", [200, 422, 503],
        "8192x6103 = 49,995,776 px, just under max_output_pixels (50 MP) and within "
        "max_output_side: by the pixel limits alone a 200 (a ~50 MP WebP encode from a 1-pixel "
        "original), but a memory-weighted admission should refuse it (422) or queue it (503).")
    add(n, "w=4096&h=4096&fmt=avif&q=100", LIMIT,
        "A 16.7 MP AVIF at q=100 from a 1-pixel original: rav1e would take tens of seconds. "
        "The server caps AVIF output pixels: 422 (or 503).")
    add(n, "w=8192&h=8192&fit=fill&fmt=png", [422],
        "8192x8192 = 67 MP > max_output_pixels (50 MP): 422 limit_exceeded from the plan. "
        "503 is not accepted here: the plan check needs no decode budget.")

    # --- nosniff ---
    n = "html-appended.jpg"
    add(n, "", OK, "The original, untouched: a valid 16x16 JPEG followed by an HTML page with "
        "a script, within the first 512 bytes. 200 with Content-Type: image/jpeg and "
        "X-Content-Type-Options: nosniff (check the headers too): a browser must not run it.")
    add(n, "fmt=json", OK, "A valid 16x16 baseline JPEG (bytes after EOI are not the image): 200.")
    add(n, "w=64&fmt=png", OK, "Valid JPEG: 200, a 64x64 PNG with no trace of the HTML.")
    return m


def main():
    files = {}
    make_gifs(files)
    make_progressive(files)
    make_jpeg_differentials(files)
    make_pngs(files)
    make_webps(files)
    make_animations(files)
    make_html_appended(files)

    entries = manifest()
    names = set(files)
    used = {e["file"][len("hostile/"):] for e in entries}
    assert used == names, ("manifest and files differ", sorted(used ^ names))
    for name in names:
        assert sum(e["file"] == "hostile/" + name for e in entries) >= 2, name
    for e in entries:
        assert 503 in e["expect"] or e["expect"] == [422], e
        assert not any(500 <= s < 600 and s != 503 for s in e["expect"]), e

    for name in sorted(files):
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(files[name])
    # One request per two lines (valid JSON, easy to read and to diff).
    rows = ['  {"file": %s, "query": %s, "expect": %s,\n   "why": %s}' % (
        json.dumps(e["file"]), json.dumps(e["query"]), json.dumps(e["expect"]),
        json.dumps(e["why"], ensure_ascii=False)) for e in entries]
    text = "[\n" + ",\n".join(rows) + "\n]\n"
    assert json.loads(text) == entries
    with open(os.path.join(HERE, "manifest.json"), "w", encoding="utf-8", newline="\n") as f:
        f.write(text)

    os.makedirs(SEED_DIR, exist_ok=True)
    for name in SEEDS:
        assert len(files[name]) < 4096, (name, len(files[name]))
        with open(os.path.join(SEED_DIR, "hostile-" + name), "wb") as f:
            f.write(files[name])

    known = names | {"make.py", "manifest.json"}
    stale = sorted(set(os.listdir(HERE)) - known)
    for name in sorted(files):
        print(f"{len(files[name]):>9}  {name}")
    print(f"{len(entries)} requests in manifest.json; {len(SEEDS)} fuzz seeds")
    if stale:
        print("not made by this script (left alone): " + ", ".join(stale), file=sys.stderr)


if __name__ == "__main__":
    main()
