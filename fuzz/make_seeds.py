#!/usr/bin/env python3
"""Structure-aware seeds for the `jpeg_dc_diff` fuzz target (Python stdlib only).

    python3 fuzz/make_seeds.py            # (re)writes fuzz/seeds/jpeg_dc_diff/
    python3 fuzz/make_seeds.py --probes DIR   # also writes suspected-divergence inputs to DIR

The fixtures in testdata/ are 60 KB - 4 MB: far too slow for a fuzzer that decodes every input
twice. So each seed is a small crop of a real fixture made *in the DCT domain*, the way
`jpegtran -crop` does it: the fixture's Huffman-coded coefficients are decoded (no IDCT), an
MCU-aligned window of blocks is kept, and the blocks are Huffman-coded again (DC differences
recomputed). The quantisation tables, APPn segments, sampling factors and coefficient
statistics stay those of the real file; what changes is chosen per seed: the size (odd sizes
too), restart interval, scan layout (interleaved, one scan per component, progressive),
Huffman table slots, 8/16-bit DQT. Then a few structural variants of one crop: truncated at
segment boundaries and inside the scan, segments removed, duplicated and reordered, fill bytes,
trailing data.

Everything is deterministic (no randomness, no timestamps): running it twice gives the same
bytes. The output directory belongs to this script and is emptied first.
"""

import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "seeds", "jpeg_dc_diff")

ZIGZAG_LEN = 64

# ---------------------------------------------------------------------------------------------
# Parsing


class Segment:
    def __init__(self, marker, payload):
        self.marker = marker
        self.payload = payload

    def encode(self):
        return bytes([0xFF, self.marker]) + struct.pack(">H", len(self.payload) + 2) + self.payload


def split_segments(data):
    """Marker segments before the first SOS, the SOS header, the entropy data, the rest."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    i = 2
    segs = []
    while True:
        while data[i] == 0xFF and data[i + 1] == 0xFF:
            i += 1
        assert data[i] == 0xFF, "marker expected at %d" % i
        m = data[i + 1]
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        payload = data[i + 4 : i + 2 + length]
        i += 2 + length
        if m == 0xDA:
            j = i
            # Entropy data runs to the first marker that is not a stuffed byte or RSTn.
            while not (data[j] == 0xFF and data[j + 1] != 0x00 and not 0xD0 <= data[j + 1] <= 0xD7):
                j += 1
            return segs, payload, data[i:j], data[j:]
        segs.append(Segment(m, payload))


class Huffman:
    """A Huffman table as DHT stores it: 16 counts and the symbols."""

    def __init__(self, counts, symbols):
        self.counts = list(counts)
        self.symbols = list(symbols)
        self.codes = {}  # symbol -> (code, length)
        self.decode = {}  # (length, code) -> symbol
        code = 0
        k = 0
        for length in range(1, 17):
            for _ in range(self.counts[length - 1]):
                sym = self.symbols[k]
                self.codes[sym] = (code, length)
                self.decode[(length, code)] = sym
                code += 1
                k += 1
            code <<= 1

    def payload(self, tc_th):
        return bytes([tc_th] + self.counts + self.symbols)


def std_tables():
    """The example tables of ITU T.81 Annex K.3 (libjpeg's defaults when DHT is missing)."""
    dc_l_bits = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    dc_c_bits = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    dc_vals = list(range(12))
    ac_l_bits = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D]
    ac_l_vals = bytes.fromhex(
        "01020300041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a"
        "25262728292a3435363738393a434445464748494a535455565758595a636465666768696a73747576777879"
        "7a838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9"
        "cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa"
    )
    ac_c_bits = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77]
    ac_c_vals = bytes.fromhex(
        "000102031104052131061241510761711322328108144291a1b1c109233352f0156272d10a162434e125f117"
        "18191a262728292a35363738393a434445464748494a535455565758595a636465666768696a737475767778"
        "797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7"
        "c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9fa"
    )
    assert len(ac_l_vals) == 162 and len(ac_c_vals) == 162
    return (
        Huffman(dc_l_bits, dc_vals),
        Huffman(ac_l_bits, list(ac_l_vals)),
        Huffman(dc_c_bits, dc_vals),
        Huffman(ac_c_bits, list(ac_c_vals)),
    )


class Component:
    def __init__(self, cid, h, v, tq):
        self.id, self.h, self.v, self.tq = cid, h, v, tq
        self.blocks = {}  # (bx, by) -> 64 coefficients in zigzag order
        self.td = self.ta = 0


class BitReader:
    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.acc = 0
        self.n = 0

    def bit(self):
        if self.n == 0:
            b = self.data[self.pos]
            if b == 0xFF:
                nxt = self.data[self.pos + 1]
                assert nxt == 0x00, "marker inside an interval at %d" % self.pos
                self.pos += 2
            else:
                self.pos += 1
            self.acc, self.n = b, 8
        self.n -= 1
        return (self.acc >> self.n) & 1

    def bits(self, count):
        v = 0
        for _ in range(count):
            v = (v << 1) | self.bit()
        return v

    def symbol(self, table):
        code = 0
        for length in range(1, 17):
            code = (code << 1) | self.bit()
            sym = table.decode.get((length, code))
            if sym is not None:
                return sym
        raise ValueError("bad Huffman code")

    def restart(self):
        """Drop the padding bits, then expect RSTn."""
        self.n = 0
        assert self.data[self.pos] == 0xFF and 0xD0 <= self.data[self.pos + 1] <= 0xD7, self.pos
        self.pos += 2


def extend(v, s):
    return v - (1 << s) + 1 if s and v < (1 << (s - 1)) else v


class Baseline:
    """A baseline (SOF0/SOF1) JPEG with one interleaved scan, decoded to coefficients."""

    def __init__(self, path, max_mcu_rows=None):
        data = open(path, "rb").read()
        self.path = path
        segs, sos, scan, self.rest = split_segments(data)
        self.extra = []  # APPn / COM segments, kept in order
        self.dqt = []
        dc, ac = {}, {}
        ri = 0
        for s in segs:
            m, p = s.marker, s.payload
            if m in (0xC0, 0xC1):
                assert p[0] == 8
                self.height, self.width = struct.unpack(">HH", p[1:5])
                self.comps = [
                    Component(p[6 + 3 * c], p[7 + 3 * c] >> 4, p[7 + 3 * c] & 15, p[8 + 3 * c])
                    for c in range(p[5])
                ]
            elif m == 0xC4:
                k = 0
                while k < len(p):
                    counts = list(p[k + 1 : k + 17])
                    total = sum(counts)
                    t = Huffman(counts, list(p[k + 17 : k + 17 + total]))
                    (ac if p[k] >> 4 else dc)[p[k] & 15] = t
                    k += 17 + total
            elif m == 0xDB:
                self.dqt.append(s)
            elif m == 0xDD:
                (ri,) = struct.unpack(">H", p[:2])
            elif 0xE0 <= m <= 0xEF or m == 0xFE:
                self.extra.append(s)
        n = sos[0]
        assert n == len(self.comps), "one interleaved scan only"
        for k in range(n):
            c = next(c for c in self.comps if c.id == sos[1 + 2 * k])
            c.td, c.ta = sos[2 + 2 * k] >> 4, sos[2 + 2 * k] & 15
        self.hmax = max(c.h for c in self.comps)
        self.vmax = max(c.v for c in self.comps)
        single = len(self.comps) == 1
        self.mcux = -(-self.width // (8 * (1 if single else self.hmax)))
        self.mcuy = -(-self.height // (8 * (1 if single else self.vmax)))
        rows = self.mcuy if max_mcu_rows is None else min(self.mcuy, max_mcu_rows)
        bits = BitReader(scan)
        pred = [0] * n
        for m in range(self.mcux * rows):
            if ri and m and m % ri == 0:
                bits.restart()
                pred = [0] * n
            mx, my = m % self.mcux, m // self.mcux
            for ci, c in enumerate(self.comps):
                bh, bv = (1, 1) if single else (c.h, c.v)
                for by in range(bv):
                    for bx in range(bh):
                        coef = [0] * 64
                        s = bits.symbol(dc[c.td])
                        pred[ci] += extend(bits.bits(s), s)
                        coef[0] = pred[ci]
                        k = 1
                        while k < 64:
                            rs = bits.symbol(ac[c.ta])
                            r, s = rs >> 4, rs & 15
                            if s == 0:
                                if r != 15:
                                    break
                                k += 16
                                continue
                            k += r
                            coef[k] = extend(bits.bits(s), s)
                            k += 1
                        c.blocks[(mx * bh + bx, my * bv + by)] = coef
        self.rows_decoded = rows
        self.dc, self.ac = dc, ac


# ---------------------------------------------------------------------------------------------
# Writing


class BitWriter:
    def __init__(self):
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, value, count):
        for i in range(count - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0)
                self.acc = self.n = 0

    def flush(self):
        """Pad the last byte with ones."""
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)

    def marker(self, m):
        self.flush()
        self.out += bytes([0xFF, m])


def category(v):
    v = abs(v)
    n = 0
    while v:
        n += 1
        v >>= 1
    return n


def value_bits(v, s):
    return v if v >= 0 else v + (1 << s) - 1


def block_symbols(coef, dc_diff, ss=0, se=63):
    """(table: 'dc'|'ac', symbol, value, value length) for one block's coefficients ss..se."""
    out = []
    if ss == 0:
        s = category(dc_diff)
        out.append(("dc", s, value_bits(dc_diff, s), s))
    if se == 0:
        return out
    run = 0
    for k in range(max(ss, 1), se + 1):
        v = coef[k]
        if v == 0:
            run += 1
            continue
        while run > 15:
            out.append(("ac", 0xF0, 0, 0))
            run -= 16
        s = category(v)
        out.append(("ac", (run << 4) | s, value_bits(v, s), s))
        run = 0
    if run:
        out.append(("ac", 0x00, 0, 0))
    return out


def optimal_table(freq):
    """libjpeg's jpeg_gen_optimal_table (ITU T.81 K.2): code lengths limited to 16."""
    freq = dict(freq)
    syms = sorted(freq)
    f = [0] * 257
    for s in syms:
        f[s] = freq[s]
    f[256] = 1  # reserved: no code of all ones
    codesize = [0] * 257
    others = [-1] * 257
    while True:
        c1 = -1
        v = 1 << 62
        for i in range(257):
            if f[i] and f[i] <= v:
                v, c1 = f[i], i
        c2 = -1
        v = 1 << 62
        for i in range(257):
            if f[i] and f[i] <= v and i != c1:
                v, c2 = f[i], i
        if c2 < 0:
            break
        f[c1] += f[c2]
        f[c2] = 0
        codesize[c1] += 1
        while others[c1] >= 0:
            c1 = others[c1]
            codesize[c1] += 1
        others[c1] = c2
        codesize[c2] += 1
        while others[c2] >= 0:
            c2 = others[c2]
            codesize[c2] += 1
    bits = [0] * 33
    for i in range(257):
        if codesize[i]:
            bits[codesize[i]] += 1
    for i in range(32, 16, -1):
        while bits[i] > 0:
            j = i - 2
            while bits[j] == 0:
                j -= 1
            bits[i] -= 2
            bits[i - 1] += 1
            bits[j + 1] += 2
            bits[j] -= 1
    i = 16
    while bits[i] == 0:
        i -= 1
    bits[i] -= 1  # drop the reserved code
    order = []
    for length in range(1, 33):
        order += [s for s in range(256) if codesize[s] == length]
    return Huffman(bits[1:17], order)


class Frame:
    """What to write: components (with their coefficient windows) and the image size."""

    def __init__(self, src, mcu_x0, mcu_y0, mcus_w, mcus_h, width=None, height=None):
        self.src = src
        self.single = len(src.comps) == 1
        self.hmax, self.vmax = src.hmax, src.vmax
        self.mcus_w, self.mcus_h = mcus_w, mcus_h
        mw = 8 if self.single else 8 * self.hmax
        mh = 8 if self.single else 8 * self.vmax
        self.width = width or mcus_w * mw
        self.height = height or mcus_h * mh
        assert -(-self.width // mw) == mcus_w and -(-self.height // mh) == mcus_h
        assert mcu_y0 + mcus_h <= src.rows_decoded and mcu_x0 + mcus_w <= src.mcux
        self.comps = []
        for c in src.comps:
            bh, bv = (1, 1) if self.single else (c.h, c.v)
            blocks = {}
            for by in range(mcus_h * bv):
                for bx in range(mcus_w * bh):
                    blocks[(bx, by)] = c.blocks[(mcu_x0 * bh + bx, mcu_y0 * bv + by)]
            nc = Component(c.id, c.h, c.v, c.tq)
            nc.blocks = blocks
            nc.td, nc.ta = c.td, c.ta
            self.comps.append(nc)

    def comp_blocks(self, c):
        """Blocks of a component in a non-interleaved scan (no MCU padding)."""
        if self.single:
            return -(-self.width // 8), -(-self.height // 8)
        cw = -(-self.width * c.h // self.hmax)
        ch = -(-self.height * c.v // self.vmax)
        return -(-cw // 8), -(-ch // 8)


def scan_units(frame, comps):
    """The blocks of a scan, in order: lists of (component index, block) per MCU."""
    idx = [frame.comps.index(c) for c in comps]
    units = []
    if len(comps) == 1:
        c = comps[0]
        bw, bh = frame.comp_blocks(c)
        for by in range(bh):
            for bx in range(bw):
                units.append([(idx[0], c.blocks[(bx, by)])])
        return units
    for my in range(frame.mcus_h):
        for mx in range(frame.mcus_w):
            unit = []
            for ci, c in zip(idx, comps):
                for by in range(c.v):
                    for bx in range(c.h):
                        unit.append((ci, c.blocks[(mx * c.h + bx, my * c.v + by)]))
            units.append(unit)
    return units


def scan_symbols(frame, comps, ri, ss=0, se=63, ah=0, al=0):
    """Per MCU: list of (component index, symbols); DC prediction reset at each restart.
    A DC first scan codes the DC shifted right by `al` (point transform); a DC refinement
    (ah > 0) one raw bit per block, bit `al` of the DC."""
    out = []
    pred = {}
    for m, unit in enumerate(scan_units(frame, comps)):
        if ri and m % ri == 0:
            pred = {}
        syms = []
        for ci, coef in unit:
            if ss == 0 and ah > 0:
                syms.append((ci, [("raw", 0, (coef[0] >> al) & 1, 1)]))
                continue
            dc = coef[0] >> al if ss == 0 else coef[0]
            diff = dc - pred.get(ci, 0)
            pred[ci] = dc
            syms.append((ci, block_symbols(coef, diff, ss, se)))
        out.append(syms)
    return out


def encode_scan(mcus, tables_of, ri, rst_numbers=None, junk_before_rst=b""):
    """Entropy-code a scan. `tables_of[ci]` = (dc table, ac table)."""
    w = BitWriter()
    for m, syms in enumerate(mcus):
        if ri and m and m % ri == 0:
            n = (m // ri - 1) % 8 if rst_numbers is None else rst_numbers(m // ri - 1)
            w.flush()
            w.out += junk_before_rst
            w.marker(0xD0 + n)
        for ci, block in syms:
            dc_t, ac_t = tables_of[ci]
            for kind, sym, val, nbits in block:
                if kind != "raw":
                    t = dc_t if kind == "dc" else ac_t
                    code, length = t.codes[sym]
                    w.put(code, length)
                w.put(val, nbits)
    w.flush()
    return bytes(w.out)


def covers(table, freq):
    return table is not None and all(s in table.codes for s in freq)


def jpeg(frame, *, ri=0, sof=0xC0, layout="interleaved", tables="source", slots=(0, 1),
         dqt16=False, extra=None, sos_order=None, rst_numbers=None, omit=(), ids=None,
         junk_before_rst=b""):
    """Write `frame` as a complete JPEG. Returns the list of segments/scans as bytes pieces
    [(kind, bytes)] so that variants can drop, duplicate or reorder them."""
    src = frame.src
    comps = frame.comps
    if ids:
        for c, i in zip(comps, ids):
            c.id = i
    # Scans: (components, ss, se, sos-order)
    if layout == "interleaved":
        order = comps if sos_order is None else [comps[i] for i in sos_order]
        scans = [(order, 0, 63, 0, 0)]
    elif layout == "per-component":
        scans = [([c], 0, 63, 0, 0) for c in comps]
    elif layout == "progressive":
        scans = [(comps, 0, 0, 0, 0)]
        for c in comps:
            if c is comps[0]:
                scans += [([c], 1, 5, 0, 0), ([c], 6, 63, 0, 0)]
            else:
                scans.append(([c], 1, 63, 0, 0))
    elif layout in ("progressive-dc-sa", "progressive-dc-sa-bogus"):
        # DC successive approximation: first scans one per component with Al = 2, the AC
        # scans, then refinements: luma alone, chroma interleaved, all interleaved. The bogus
        # variant skips chroma's first refinement (libjpeg warns: inconsistent progression).
        scans = [([c], 0, 0, 0, 2) for c in comps]
        scans += [([c], 1, 63, 0, 0) for c in comps]
        scans.append(([comps[0]], 0, 0, 2, 1))
        if len(comps) > 1 and layout == "progressive-dc-sa":
            scans.append((comps[1:], 0, 0, 2, 1))
        scans.append((comps, 0, 0, 1, 0))
    else:
        raise ValueError(layout)
    # Symbols, then tables: luma (component 0) uses slot pair 0, chroma slot pair 1.
    scan_syms = [scan_symbols(frame, sc, ri, ss, se, ah, al) for sc, ss, se, ah, al in scans]
    freq = {}  # (dc|ac, class) -> {symbol: count}
    for sc_syms in scan_syms:
        for mcu in sc_syms:
            for ci, block in mcu:
                cls = 0 if ci == 0 else 1
                for kind, sym, _, _ in block:
                    if kind == "raw":
                        continue
                    d = freq.setdefault((kind, cls), {})
                    d[sym] = d.get(sym, 0) + 1
    std = std_tables()
    chosen = {}
    for (kind, cls), f in sorted(freq.items()):
        if tables == "std":
            t = std[(0 if kind == "dc" else 1) + 2 * cls]
        else:
            srcmap = src.dc if kind == "dc" else src.ac
            comp = comps[0] if cls == 0 else (comps[1] if len(comps) > 1 else comps[0])
            t = srcmap.get(comp.td if kind == "dc" else comp.ta)
            if tables == "optimal" or not covers(t, f):
                t = optimal_table(f)
        chosen[(kind, cls)] = t
    slot = {0: slots[0], 1: slots[1]}
    cls_of = lambda ci: 0 if ci == 0 else 1
    tables_of = {
        ci: (chosen.get(("dc", cls_of(ci))), chosen.get(("ac", cls_of(ci))))
        for ci in range(len(comps))
    }
    pieces = [("SOI", b"\xff\xd8")]
    for s in src.extra if extra is None else extra:
        pieces.append(("APP", s.encode()))
    if "DQT" not in omit:
        for s in src.dqt:
            p = s.payload
            if dqt16:
                out = bytearray()
                k = 0
                while k < len(p):
                    assert p[k] >> 4 == 0
                    out.append(0x10 | (p[k] & 15))
                    for q in p[k + 1 : k + 65]:
                        out += struct.pack(">H", q)
                    k += 65
                p = bytes(out)
            pieces.append(("DQT", Segment(0xDB, p).encode()))
    sofp = struct.pack(">BHHB", 8, frame.height, frame.width, len(comps))
    for c in comps:
        sofp += bytes([c.id, (c.h << 4) | c.v, c.tq])
    pieces.append(("SOF", Segment(sof, sofp).encode()))
    if "DHT" not in omit:
        dht = b""
        for (kind, cls), t in sorted(chosen.items()):
            dht += t.payload(((0 if kind == "dc" else 1) << 4) | slot[cls])
        pieces.append(("DHT", Segment(0xC4, dht).encode()))
    if ri:
        pieces.append(("DRI", Segment(0xDD, struct.pack(">H", ri)).encode()))
    for (sc, ss, se, ah, al), syms in zip(scans, scan_syms):
        sos = bytes([len(sc)])
        for c in sc:
            cls = 0 if comps.index(c) == 0 else 1
            sos += bytes([c.id, (slot[cls] << 4) | slot[cls]])
        sos += bytes([ss, se, (ah << 4) | al])
        data = encode_scan(syms, tables_of, ri, rst_numbers, junk_before_rst)
        pieces.append(("SOS", Segment(0xDA, sos).encode()))
        pieces.append(("DATA", data))
    pieces.append(("EOI", b"\xff\xd9"))
    return pieces


def join(pieces):
    return b"".join(b for _, b in pieces)


# ---------------------------------------------------------------------------------------------
# The seeds


def tj(name):
    return os.path.join(ROOT, "testdata", name)


def app(marker, payload):
    return Segment(marker, payload)


def seeds():
    out = {}
    s444 = Baseline(tj("jpeg/s444.jpg"), max_mcu_rows=40)
    s422 = Baseline(tj("jpeg/s422.jpg"), max_mcu_rows=40)
    s440 = Baseline(tj("jpeg/s440.jpg"), max_mcu_rows=20)
    s420 = Baseline(tj("jpeg/odd-601x397.jpg"), max_mcu_rows=20)
    gray = Baseline(tj("jpeg/gray.jpg"), max_mcu_rows=40)
    q98 = Baseline(tj("jpeg/q98-optimized.jpg"), max_mcu_rows=20)
    r422 = Baseline(tj("jpeg/odd-422-restart.jpg"), max_mcu_rows=40)
    r7 = Baseline(tj("jpeg/restart-7blocks.jpg"), max_mcu_rows=20)
    medium = Baseline(tj("medium.jpg"), max_mcu_rows=4)
    large = Baseline(tj("large.jpg"), max_mcu_rows=3)
    orient6 = Baseline(tj("orient-6.jpg"), max_mcu_rows=20)
    cmyk = Baseline(tj("cmyk.jpg"), max_mcu_rows=20)

    # Sampling layouts, MCU-aligned and odd sizes (x0, y0 in MCUs: a detailed area).
    out["s444-64x48.jpg"] = join(jpeg(Frame(s444, 36, 24, 8, 6)))
    out["s444-61x45.jpg"] = join(jpeg(Frame(s444, 36, 24, 8, 6, 61, 45)))
    out["s422-64x48.jpg"] = join(jpeg(Frame(s422, 18, 24, 4, 6)))
    out["s422-57x43.jpg"] = join(jpeg(Frame(s422, 18, 24, 4, 6, 57, 43)))
    out["s440-64x48.jpg"] = join(jpeg(Frame(s440, 36, 12, 8, 3)))
    out["s440-63x41.jpg"] = join(jpeg(Frame(s440, 36, 12, 8, 3, 63, 41)))
    out["s420-64x48.jpg"] = join(jpeg(Frame(s420, 18, 12, 4, 3)))
    out["s420-49x33.jpg"] = join(jpeg(Frame(s420, 18, 12, 4, 3, 49, 33)))
    out["s420-9x9.jpg"] = join(jpeg(Frame(s420, 20, 12, 1, 1, 9, 9)))
    out["s420-1x1.jpg"] = join(jpeg(Frame(s420, 20, 12, 1, 1, 1, 1)))
    out["gray-64x48.jpg"] = join(jpeg(Frame(gray, 36, 24, 8, 6)))
    out["gray-59x47.jpg"] = join(jpeg(Frame(gray, 36, 24, 8, 6, 59, 47)))
    out["s420-q98-optimized-tables-64x32.jpg"] = join(jpeg(Frame(q98, 16, 12, 4, 2)))
    out["s420-medium-optimized-tables-96x32.jpg"] = join(jpeg(Frame(medium, 50, 2, 6, 2)))
    out["s422-large-exif-96x16.jpg"] = join(jpeg(Frame(large, 150, 1, 6, 2)))
    out["s420-orient6-exif-gps-48x48.jpg"] = join(jpeg(Frame(orient6, 10, 16, 3, 3)))
    out["cmyk-adobe-ycck-32x32.jpg"] = join(jpeg(Frame(cmyk, 20, 16, 4, 4)))

    # Restart intervals: every MCU, a few, one MCU row, more MCUs than the image.
    f420 = Frame(s420, 18, 12, 4, 3)
    out["s420-restart1.jpg"] = join(jpeg(f420, ri=1))
    out["s420-restart5.jpg"] = join(jpeg(Frame(s420, 18, 12, 4, 3, 61, 45), ri=5))
    out["s420-restart-row.jpg"] = join(jpeg(f420, ri=4))
    out["s420-restart-larger-than-image.jpg"] = join(jpeg(f420, ri=100))
    out["s422-odd-restart3-41x29.jpg"] = join(jpeg(Frame(r422, 10, 20, 3, 4, 41, 29), ri=3))
    out["s420-restart7-fixture-crop.jpg"] = join(jpeg(Frame(r7, 18, 12, 4, 3), ri=7))
    out["gray-restart2.jpg"] = join(jpeg(Frame(gray, 36, 24, 5, 4, 37, 29), ri=2))
    out["s444-restart3.jpg"] = join(jpeg(Frame(s444, 36, 24, 5, 4), ri=3))
    out["s420-restart9-rst-wraps.jpg"] = join(jpeg(Frame(s420, 10, 8, 8, 6), ri=4))  # > 8 RSTs

    # Scan layouts and table variants.
    out["s420-three-scans.jpg"] = join(jpeg(f420, layout="per-component"))
    out["s420-progressive.jpg"] = join(jpeg(f420, sof=0xC2, layout="progressive"))
    out["s422-progressive-restart2.jpg"] = join(
        jpeg(Frame(s422, 18, 24, 4, 3), sof=0xC2, layout="progressive", ri=2))
    out["s420-progressive-dc-sa-49x33.jpg"] = join(
        jpeg(Frame(s420, 18, 12, 4, 3, 49, 33), sof=0xC2, layout="progressive-dc-sa"))
    out["s444-progressive-dc-sa-restart3.jpg"] = join(
        jpeg(Frame(s444, 36, 24, 5, 4), sof=0xC2, layout="progressive-dc-sa", ri=3))
    out["s420-progressive-dc-sa-bogus-progression.jpg"] = join(
        jpeg(Frame(s420, 18, 12, 4, 3), sof=0xC2, layout="progressive-dc-sa-bogus"))
    out["gray-progressive-dc-sa-restart1-37x29.jpg"] = join(
        jpeg(Frame(gray, 36, 24, 5, 4, 37, 29), sof=0xC2, layout="progressive-dc-sa", ri=1))
    # The progressive fixtures of the unit tests (cjpeg/jpegtran/Pillow scan scripts).
    pdir = tj("jpeg/progressive")
    for name in sorted(os.listdir(pdir)):
        if name.endswith(".jpg"):
            out["fixture-progressive-" + name] = open(os.path.join(pdir, name), "rb").read()
    out["s420-sof1-dqt16.jpg"] = join(jpeg(f420, sof=0xC1, dqt16=True))
    out["s420-sof1-huffman-slots-2-3.jpg"] = join(jpeg(f420, sof=0xC1, slots=(2, 3)))
    out["s420-sof0-huffman-slots-1-0.jpg"] = join(jpeg(f420, slots=(1, 0)))
    out["s420-std-tables.jpg"] = join(jpeg(f420, tables="std"))
    out["s420-std-tables-no-dht.jpg"] = join(jpeg(f420, tables="std", omit=("DHT",)))
    out["s420-optimal-tables.jpg"] = join(jpeg(f420, tables="optimal"))

    # Colour-space signalling (jpeg_dc decodes YCbCr only).
    adobe = lambda t: app(0xEE, b"Adobe" + bytes([0, 100, 0, 0, 0, 0, t]))
    jfif = app(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    f444 = Frame(s444, 36, 24, 5, 4)
    out["s444-adobe-transform1.jpg"] = join(jpeg(f444, extra=[adobe(1)]))
    out["s444-adobe-transform0-rgb.jpg"] = join(jpeg(Frame(s444, 36, 24, 5, 4), extra=[adobe(0)]))
    out["s444-ids-rgb.jpg"] = join(jpeg(Frame(s444, 36, 24, 5, 4), extra=[], ids=b"RGB"))
    out["s444-ids-rgb-with-jfif.jpg"] = join(jpeg(Frame(s444, 36, 24, 5, 4), extra=[jfif], ids=b"RGB"))
    out["s444-ids-0-1-2-no-jfif.jpg"] = join(jpeg(Frame(s444, 36, 24, 5, 4), extra=[], ids=b"\0\1\2"))
    icc = b"ICC_PROFILE\x00\x01\x01" + struct.pack(">I", 128) + b"none" + b"\x02\x10\x00\x00" + \
        b"mntrRGB XYZ " + bytes(128 - 24)
    out["s420-app2-icc-exif-com.jpg"] = join(jpeg(Frame(s420, 18, 12, 4, 3), extra=[
        jfif, app(0xE1, b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00"),
        app(0xE2, icc), app(0xFE, b"imgfn fuzz seed")]))

    # Structural variants of one crop with restart markers.
    base = jpeg(Frame(s420, 18, 12, 4, 3), ri=2)
    whole = join(base)
    kinds = [k for k, _ in base]
    sos_at = kinds.index("SOS")
    data = base[sos_at + 1][1]
    head = join(base[: sos_at + 1])
    rst = [i for i in range(len(data) - 1) if data[i] == 0xFF and 0xD0 <= data[i + 1] <= 0xD7]
    out["cut-no-eoi.jpg"] = whole[:-2]
    out["cut-after-sos-header.jpg"] = head
    out["cut-after-sos-header-eoi.jpg"] = head + b"\xff\xd9"
    out["cut-at-rst2.jpg"] = head + data[: rst[1]]
    out["cut-at-rst2-eoi.jpg"] = head + data[: rst[1]] + b"\xff\xd9"
    out["cut-mid-interval-eoi.jpg"] = head + data[: rst[1] + 9] + b"\xff\xd9"
    out["cut-before-sof.jpg"] = join(base[: kinds.index("SOF")])
    out["cut-after-sof.jpg"] = join(base[: kinds.index("SOF") + 1])
    out["no-dht.jpg"] = join(p for p in base if p[0] != "DHT")
    out["no-dqt.jpg"] = join(p for p in base if p[0] != "DQT")
    out["no-dri-but-rst-markers.jpg"] = join(p for p in base if p[0] != "DRI")
    out["no-sof.jpg"] = join(p for p in base if p[0] != "SOF")
    dup = lambda k: join(sum(([p, p] if p[0] == k else [p] for p in base), []))
    out["dup-dht.jpg"] = dup("DHT")
    out["dup-dqt.jpg"] = dup("DQT")
    out["dup-dri.jpg"] = dup("DRI")
    out["dup-eoi.jpg"] = whole + b"\xff\xd9"
    # DQT redefined after a first, different definition: the last one before the scan counts.
    dqt0 = Segment(0xDB, bytes([0]) + bytes([2] * 64)).encode()
    out["dqt-redefined.jpg"] = join(base[:1]) + dqt0 + join(base[1:])
    out["tables-after-dri.jpg"] = join(
        [p for p in base[:sos_at] if p[0] not in ("DHT", "DQT")]
        + [p for p in base if p[0] in ("DQT", "DHT")] + base[sos_at:])
    out["fill-bytes-before-markers.jpg"] = whole[:2] + b"".join(
        b"\xff\xff" + b for _, b in base[1:sos_at]) + join(base[sos_at:])
    plain = jpeg(Frame(s420, 18, 12, 4, 3))
    pk = [k for k, _ in plain]
    out["dri-zero-no-rst.jpg"] = join(plain[: pk.index("SOS")]) + \
        Segment(0xDD, b"\x00\x00").encode() + join(plain[pk.index("SOS"):])
    out["trailing-garbage-after-eoi.jpg"] = whole + b"\x00garbage\xff\xd8\xff"
    out["trailing-app-before-eoi.jpg"] = whole[:-2] + Segment(0xE5, b"late").encode() + b"\xff\xd9"
    out["header-only-progressive-dc-scan.jpg"] = progressive_dc_only()
    return out


def progressive_dc_only():
    """testdata/jpeg/progressive.jpg cut after its first scan (the DC scan), then EOI."""
    data = open(tj("jpeg/progressive.jpg"), "rb").read()
    segs, sos, scan, _ = split_segments(data)
    return (b"\xff\xd8" + b"".join(s.encode() for s in segs) + Segment(0xDA, sos).encode()
            + scan + b"\xff\xd9")


def probes():
    """Inputs where jpeg_dc is suspected to disagree with libjpeg (not seeds: each would fail
    the target at once). `scripts/fuzz.sh` does not read these; they are for investigation."""
    out = {}
    s420 = Baseline(tj("jpeg/odd-601x397.jpg"), max_mcu_rows=20)
    s444 = Baseline(tj("jpeg/s444.jpg"), max_mcu_rows=40)
    # SOS lists the components in another order than SOF (allowed; data follows SOS order).
    out["sos-order-cr-cb-y.jpg"] = join(jpeg(Frame(s444, 36, 24, 4, 3), sos_order=(2, 1, 0)))
    out["sos-order-y-cr-cb-420.jpg"] = join(jpeg(Frame(s420, 18, 12, 4, 3), sos_order=(0, 2, 1)))
    # RST markers numbered wrongly (all RST0): libjpeg resynchronises, jpeg_dc takes any RSTn.
    out["rst-all-zero.jpg"] = join(jpeg(Frame(s420, 18, 12, 4, 3), ri=2, rst_numbers=lambda k: 0))
    out["rst-skips-one.jpg"] = join(jpeg(Frame(s420, 18, 12, 4, 3), ri=2,
                                         rst_numbers=lambda k: (k + (1 if k >= 2 else 0)) % 8))
    # Bytes between an interval's last MCU and its RST marker: libjpeg warns
    # ("extraneous bytes before marker"), jpeg_dc skips them.
    out["extraneous-bytes-before-rst.jpg"] = join(
        jpeg(Frame(s420, 18, 12, 4, 3), ri=2, junk_before_rst=b"\x12\x34"))
    # A second SOS after the only (complete, interleaved) scan: libjpeg's finish reports it.
    base = jpeg(Frame(s420, 18, 12, 4, 3))
    k = [p[0] for p in base]
    i = k.index("SOS")
    out["second-sos-after-scan.jpg"] = join(base[:-1] + base[i:i + 2] + base[-1:])
    # RSTn right after the last MCU, then data before EOI: libjpeg skips the RST and warns
    # about the bytes after it ("extraneous bytes before marker 0xd9").
    last = join(jpeg(Frame(s420, 18, 12, 4, 3), ri=4))
    out["rst-after-last-mcu-then-data.jpg"] = last[:-2] + b"\xff\xd2\x12\x34\x56\xff\xd9"
    # Sampling 4x4,1x1,1x1: 18 blocks per MCU, more than libjpeg's limit of 10.
    out["blocks-per-mcu-18.jpg"] = mcu18()
    # A DC table with an unused symbol 16: libjpeg refuses the table, jpeg_dc never looks.
    whole = join(base)
    out["dc-table-symbol-16.jpg"] = patch_dc_symbol(whole)
    # Large DC values: libjpeg's range limit wraps (mod 1024) where jpeg_dc clamps.
    out["dc-out-of-range.jpg"] = dc_overflow()
    return out


def mcu18():
    src = Baseline(tj("jpeg/s444.jpg"), max_mcu_rows=40)
    f = Frame(src, 36, 24, 8, 8)  # 64x64 in 4:4:4 blocks
    # Relabel: Y 4x4 uses the 4x4 block square of luma; chroma 1x1 takes every 4th block.
    y, cb, cr = f.comps
    y.h = y.v = 4
    f.hmax = f.vmax = 4
    f.mcus_w = f.mcus_h = 2
    f.width = f.height = 64
    for c in (cb, cr):
        c.blocks = {(bx, by): c.blocks[(bx * 4, by * 4)] for bx in range(2) for by in range(2)}
    return join(jpeg(f))


def patch_dc_symbol(data):
    """Give the first DC table one more code, 16 bits long, for symbol 16."""
    segs, sos, scan, rest = split_segments(data)
    out = b"\xff\xd8"
    done = False
    for s in segs:
        if s.marker == 0xC4 and not done:
            p, k, new = s.payload, 0, b""
            while k < len(p):
                counts = list(p[k + 1 : k + 17])
                total = sum(counts)
                syms = list(p[k + 17 : k + 17 + total])
                if p[k] >> 4 == 0 and not done:
                    counts[15] += 1
                    syms.append(16)
                    done = True
                new += bytes([p[k]] + counts + syms)
                k += 17 + total
            s = Segment(0xC4, new)
        out += s.encode()
    return out + Segment(0xDA, sos).encode() + scan + rest


def dc_overflow():
    """A 4:4:4 strip whose luma DC climbs (steps of at most 2000, DC category <= 11) to where
    DC * q0 / 8 is 1000: libjpeg's 1x1 IDCT gives range_limit[1000 & 1023] = 104, jpeg_dc
    clamps 1128 to 255."""
    src = Baseline(tj("jpeg/s444.jpg"), max_mcu_rows=40)
    q0 = src.dqt[0].payload[1]
    target = 1000 * 8 // q0
    f = Frame(src, 36, 24, 8, 1)
    y = f.comps[0]
    for bx in range(1, 8):
        blk = list(y.blocks[(bx, 0)])
        prev = y.blocks[(bx - 1, 0)][0]
        blk[0] = prev + max(-2000, min(2000, target - prev))
        y.blocks[(bx, 0)] = blk
    return join(jpeg(f, tables="optimal"))


def main():
    args = sys.argv[1:]
    os.makedirs(OUT, exist_ok=True)
    for name in os.listdir(OUT):
        os.remove(os.path.join(OUT, name))
    total = 0
    for name, data in sorted(seeds().items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        total += len(data)
    print("wrote %d seeds, %d bytes, to %s" % (len(os.listdir(OUT)), total, os.path.relpath(OUT, ROOT)))
    if args[:1] == ["--probes"]:
        d = args[1]
        os.makedirs(d, exist_ok=True)
        for name, data in sorted(probes().items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print("wrote probes to", d)


if __name__ == "__main__":
    main()
