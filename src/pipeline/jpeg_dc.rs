//! DC-only decoding of JPEGs: the 1/8 shrink-on-load fast path.
//!
//! At 1/8 scale each 8×8 block becomes one pixel, its DC coefficient (libjpeg's 1×1 IDCT is
//! exactly `DC * q0 / 8 + 128`). libjpeg-turbo still decodes every AC coefficient's Huffman
//! code one lookup at a time to find where the next block starts; here a table indexed by
//! the next bits gives the whole length of an AC code *and* its value bits in one step, so
//! skipping a coefficient is a lookup and a shift. That entropy pass is nearly all the time
//! of a 20 MP → thumbnail job.
//!
//! Handled: 8-bit baseline Huffman (SOF0/SOF1) with one interleaved scan of all components,
//! and progressive Huffman (SOF2, [`progressive`]: its DC scans only), grey or YCbCr. Both
//! build the same planes of DC values, which one conversion turns into RGB. Anything else
//! (arithmetic, CMYK, RGB, several sequential scans, a corrupt stream) returns `None` and
//! libjpeg decodes the file as before, so every error message still comes from libjpeg.

use super::jpeg_header::{self, JpegHeader};
use super::{Pixels, SourceInfo};

mod progressive;

/// Bits looked up at once. Codes and their value bits longer than this take the slow path.
const LUT_BITS: u32 = 11;

/// Bits of the multi-coefficient lookup of big scans ([`multi_skip_table`]): 16 KiB of
/// `u16` per AC table, which stays in L1 beside the single table.
const MULTI_BITS: u32 = 13;

/// Blocks from which a scan builds the multi-coefficient tables: building one costs about
/// what skipping 10,000 blocks saves, so small images keep the single lookup. A fuzzing
/// build uses them for every scan, so the differential target (small inputs) reaches them.
const MULTI_MIN_BLOCKS: usize = if cfg!(fuzzing) { 0 } else { 65_536 };

struct Component {
    id: u8,
    h: usize,
    v: usize,
    tq: usize,
    dc_table: usize,
    ac_table: usize,
    /// DC values (dequantised, libjpeg's 1×1 IDCT applied, level-shifted), one per block.
    plane: Vec<u8>,
    /// Blocks per row / column in `plane`.
    bw: usize,
    bh: usize,
}

/// A Huffman table: a direct lookup for short codes, canonical-code limits for the rest.
struct Huffman {
    /// DC tables only: `(code length, symbol)` for codes of at most `LUT_BITS`; length 0:
    /// a longer code.
    lut: Vec<(u8, u8)>,
    /// AC tables only: what skipping the coefficient takes, `bits | advance << 8`, where
    /// `bits` is the code length plus its value bits and `advance` how far the coefficient
    /// index moves (0: end of block). 0 when that is more than `LUT_BITS` bits.
    skip: Vec<u16>,
    /// Canonical decoding: `maxcode[l]` is the largest code of length `l` (or -1),
    /// `valptr[l]` the index of its first symbol, `mincode[l]` its first code.
    maxcode: [i32; 18],
    mincode: [i32; 17],
    valptr: [i32; 17],
    symbols: Vec<u8>,
}

impl Huffman {
    fn new(counts: &[u8; 16], symbols: &[u8], ac: bool) -> Option<Huffman> {
        let mut h = Huffman {
            lut: vec![(0, 0); if ac { 0 } else { 1 << LUT_BITS }],
            skip: vec![0; if ac { 1 << LUT_BITS } else { 0 }],
            maxcode: [-1; 18],
            mincode: [0; 17],
            valptr: [0; 17],
            symbols: symbols.to_vec(),
        };
        let mut code: i32 = 0;
        let mut k = 0usize;
        for len in 1..=16usize {
            let n = usize::from(counts[len - 1]);
            h.valptr[len] = k as i32;
            h.mincode[len] = code;
            for _ in 0..n {
                // A valid canonical code never overflows its length.
                if code >= (1 << len) {
                    return None;
                }
                let sym = *symbols.get(k)?;
                if len as u32 <= LUT_BITS {
                    let shift = LUT_BITS - len as u32;
                    let slots = (code as usize) << shift..((code as usize) + 1) << shift;
                    let total = len as u32 + u32::from(sym & 15);
                    if !ac {
                        h.lut[slots].fill((len as u8, sym));
                    } else if total <= LUT_BITS {
                        h.skip[slots].fill(total as u16 | (ac_advance(sym) as u16) << 8);
                    }
                }
                code += 1;
                k += 1;
            }
            if n > 0 {
                h.maxcode[len] = code - 1;
            }
            code <<= 1;
        }
        h.maxcode[17] = i32::MAX;
        Some(h)
    }
}

/// Entropy-coded data as a bit stream: byte stuffing removed, zeros after a marker.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    /// Left-aligned bit buffer with `n` valid bits.
    buf: u64,
    n: u32,
    /// A marker (RSTn, EOI, ...) was reached; the stream now reads as zeros.
    marker: bool,
    /// Zero bits fed after the marker. A valid stream never consumes them (its last byte
    /// is padded with ones): one that does is truncated or corrupt.
    fake: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits {
            data,
            pos: 0,
            buf: 0,
            n: 0,
            marker: false,
            fake: 0,
        }
    }

    #[inline(always)]
    fn refill(&mut self) {
        if self.n > 56 {
            return;
        }
        // Eight bytes at once when none of them is 0xFF (no stuffing, no marker). Bits of a
        // partly taken byte land below `n` too; the next refill ORs the same bits there.
        if let Some(chunk) = self.data.get(self.pos..self.pos + 8) {
            if !self.marker {
                let x = u64::from_be_bytes(chunk.try_into().unwrap_or([0xFF; 8]));
                let inv = !x;
                let has_ff = inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080;
                if has_ff == 0 {
                    let take = (64 - self.n) / 8;
                    self.buf |= x >> self.n;
                    self.pos += take as usize;
                    self.n += 8 * take;
                    return;
                }
            }
        }
        while self.n <= 56 {
            let mut byte = 0u8;
            if !self.marker {
                match self.data.get(self.pos) {
                    Some(&0xFF) => match self.data.get(self.pos + 1) {
                        Some(0x00) => {
                            byte = 0xFF;
                            self.pos += 2;
                        }
                        _ => self.marker = true,
                    },
                    Some(&b) => {
                        byte = b;
                        self.pos += 1;
                    }
                    None => self.marker = true,
                }
            }
            if self.marker {
                // (Saturating: `decode` stops once a padding bit is used, but a header may
                // promise far more MCUs than the data holds.)
                self.fake = self.fake.saturating_add(8);
            }
            self.buf |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
    }

    #[inline(always)]
    fn peek(&self, bits: u32) -> u32 {
        (self.buf >> (64 - bits)) as u32
    }

    #[inline(always)]
    fn consume(&mut self, bits: u32) {
        self.buf <<= bits;
        self.n -= bits;
    }

    /// Decode one symbol (canonical slow path for codes longer than the lookup).
    fn symbol(&mut self, h: &Huffman) -> Option<u8> {
        let mut code = self.peek(1) as i32;
        let mut l = 1usize;
        while code > h.maxcode[l] {
            l += 1;
            if l > 16 {
                return None;
            }
            code = self.peek(l as u32) as i32;
        }
        self.consume(l as u32);
        let idx = h.valptr[l] + code - h.mincode[l];
        h.symbols.get(usize::try_from(idx).ok()?).copied()
    }

    /// The data read so far ends where a marker begins, as libjpeg reads it without a
    /// warning: no bit past the marker was used, at most the last byte's padding is left
    /// unread, and nothing but fill bytes stands between it and the marker. A whole byte
    /// left over is "extraneous data" to libjpeg, and imgfn refuses what libjpeg warns about.
    fn ends_cleanly(&self) -> bool {
        if self.fake > self.n {
            return false;
        }
        let unread_real_bits = if self.marker {
            self.n - self.fake
        } else {
            self.n
        };
        if unread_real_bits >= 8 {
            return false;
        }
        let mut p = self.pos;
        while self.data.get(p) == Some(&0xFF) && self.data.get(p + 1) == Some(&0xFF) {
            p += 1;
        }
        self.data.get(p) == Some(&0xFF) && !matches!(self.data.get(p + 1), Some(0x00) | None)
    }

    /// The next marker, past any fill bytes, is EOI (call after `ends_cleanly`).
    fn eoi_next(&self) -> bool {
        let mut p = self.pos;
        while self.data.get(p + 1) == Some(&0xFF) {
            p += 1;
        }
        self.data.get(p..p + 2) == Some(&[0xFF, 0xD9][..])
    }

    /// Go past the restart marker `RST<number>`, which must come next.
    fn restart(&mut self, number: u8) -> Option<()> {
        if !self.ends_cleanly() {
            return None;
        }
        while self.data.get(self.pos + 1) == Some(&0xFF) {
            self.pos += 1; // fill bytes before the marker
        }
        if self.data.get(self.pos..self.pos + 2)? != [0xFF, 0xD0 + (number & 7)] {
            // Another marker, or restarts out of sequence: libjpeg resynchronises (a
            // warning), so this decoder declines.
            return None;
        }
        self.pos += 2;
        self.buf = 0;
        self.n = 0;
        self.marker = false;
        self.fake = 0;
        Some(())
    }
}

/// How far an AC symbol (`run << 4 | size`) moves the coefficient index: 16 for a run of
/// zeros (ZRL), 0 for the end of the block, otherwise the run plus the coefficient itself.
fn ac_advance(rs: u8) -> u32 {
    match (rs >> 4, rs & 15) {
        (15, 0) => 16,
        (_, 0) => 0,
        (r, _) => u32::from(r) + 1,
    }
}

/// One lookup that skips every whole AC coefficient (code and value bits) the next
/// [`MULTI_BITS`] bits hold, up to and including an end of block: `bits | advance << 4 |
/// eob << 10`, where `advance` is how far they move the coefficient index together (kept
/// under 64) and `eob` says the last one ends the block. 0 when not even the first fits.
///
/// Built by chaining the single table (`skip`): a coefficient found within the bits that
/// are really there does not depend on the ones past them (a prefix code), so those are
/// looked up as zeros and only a coefficient that ends inside the window is taken.
fn multi_skip_table(t: &Huffman) -> Vec<u16> {
    let mask = (1u32 << MULTI_BITS) - 1;
    (0..1u32 << MULTI_BITS)
        .map(|i| {
            let (mut used, mut advance) = (0u32, 0u32);
            loop {
                let window = (i << used) & mask;
                let e = u32::from(t.skip[(window >> (MULTI_BITS - LUT_BITS)) as usize]);
                let (total, a) = (e & 0xFF, e >> 8);
                if e == 0 || used + total > MULTI_BITS {
                    break;
                }
                if a == 0 {
                    return ((used + total) | (advance << 4) | (1 << 10)) as u16;
                }
                if advance + a > 63 {
                    break;
                }
                used += total;
                advance += a;
            }
            (used | (advance << 4)) as u16
        })
        .collect()
}

/// libjpeg's 1×1 IDCT, bit for bit: the DC value is stored as a 16-bit coefficient
/// (wrapping), dequantised, descaled by 8, then mapped through libjpeg's post-IDCT range
/// limit table, which clamps values near the range and wraps far ones (`& RANGE_MASK`).
#[inline(always)]
fn idct_1x1(dc: i32, q: i32) -> u8 {
    let coef = i32::from(dc as i16);
    let v = (coef.wrapping_mul(q) + 4) >> 3;
    match v & 1023 {
        x @ 0..=127 => (x + 128) as u8,
        128..=511 => 255,
        512..=895 => 0,
        x => (x - 896) as u8,
    }
}

/// Sign-extend `s` value bits as JPEG does.
#[inline(always)]
fn extend(v: u32, s: u32) -> i32 {
    if s == 0 {
        0
    } else if v < (1 << (s - 1)) {
        v as i32 - (1 << s) + 1
    } else {
        v as i32
    }
}

fn be16(b: &[u8], i: usize) -> Option<usize> {
    Some(usize::from(*b.get(i)?) << 8 | usize::from(*b.get(i + 1)?))
}

/// The Huffman and quantisation tables in force at a point of the file, and the restart
/// interval: DHT, DQT and DRI segments applied in file order (a later one replaces a slot).
#[derive(Default)]
struct Tables {
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    /// Each slot's first (DC) quantiser; 0 for a slot no DQT defined (or defined as 0, which
    /// this decoder declines too).
    q0: [u16; 4],
    restart_interval: usize,
}

impl Tables {
    /// Apply one marker segment (other markers are ignored); `None` for a table this decoder
    /// cannot use.
    fn apply(&mut self, marker: u8, seg_data: &[u8]) -> Option<()> {
        match marker {
            0xC4 => {
                let mut p = 0;
                while p < seg_data.len() {
                    let tc = seg_data[p] >> 4;
                    let th = usize::from(seg_data[p] & 15);
                    if tc > 1 || th > 3 {
                        return None;
                    }
                    let counts: [u8; 16] = seg_data.get(p + 1..p + 17)?.try_into().ok()?;
                    let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let symbols = seg_data.get(p + 17..p + 17 + total)?;
                    let table = Huffman::new(&counts, symbols, tc == 1)?;
                    if tc == 0 {
                        self.dc[th] = Some(table);
                    } else {
                        self.ac[th] = Some(table);
                    }
                    p += 17 + total;
                }
            }
            0xDB => {
                let mut p = 0;
                while p < seg_data.len() {
                    let pq = seg_data[p] >> 4;
                    let tq = usize::from(seg_data[p] & 15);
                    if tq > 3 || pq > 1 {
                        return None;
                    }
                    self.q0[tq] = if pq == 0 {
                        u16::from(*seg_data.get(p + 1)?)
                    } else {
                        be16(seg_data, p + 1)? as u16
                    };
                    p += 1 + 64 * (usize::from(pq) + 1);
                }
            }
            0xDD => self.restart_interval = be16(seg_data, 0)?,
            _ => {}
        }
        Some(())
    }
}

/// Grey or three components that libjpeg reads as YCbCr: an Adobe RGB JPEG, or one with R,
/// G, B ids, is not (nor CMYK).
fn colour_ok(header: &JpegHeader<'_>) -> bool {
    let f = &header.frame;
    match f.components.len() {
        1 => true,
        3 => {
            header.adobe_transform != Some(0)
                && !f.components.iter().map(|c| c.id).eq([b'R', b'G', b'B'])
        }
        _ => false,
    }
}

/// One DC difference: its Huffman-coded size, then that many bits. `None` for a code the
/// table lacks or a size over 11 (more than an 8-bit DC difference can need).
#[inline(always)]
fn dc_diff(bits: &mut Bits<'_>, t: &Huffman) -> Option<i32> {
    bits.refill();
    let (len, sym) = t.lut[bits.peek(LUT_BITS) as usize];
    let s = if len != 0 {
        bits.consume(u32::from(len));
        u32::from(sym)
    } else {
        u32::from(bits.symbol(t)?)
    };
    if s > 11 {
        return None;
    }
    let diff = if s == 0 { 0 } else { extend(bits.peek(s), s) };
    bits.consume(s);
    Some(diff)
}

/// Decode a baseline JPEG at 1/8 scale as RGB, or `None` when libjpeg should do it.
///
/// The file's structure comes from the one marker walker ([`jpeg_header`]); this reads only
/// the tables and the first scan's entropy-coded data.
pub fn decode(bytes: &[u8]) -> Option<Pixels> {
    let header = jpeg_header::parse_head(bytes).ok()?;
    decode_header(bytes, &header)
}

/// [`decode`], only when the walker's header agrees with what the probe reported (same
/// stored size), and returning exactly libjpeg's 1/8 size.
pub fn decode_checked(bytes: &[u8], info: &SourceInfo) -> Option<Pixels> {
    let header = jpeg_header::parse_head(bytes).ok()?;
    let f = &header.frame;
    if (u32::from(f.width), u32::from(f.height)) != info.stored {
        return None;
    }
    let p = decode_header(bytes, &header)?;
    let expect = (info.stored.0.div_ceil(8), info.stored.1.div_ceil(8));
    ((p.width, p.height) == expect && p.buf.len() == p.width as usize * p.height as usize * 3)
        .then_some(p)
}

fn decode_header(bytes: &[u8], header: &JpegHeader<'_>) -> Option<Pixels> {
    let (comps, hmax, vmax) = planes(bytes, header)?;
    let (width, height) = (
        usize::from(header.frame.width),
        usize::from(header.frame.height),
    );
    Some(to_rgb(
        &comps,
        (width.div_ceil(8), height.div_ceil(8)),
        (hmax, vmax),
    ))
}

/// Each component's plane of DC values (one per block), with the largest sampling factors:
/// from the one scan of a baseline file, or the DC scans of a progressive one.
fn planes(bytes: &[u8], header: &JpegHeader<'_>) -> Option<(Vec<Component>, usize, usize)> {
    if header.frame.progressive() {
        progressive::decode_planes(bytes, header)
    } else {
        decode_planes(bytes, header)
    }
}

/// [`planes`] of a baseline file.
fn decode_planes(bytes: &[u8], header: &JpegHeader<'_>) -> Option<(Vec<Component>, usize, usize)> {
    decode_planes_with(bytes, header, MULTI_MIN_BLOCKS)
}

/// [`decode_planes`], with the multi-coefficient tables from `multi_min_blocks` blocks.
fn decode_planes_with(
    bytes: &[u8],
    header: &JpegHeader<'_>,
    multi_min_blocks: usize,
) -> Option<(Vec<Component>, usize, usize)> {
    let f = &header.frame;
    // Baseline or extended sequential Huffman.
    if !matches!(f.marker, 0xC0 | 0xC1) || !colour_ok(header) {
        return None;
    }
    let mut tables = Tables::default();
    for seg in &header.segments {
        tables.apply(seg.marker, seg.data)?;
    }
    let sos = header.first_scan;
    let n = usize::from(*sos.first()?);
    // One interleaved scan of every component, all 64 coefficients, no approximation.
    if n != f.components.len() || sos.get(1 + n * 2..4 + n * 2)? != [0, 63, 0] {
        return None;
    }
    let mut comps = Vec::with_capacity(n);
    for c in &f.components {
        let s = (0..n).find(|&s| sos[1 + s * 2] == c.id)?;
        let tables = sos[2 + s * 2];
        let (dc_table, ac_table) = (usize::from(tables >> 4), usize::from(tables & 15));
        if dc_table > 3 || ac_table > 3 {
            return None;
        }
        comps.push(Component {
            id: c.id,
            h: usize::from(c.h),
            v: usize::from(c.v),
            tq: usize::from(c.tq),
            dc_table,
            ac_table,
            plane: Vec::new(),
            bw: 0,
            bh: 0,
        });
    }
    // The scan's component order is the frame's. The walker already refuses any other order
    // (every scan id a frame component, once, in libjpeg's SOS order), so for a scan of every
    // component this cannot fail; it stays as the guard this decoder's indexing relies on.
    if (0..n).any(|s| sos[1 + s * 2] != comps[s].id) {
        return None;
    }
    let (hmax, vmax) = scan(
        bytes.get(header.scan_data..)?,
        &mut comps,
        &tables,
        usize::from(header.restart_interval),
        (usize::from(f.width), usize::from(f.height)),
        multi_min_blocks,
    )?;
    Some((comps, hmax, vmax))
}

/// Read past the 63 AC coefficients of one block. The bit buffer lives in locals here (this
/// loop is nearly all the time of a 1/8 decode). With `multi` ([`multi_skip_table`]) one
/// lookup skips several coefficients whenever they all lie inside this block; the single
/// table takes the steps that would cross its end.
#[inline(always)]
fn skip_ac(bits: &mut Bits<'_>, t: &Huffman, multi: Option<&[u16]>) -> Option<()> {
    let (mut buf, mut n) = (bits.buf, bits.n);
    let mut k = 1u32;
    loop {
        if n < 32 {
            (bits.buf, bits.n) = (buf, n);
            bits.refill();
            (buf, n) = (bits.buf, bits.n);
        }
        if let Some(multi) = multi {
            let m = u32::from(multi[(buf >> (64 - MULTI_BITS)) as usize]);
            if m != 0 && k + ((m >> 4) & 63) < 64 {
                let total = m & 15;
                buf <<= total;
                n -= total;
                k += (m >> 4) & 63;
                if m & 1 << 10 != 0 {
                    break;
                }
                continue;
            }
        }
        let e = t.skip[(buf >> (64 - LUT_BITS)) as usize];
        let advance = if e != 0 {
            let total = u32::from(e & 0xFF);
            buf <<= total;
            n -= total;
            u32::from(e >> 8)
        } else {
            (bits.buf, bits.n) = (buf, n);
            let rs = bits.symbol(t)?;
            bits.refill();
            bits.consume(u32::from(rs & 15));
            (buf, n) = (bits.buf, bits.n);
            ac_advance(rs)
        };
        if advance == 0 {
            break;
        }
        k += advance;
        if k >= 64 {
            break;
        }
    }
    (bits.buf, bits.n) = (buf, n);
    (k <= 64).then_some(())
}

/// Decode the scan's DC coefficients into each component's plane; returns the largest
/// horizontal and vertical sampling factors.
fn scan(
    data: &[u8],
    comps: &mut [Component],
    tables: &Tables,
    restart_interval: usize,
    (width, height): (usize, usize),
    multi_min_blocks: usize,
) -> Option<(usize, usize)> {
    let hmax = comps.iter().map(|c| c.h).max()?;
    let vmax = comps.iter().map(|c| c.v).max()?;
    // Sampling factors that do not divide the largest (3 with 4, say) are libjpeg's job.
    if comps.iter().any(|c| hmax % c.h != 0 || vmax % c.v != 0) {
        return None;
    }
    let single = comps.len() == 1;
    // A single-component scan is not interleaved: one block per MCU.
    let (mcux, mcuy) = if single {
        (width.div_ceil(8), height.div_ceil(8))
    } else {
        (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax))
    };
    for c in comps.iter_mut() {
        (c.bw, c.bh) = if single {
            (mcux, mcuy)
        } else {
            (mcux * c.h, mcuy * c.v)
        };
        c.plane = vec![0; c.bw.checked_mul(c.bh)?];
        if tables.dc[c.dc_table].is_none()
            || tables.ac[c.ac_table].is_none()
            || tables.q0[c.tq] == 0
        {
            return None;
        }
    }
    let total = mcux.checked_mul(mcuy)?;
    let blocks = total.saturating_mul(comps.iter().map(|c| c.h * c.v).sum());
    let mut multi: [Option<Vec<u16>>; 4] = Default::default();
    if blocks >= multi_min_blocks {
        for c in comps.iter() {
            if multi[c.ac_table].is_none() {
                multi[c.ac_table] = Some(multi_skip_table(tables.ac[c.ac_table].as_ref()?));
            }
        }
    }
    let mut bits = Bits::new(data);
    let mut pred = [0i32; 3];
    let mut restarts = 0u8;
    for m in 0..total {
        if restart_interval > 0 && m > 0 && m % restart_interval == 0 {
            bits.restart(restarts)?;
            restarts = restarts.wrapping_add(1);
            pred = [0; 3];
        }
        let (mx, my) = (m % mcux, m / mcux);
        for (ci, c) in comps.iter_mut().enumerate() {
            let dc_t = tables.dc[c.dc_table].as_ref()?;
            let ac_t = tables.ac[c.ac_table].as_ref()?;
            let ac_multi = multi[c.ac_table].as_deref();
            let q = i32::from(tables.q0[c.tq]);
            let (bh, bv) = if single { (1, 1) } else { (c.h, c.v) };
            for by in 0..bv {
                for bx in 0..bh {
                    let diff = dc_diff(&mut bits, dc_t)?;
                    // (Wrapping, as libjpeg's int arithmetic: a corrupt stream may drift.)
                    pred[ci] = pred[ci].wrapping_add(diff);
                    let (x, y) = (mx * bh + bx, my * bv + by);
                    *c.plane.get_mut(y * c.bw + x)? = idct_1x1(pred[ci], q);
                    // AC: skipped, but every code must be read to find the next block.
                    skip_ac(&mut bits, ac_t, ac_multi)?;
                }
            }
        }
        // A bit past the data's end was used: the scan can no longer end cleanly (libjpeg
        // warns "premature end of data segment"), so stop now rather than read padding for
        // every MCU a lying header promises.
        if bits.fake > bits.n {
            return None;
        }
    }
    // The scan ends cleanly, and at the end of the file: anything else after the last MCU
    // (a stray RST, bytes before EOI) is libjpeg's to judge.
    if !bits.ends_cleanly() || !bits.eoi_next() {
        return None;
    }
    Some((hmax, vmax))
}

/// Upsample chroma to the luma grid (triangle filter for 2×, like libjpeg's "fancy"
/// upsampling; replication otherwise) and convert YCbCr to RGB (JFIF, fixed point).
fn to_rgb(comps: &[Component], (w, h): (usize, usize), (hmax, vmax): (usize, usize)) -> Pixels {
    let mut buf = Vec::with_capacity(w * h * 3);
    if comps.len() == 1 {
        let y = &comps[0];
        for row in 0..h {
            for col in 0..w {
                let v = y.plane[row * y.bw + col];
                buf.extend_from_slice(&[v, v, v]);
            }
        }
    } else {
        let cb = upsample(&comps[1], hmax, vmax, w, h);
        let cr = upsample(&comps[2], hmax, vmax, w, h);
        let y = &comps[0];
        let (fy, fx) = (vmax / y.v, hmax / y.h);
        for row in 0..h {
            for col in 0..w {
                let yv = i32::from(y.plane[(row / fy) * y.bw + col / fx]) << 16;
                let (b, r) = (
                    i32::from(cb[row * w + col]) - 128,
                    i32::from(cr[row * w + col]) - 128,
                );
                // 1.402, 0.344136, 0.714136, 1.772 in 16.16 fixed point.
                let red = (yv + 91_881 * r + 32_768) >> 16;
                let green = (yv - 22_554 * b - 46_802 * r + 32_768) >> 16;
                let blue = (yv + 116_130 * b + 32_768) >> 16;
                buf.extend_from_slice(&[
                    red.clamp(0, 255) as u8,
                    green.clamp(0, 255) as u8,
                    blue.clamp(0, 255) as u8,
                ]);
            }
        }
    }
    Pixels {
        buf,
        width: w as u32,
        height: h as u32,
        alpha: false,
    }
}

/// A chroma plane at the luma grid's size (`w`×`h`).
fn upsample(c: &Component, hmax: usize, vmax: usize, w: usize, h: usize) -> Vec<u8> {
    let (fx, fy) = (hmax / c.h, vmax / c.v);
    let at = |x: isize, y: isize| -> i32 {
        let x = x.clamp(0, c.bw as isize - 1) as usize;
        let y = y.clamp(0, c.bh as isize - 1) as usize;
        i32::from(c.plane[y * c.bw + x])
    };
    let mut out = Vec::with_capacity(w * h);
    for row in 0..h {
        for col in 0..w {
            let v = if fx == 2 && fy == 2 {
                // Each output sample is 3/4 nearer + 1/4 farther, in both directions.
                let (sx, sy) = ((col / 2) as isize, (row / 2) as isize);
                let nx = if col % 2 == 0 { sx - 1 } else { sx + 1 };
                let ny = if row % 2 == 0 { sy - 1 } else { sy + 1 };
                (9 * at(sx, sy) + 3 * at(nx, sy) + 3 * at(sx, ny) + at(nx, ny) + 8) >> 4
            } else if fx == 2 && fy == 1 {
                let (sx, sy) = ((col / 2) as isize, row as isize);
                let nx = if col % 2 == 0 { sx - 1 } else { sx + 1 };
                (3 * at(sx, sy) + at(nx, sy) + 2) >> 2
            } else {
                at((col / fx) as isize, (row / fy) as isize)
            };
            out.push(v as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header promising 60000×60000 over 640×427 of data: declined at the end of the data,
    /// not after reading padding for 56 million blocks (that overflowed the padding counter).
    #[test]
    fn a_header_promising_more_than_the_data_holds_is_declined_at_the_data_end() {
        let bytes = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/malformed/huge-dimensions.jpg"),
        )
        .unwrap();
        let started = std::time::Instant::now();
        assert!(decode(&bytes).is_none());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    /// libjpeg's own 1/8 decode, for comparison.
    pub(super) fn libjpeg_eighth(bytes: &[u8]) -> (Vec<u8>, usize, usize) {
        let mut d = mozjpeg::Decompress::builder().from_mem(bytes).unwrap();
        d.scale(1);
        let mut s = d.rgb().unwrap();
        let (w, h) = (s.width(), s.height());
        let px: Vec<u8> = s.read_scanlines().unwrap();
        s.finish().unwrap();
        (px, w, h)
    }

    pub(super) fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
    }

    /// How a fixture fares: declined (libjpeg decodes it), or decoded with luma bit-exact
    /// to libjpeg's 1/8 decode and RGB either identical (no chroma upsampling that differs:
    /// grey, 4:4:4, 4:4:0) or at least this many dB from libjpeg's (4:2:0 and 4:2:2 chroma is
    /// triangle-upsampled DC where libjpeg runs a 2×2 or 2×1 IDCT).
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Expect {
        Declined,
        Identical,
        LumaExact { min_db: f64 },
    }

    /// Every JPEG fixture (testdata/*.jpg, testdata/jpeg/*.jpg and the progressive ones of
    /// testdata/jpeg/progressive/) and what the fast path
    /// does with it. A fixture added or removed must be listed here: coverage cannot vanish
    /// silently.
    const FIXTURES: [(&str, Expect); 31] = {
        use Expect::*;
        [
            ("jpeg/gray.jpg", Identical),
            ("jpeg/s444.jpg", Identical),
            ("jpeg/s440.jpg", Identical),
            ("gray.jpg", Identical),
            ("jpeg/s422.jpg", LumaExact { min_db: 46.0 }),
            ("jpeg/odd-422-restart.jpg", LumaExact { min_db: 46.0 }),
            ("jpeg/odd-601x397.jpg", LumaExact { min_db: 39.0 }),
            ("jpeg/restart-1row.jpg", LumaExact { min_db: 39.0 }),
            ("jpeg/restart-7blocks.jpg", LumaExact { min_db: 39.0 }),
            ("jpeg/q98-optimized.jpg", LumaExact { min_db: 39.0 }),
            ("small.jpg", LumaExact { min_db: 39.0 }),
            (".hidden.jpg", LumaExact { min_db: 39.0 }),
            ("orient-3.jpg", LumaExact { min_db: 39.0 }),
            ("orient-5.jpg", LumaExact { min_db: 39.0 }),
            ("orient-6.jpg", LumaExact { min_db: 39.0 }),
            ("orient-8.jpg", LumaExact { min_db: 39.0 }),
            ("medium.jpg", LumaExact { min_db: 38.5 }),
            ("large.jpg", LumaExact { min_db: 49.0 }),
            ("jpeg/progressive.jpg", LumaExact { min_db: 39.0 }),
            ("jpeg/progressive/grey-sa-77x53.jpg", Identical),
            ("jpeg/progressive/p444-restart-1mcu-64x48.jpg", Identical),
            ("jpeg/progressive/pillow-p444-57x39.jpg", Identical),
            ("jpeg/progressive/p411-73x41.jpg", Identical),
            (
                "jpeg/progressive/p420-simple-101x75.jpg",
                LumaExact { min_db: 37.0 },
            ),
            (
                "jpeg/progressive/p422-dc-separate-sa-99x67.jpg",
                LumaExact { min_db: 49.5 },
            ),
            (
                "jpeg/progressive/p420-dc-separate-sa-restart-1row-97x71.jpg",
                LumaExact { min_db: 41.0 },
            ),
            (
                "jpeg/progressive/p420-dc-no-refinement-81x57.jpg",
                LumaExact { min_db: 40.0 },
            ),
            (
                "jpeg/progressive/p420-ac-sa-restart-2mcu-88x64.jpg",
                LumaExact { min_db: 36.0 },
            ),
            (
                "jpeg/progressive/p420-jpegtran-67x45.jpg",
                LumaExact { min_db: 39.5 },
            ),
            (
                "jpeg/progressive/pillow-p420-95x63.jpg",
                LumaExact { min_db: 45.0 },
            ),
            ("cmyk.jpg", Declined),
        ]
    };

    #[test]
    fn fast_path_coverage_and_exactness_per_fixture() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut found: Vec<String> = Vec::new();
        for sub in ["", "jpeg/", "jpeg/progressive/"] {
            for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
                let name = entry.unwrap().file_name().into_string().unwrap();
                if name.ends_with(".jpg") {
                    found.push(format!("{sub}{name}"));
                }
            }
        }
        found.sort();
        let mut listed: Vec<String> = FIXTURES.iter().map(|(f, _)| f.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed, "every JPEG fixture is classified below");

        for (file, expect) in FIXTURES {
            let bytes = std::fs::read(dir.join(file)).unwrap();
            // As the pipeline runs it: after the probe, checked against it.
            let info = crate::pipeline::probe(&bytes).unwrap();
            let fast = decode_checked(&bytes, &info);
            if expect == Expect::Declined {
                assert!(fast.is_none(), "{file}: should be left to libjpeg");
                continue;
            }
            let fast = fast.unwrap_or_else(|| panic!("{file}: the fast path declined it"));
            let (reference, w, h) = libjpeg_eighth(&bytes);
            assert_eq!(
                (fast.width as usize, fast.height as usize),
                (w, h),
                "{file}"
            );
            let (luma, ..) = libjpeg_eighth_luma(&bytes);
            let ours = fast_luma(&bytes).unwrap();
            let differ = ours.iter().zip(&luma).filter(|(a, b)| a != b).count();
            assert_eq!(
                differ, 0,
                "{file}: {differ} luma samples differ from libjpeg's"
            );
            match expect {
                Expect::Identical => assert!(
                    fast.buf == reference,
                    "{file}: RGB differs from libjpeg's ({:.1} dB)",
                    psnr(&fast.buf, &reference)
                ),
                Expect::LumaExact { min_db } => {
                    let db = psnr(&fast.buf, &reference);
                    assert!(db >= min_db, "{file}: {db:.1} dB against libjpeg");
                }
                Expect::Declined => unreachable!(),
            }
        }
    }

    /// Both skipping paths on one file: the planes without and with the multi-coefficient
    /// lookup, which must be the same (or both declined).
    fn single_and_multi_agree(name: &str, bytes: &[u8]) -> bool {
        let Ok(header) = jpeg_header::parse_head(bytes) else {
            return false;
        };
        if header.frame.progressive() {
            return false;
        }
        let single = decode_planes_with(bytes, &header, usize::MAX);
        let multi = decode_planes_with(bytes, &header, 0);
        match (single, multi) {
            (None, None) => false,
            (Some((a, ah, av)), Some((b, bh, bv))) => {
                assert_eq!((ah, av), (bh, bv), "{name}");
                for (x, y) in a.iter().zip(&b) {
                    assert!(x.plane == y.plane, "{name}: planes differ");
                }
                true
            }
            (s, m) => panic!(
                "{name}: single {} but multi {}",
                if s.is_some() { "decoded" } else { "declined" },
                if m.is_some() { "decoded" } else { "declined" }
            ),
        }
    }

    /// The multi-coefficient lookup of big scans skips exactly what the single lookup skips:
    /// on every baseline fixture, on quality-100 noise (blocks that end at coefficient 63
    /// with no end-of-block code, where a lookup must not run into the next block) and a
    /// sparse image (runs of zeros, ZRL codes), and on 300 random corruptions of each.
    #[test]
    fn the_multi_coefficient_lookup_reads_what_the_single_one_reads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut inputs: Vec<(String, Vec<u8>)> = FIXTURES
            .iter()
            .map(|(f, _)| (f.to_string(), std::fs::read(dir.join(f)).unwrap()))
            .collect();
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        let (w, h) = (203usize, 141usize);
        let noise: Vec<u8> = (0..w * h * 3).map(|_| next() as u8).collect();
        let sparse: Vec<u8> = (0..w * h * 3)
            .map(|i| {
                if next() % 97 == 0 {
                    255
                } else {
                    (i / 3 % w) as u8
                }
            })
            .collect();
        for (name, px, q) in [("noise q100", &noise, 100.0), ("sparse q90", &sparse, 90.0)] {
            let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
            c.set_fastest_defaults(); // baseline, no trellis
            c.set_size(w, h);
            c.set_quality(q);
            c.set_optimize_coding(true);
            let mut started = c.start_compress(Vec::new()).unwrap();
            started.write_scanlines(px).unwrap();
            inputs.push((name.to_string(), started.finish().unwrap()));
        }
        let mut decoded = 0;
        for (name, bytes) in &inputs {
            decoded += usize::from(single_and_multi_agree(name, bytes));
            for _ in 0..300 {
                let mut corrupt = bytes.clone();
                for _ in 0..1 + next() % 4 {
                    let i = (next() % corrupt.len() as u64) as usize;
                    corrupt[i] = next() as u8;
                }
                single_and_multi_agree(name, &corrupt);
            }
        }
        // Every baseline fixture the fast path takes, and both generated images.
        assert!(decoded >= 20, "only {decoded} inputs decoded");
    }

    /// libjpeg's own 1/8 decode without colour conversion: its luma (Y) plane.
    pub(super) fn libjpeg_eighth_luma(bytes: &[u8]) -> (Vec<u8>, usize, usize) {
        let mut d = mozjpeg::Decompress::builder().from_mem(bytes).unwrap();
        d.scale(1);
        let grey = d.color_space() == mozjpeg::ColorSpace::JCS_GRAYSCALE;
        let space = if grey {
            mozjpeg::ColorSpace::JCS_GRAYSCALE
        } else {
            mozjpeg::ColorSpace::JCS_YCbCr
        };
        let mut s = d.to_colorspace(space).unwrap();
        let (w, h) = (s.width(), s.height());
        let px: Vec<u8> = s.read_scanlines().unwrap();
        s.finish().unwrap();
        let luma = if grey {
            px
        } else {
            px.chunks_exact(3).map(|c| c[0]).collect()
        };
        assert_eq!(luma.len(), w * h);
        (luma, w, h)
    }

    /// This decoder's luma at the output size (what `to_rgb` reads for Y).
    pub(super) fn fast_luma(bytes: &[u8]) -> Option<Vec<u8>> {
        let header = jpeg_header::parse_head(bytes).ok()?;
        let (comps, hmax, vmax) = planes(bytes, &header)?;
        let (w, h) = (
            usize::from(header.frame.width).div_ceil(8),
            usize::from(header.frame.height).div_ceil(8),
        );
        let y = &comps[0];
        let (fy, fx) = (vmax / y.v, hmax / y.h);
        Some(
            (0..h)
                .flat_map(|row| (0..w).map(move |col| y.plane[(row / fy) * y.bw + col / fx]))
                .collect(),
        )
    }

    /// What the differential fuzz target checks, over every input it has kept (seeds and
    /// the differences it found): when this decoder answers, libjpeg (with imgfn's strict
    /// error manager) decodes the file too, at the same size and nearly the same pixels.
    #[test]
    fn agrees_with_libjpeg_on_every_kept_fuzz_input() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut decoded = 0;
        let mut files = 0;
        for dir in [
            "fuzz/regressions/jpeg_dc_diff",
            "fuzz/seeds/jpeg_dc_diff",
            "testdata/hostile",
        ] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                files += 1;
                // As the pipeline runs it: only files the probe accepts.
                let Ok(info) = crate::pipeline::probe(&bytes) else {
                    continue;
                };
                let Some(fast) = decode_checked(&bytes, &info) else {
                    continue;
                };
                let reference = crate::pipeline::decode::decode_jpeg_libjpeg(&bytes, 8)
                    .unwrap_or_else(|e| panic!("{path:?}: jpeg_dc decoded it, libjpeg: {e}"));
                assert_eq!(
                    (fast.width, fast.height),
                    (reference.width, reference.height),
                    "{path:?}"
                );
                let mean = fast
                    .buf
                    .iter()
                    .zip(&reference.buf)
                    .map(|(&a, &b)| f64::from(a.abs_diff(b)))
                    .sum::<f64>()
                    / fast.buf.len().max(1) as f64;
                // Chroma upsampling differs at the edges of tiny images (1x1 4:2:0: 2.3).
                assert!(mean <= 3.0, "{path:?}: mean difference {mean:.2}");
                decoded += 1;
            }
        }
        assert!(files >= 10 && decoded >= 5, "{decoded} of {files} decoded");
    }

    #[test]
    fn declines_what_it_does_not_handle() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        assert!(decode(&std::fs::read(dir.join("cmyk.jpg")).unwrap()).is_none());
        // A progressive file marked as arithmetic-coded (SOF10): libjpeg's.
        let mut arithmetic =
            std::fs::read(dir.join("jpeg/progressive/p420-simple-101x75.jpg")).unwrap();
        assert!(decode(&arithmetic).is_some());
        let sof = arithmetic
            .windows(2)
            .position(|w| w == [0xFF, 0xC2])
            .unwrap();
        arithmetic[sof + 1] = 0xCA;
        assert!(decode(&arithmetic).is_none());
        let small = std::fs::read(dir.join("small.jpg")).unwrap();
        for cut in [0, 1, 2, 100, 600, small.len() / 2] {
            let _ = decode(&small[..cut]); // never panics
        }
        survives_random_corruption(&small);
    }

    /// A deterministic pseudo-random sequence (xorshift64).
    pub(super) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// Random corruption anywhere (headers, tables, entropy data): never a panic, and any
    /// image still returned has a whole buffer.
    pub(super) fn survives_random_corruption(bytes: &[u8]) {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..400 {
            let mut corrupt = bytes.to_vec();
            for _ in 0..1 + next() % 8 {
                let i = (next() % corrupt.len() as u64) as usize;
                corrupt[i] = next() as u8;
            }
            if let Some(p) = decode(&corrupt) {
                assert_eq!(p.buf.len(), p.width as usize * p.height as usize * 3);
            }
        }
    }
}
