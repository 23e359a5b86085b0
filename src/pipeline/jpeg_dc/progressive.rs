//! DC-only decoding of progressive JPEGs (SOF2, 8-bit Huffman) at 1/8 scale.
//!
//! A progressive file codes every block's DC coefficient in its DC scans (Ss = Se = 0): a
//! first scan with a point transform Al, then refinement scans adding one bit each. At 1/8
//! each block is one pixel made from its DC alone (libjpeg's 1×1 IDCT), so the DC scans are
//! decoded here and every AC scan is stepped over without reading its entropy-coded data: its
//! end is the next marker that is not RSTn or a stuffed `FF 00`, a byte search. libjpeg-turbo
//! instead Huffman-decodes every scan into a coefficient buffer for the whole image.
//!
//! Scan headers, tables and markers between scans are read as libjpeg reads them (jdphuff.c
//! `start_pass_phuff_decoder`, jdinput.c `latch_quant_tables`): tables and the restart
//! interval in force at each scan, the quantisation table latched at a component's first
//! scan, and the progression checks libjpeg makes (a bad one is an error or a warning to it,
//! and this decoder declines). Declined too, so that libjpeg decodes the file: arithmetic
//! coding, colour spaces [`super::colour_ok`] refuses, a component without a DC scan, and a
//! component without any AC scan of coefficients 1–9 (libjpeg-turbo's block smoothing then
//! interpolates its DC values from their neighbours).
//!
//! What is not checked, since it is not read: the AC scans' entropy-coded data. A file whose
//! AC data is corrupt but whose markers, headers and DC scans are sound gets its 1/8 image
//! from here, where libjpeg (which imgfn runs with warnings fatal) would refuse the file at
//! other scales. Those AC coefficients cannot change a pixel of the 1/8 image, and checking
//! them would cost what skipping them saves.

use super::{be16, colour_ok, dc_diff, idct_1x1, Bits, Component, Tables};
use crate::pipeline::jpeg_header::JpegHeader;

/// One scan header, checked against the frame.
struct Scan {
    /// Frame component indices, in the scan's (MCU) order, with their DC table selector.
    comps: Vec<(usize, usize)>,
    ss: u8,
    se: u8,
    ah: u8,
    al: u8,
}

impl Scan {
    /// Parse a SOS payload (the walker checked its length and that its ids are the frame's,
    /// once each) and apply libjpeg's checks of the scan parameters, which are fatal to it.
    fn parse(sos: &[u8], frame_ids: &[u8]) -> Option<Scan> {
        let n = usize::from(*sos.first()?);
        let comps = (0..n)
            .map(|s| {
                let id = *sos.get(1 + 2 * s)?;
                let tables = *sos.get(2 + 2 * s)?;
                let ci = frame_ids.iter().position(|&f| f == id)?;
                Some((ci, usize::from(tables >> 4)))
            })
            .collect::<Option<Vec<_>>>()?;
        let (ss, se, a) = (
            *sos.get(1 + 2 * n)?,
            *sos.get(2 + 2 * n)?,
            *sos.get(3 + 2 * n)?,
        );
        let (ah, al) = (a >> 4, a & 15);
        let bad = if ss == 0 {
            se != 0
        } else {
            ss > se || se >= 64 || n != 1
        } || (ah != 0 && al + 1 != ah)
            || al > 13;
        (!bad && !comps.is_empty()).then_some(Scan {
            comps,
            ss,
            se,
            ah,
            al,
        })
    }
}

/// Per component: what libjpeg's progression table (`coef_bits`) says of each coefficient
/// (-1: never in a scan, else the Al of its last scan), and the latched DC quantiser.
struct Progress {
    coef_bits: [i8; 64],
    q0: Option<u16>,
    /// Every DC scan of the component was interleaved: its blocks of partial MCUs (beyond
    /// the image) were coded too, as in a baseline file.
    padded: bool,
}

/// Each component's plane of DC values, as the baseline path's [`super::decode_planes`]
/// returns them, or `None` when libjpeg should decode the file.
pub(super) fn decode_planes(
    bytes: &[u8],
    header: &JpegHeader<'_>,
) -> Option<(Vec<Component>, usize, usize)> {
    let f = &header.frame;
    if f.marker != 0xC2 || !colour_ok(header) {
        return None;
    }
    let (width, height) = (usize::from(f.width), usize::from(f.height));
    let hmax = f.components.iter().map(|c| usize::from(c.h)).max()?;
    let vmax = f.components.iter().map(|c| usize::from(c.v)).max()?;
    // Sampling factors that do not divide the largest (3 with 4, say) are libjpeg's job.
    if f.components
        .iter()
        .any(|c| hmax % usize::from(c.h) != 0 || vmax % usize::from(c.v) != 0)
    {
        return None;
    }
    let single = f.components.len() == 1;
    let (mcux, mcuy) = (width.div_ceil(8 * hmax), height.div_ceil(8 * vmax));
    let mut comps: Vec<Component> = Vec::with_capacity(f.components.len());
    // Blocks each component has in the image (a non-interleaved scan codes these only).
    let mut real: Vec<(usize, usize)> = Vec::with_capacity(f.components.len());
    for c in &f.components {
        let (h, v) = (usize::from(c.h), usize::from(c.v));
        let own = (
            (width * h).div_ceil(8 * hmax),
            (height * v).div_ceil(8 * vmax),
        );
        let (bw, bh) = if single { own } else { (mcux * h, mcuy * v) };
        comps.push(Component {
            id: c.id,
            h,
            v,
            tq: usize::from(c.tq),
            dc_table: 0,
            ac_table: 0,
            plane: Vec::new(),
            bw,
            bh,
        });
        real.push(own);
    }
    // Every block is in a DC first scan, at least one bit each: a header promising more
    // blocks than the file has bits is declined before anything is allocated for them.
    let blocks = real
        .iter()
        .try_fold(0usize, |sum, &(w, h)| sum.checked_add(w.checked_mul(h)?))?;
    if blocks > bytes.len().saturating_mul(8) {
        return None;
    }
    // The coefficients as libjpeg stores them (16-bit), one per block: what the refinement
    // scans add bits to.
    let mut coefs: Vec<Vec<i16>> = comps
        .iter()
        .map(|c| Some(vec![0i16; c.bw.checked_mul(c.bh)?]))
        .collect::<Option<_>>()?;
    let mut progress: Vec<Progress> = comps
        .iter()
        .map(|_| Progress {
            coef_bits: [-1; 64],
            q0: None,
            padded: true,
        })
        .collect();
    let ids: Vec<u8> = comps.iter().map(|c| c.id).collect();

    let mut tables = Tables::default();
    for seg in &header.segments {
        tables.apply(seg.marker, seg.data)?;
    }
    let (mut sos, mut pos) = (header.first_scan, header.scan_data);
    loop {
        let scan = Scan::parse(sos, &ids)?;
        for &(ci, _) in &scan.comps {
            let p = &mut progress[ci];
            // libjpeg's warnings (JWRN_BOGUS_PROGRESSION): AC before the DC, or a scan whose
            // Ah is not what the coefficient's last scan left.
            if scan.ss > 0 && p.coef_bits[0] < 0 {
                return None;
            }
            for k in usize::from(scan.ss)..=usize::from(scan.se) {
                if scan.ah as i8 != p.coef_bits[k].max(0) {
                    return None;
                }
                p.coef_bits[k] = scan.al as i8;
            }
            // The quantisation table is latched at the component's first scan.
            if p.q0.is_none() {
                let q = tables.q0[comps[ci].tq];
                p.q0 = (q != 0).then_some(q);
                p.q0?;
            }
        }
        pos = if scan.ss == 0 {
            let geometry = Geometry {
                mcux,
                mcuy,
                single: scan.comps.len() == 1,
                real: &real,
            };
            if scan.comps.len() == 1 && !single {
                progress[scan.comps[0].0].padded = false;
            }
            pos + dc_scan(
                bytes.get(pos..)?,
                &scan,
                &tables,
                &geometry,
                &comps,
                &mut coefs,
            )?
        } else {
            // An AC scan needs its table (libjpeg fails without it), nothing else.
            let ta = sos.get(2).map(|t| usize::from(t & 15))?;
            tables.ac.get(ta)?.as_ref()?;
            skip_entropy_data(bytes, pos)?
        };
        // Markers up to the next scan or the end.
        loop {
            while bytes.get(pos + 1) == Some(&0xFF) {
                pos += 1; // fill bytes
            }
            if bytes.get(pos) != Some(&0xFF) {
                return None;
            }
            let marker = *bytes.get(pos + 1)?;
            pos += 2;
            if marker == 0xD9 {
                return finish(comps, coefs, &progress, &real, hmax, vmax);
            }
            // Every other marker here has a length (a RST or TEM is a corrupt stream).
            let len = be16(bytes, pos)?;
            let seg = bytes.get(pos + 2..pos.checked_add(len)?)?;
            let next = pos + len;
            match marker {
                0xDA => {
                    (sos, pos) = (seg, next);
                    break;
                }
                0xC4 | 0xDB | 0xDD => tables.apply(marker, seg)?,
                0xE0..=0xEF | 0xFE => {}
                _ => return None,
            }
            pos = next;
        }
    }
}

/// The blocks of the frame's MCUs and the blocks each component has in the image.
struct Geometry<'a> {
    mcux: usize,
    mcuy: usize,
    /// The scan has one component: one block per MCU, the component's own blocks only.
    single: bool,
    real: &'a [(usize, usize)],
}

/// Decode one DC scan (first or refinement) into `coefs`; returns where its entropy-coded
/// data ends (the offset of the marker after it).
fn dc_scan(
    data: &[u8],
    scan: &Scan,
    tables: &Tables,
    g: &Geometry<'_>,
    comps: &[Component],
    coefs: &mut [Vec<i16>],
) -> Option<usize> {
    let first = scan.ah == 0;
    let dc_tables = scan
        .comps
        .iter()
        .map(|&(_, td)| {
            if first {
                tables.dc.get(td)?.as_ref().map(Some)
            } else {
                Some(None) // a refinement reads raw bits
            }
        })
        .collect::<Option<Vec<_>>>()?;
    let (mcux, total) = if g.single {
        let (w, h) = g.real[scan.comps[0].0];
        (w, w.checked_mul(h)?)
    } else {
        (g.mcux, g.mcux.checked_mul(g.mcuy)?)
    };
    let ri = tables.restart_interval;
    let mut bits = Bits::new(data);
    let mut pred = [0i32; 4];
    let mut restarts = 0u8;
    let bit = 1i16 << scan.al;
    for m in 0..total {
        if ri > 0 && m > 0 && m % ri == 0 {
            bits.restart(restarts)?;
            restarts = restarts.wrapping_add(1);
            pred = [0; 4];
        }
        let (mx, my) = (m % mcux, m / mcux);
        for (si, (&(ci, _), table)) in scan.comps.iter().zip(&dc_tables).enumerate() {
            let c = &comps[ci];
            let (bh, bv) = if g.single { (1, 1) } else { (c.h, c.v) };
            for by in 0..bv {
                for bx in 0..bh {
                    let (x, y) = (mx * bh + bx, my * bv + by);
                    let coef = coefs[ci].get_mut(y * c.bw + x)?;
                    if let Some(t) = table {
                        // (Wrapping, as libjpeg's int arithmetic; stored as its 16-bit
                        // coefficient, shifted by the point transform.)
                        pred[si] = pred[si].wrapping_add(dc_diff(&mut bits, t)?);
                        *coef = pred[si].wrapping_shl(u32::from(scan.al)) as i16;
                    } else {
                        bits.refill();
                        if bits.peek(1) == 1 {
                            *coef |= bit;
                        }
                        bits.consume(1);
                    }
                }
            }
        }
        // A bit past the data's end was used (see the baseline scan): stop now.
        if bits.fake > bits.n {
            return None;
        }
    }
    bits.ends_cleanly().then_some(bits.pos)
}

/// Where the entropy-coded data starting at `pos` ends: the first marker that is not a
/// stuffed `FF 00`, RSTn or fill byte.
fn skip_entropy_data(bytes: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let at = pos + memchr::memchr(0xFF, bytes.get(pos..)?)?;
        match *bytes.get(at + 1)? {
            0x00 | 0xD0..=0xD7 => pos = at + 2,
            0xFF => pos = at + 1,
            _ => return Some(at),
        }
    }
}

/// After EOI: every component's DC is known and left alone by libjpeg's block smoothing;
/// the coefficients become the baseline path's planes (1×1 IDCT).
fn finish(
    mut comps: Vec<Component>,
    coefs: Vec<Vec<i16>>,
    progress: &[Progress],
    real: &[(usize, usize)],
    hmax: usize,
    vmax: usize,
) -> Option<(Vec<Component>, usize, usize)> {
    for (((c, coef), p), &(rw, rh)) in comps.iter_mut().zip(coefs).zip(progress).zip(real) {
        // No DC scan; or no AC scan of coefficients 1-9, where libjpeg-turbo's block
        // smoothing (jdcoefct.c, `change_dc`) replaces each DC by a blend of its neighbours.
        if p.coef_bits[0] < 0 || p.coef_bits[1..=9].iter().all(|&b| b < 0) {
            return None;
        }
        let q = i32::from(p.q0?);
        c.plane = coef.iter().map(|&d| idct_1x1(i32::from(d), q)).collect();
        if !p.padded {
            // Blocks of partial MCUs were never coded: repeat the image's last column and
            // row, as the baseline path's upsampling does at a plane's edge.
            let (rw, rh) = (rw.min(c.bw), rh.min(c.bh));
            for y in 0..c.bh {
                let src_row = y.min(rh.checked_sub(1)?);
                for x in 0..c.bw {
                    if x >= rw || y >= rh {
                        c.plane[y * c.bw + x] = c.plane[src_row * c.bw + x.min(rw - 1)];
                    }
                }
            }
        }
    }
    Some((comps, hmax, vmax))
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::super::tests::{
        fast_luma, libjpeg_eighth, libjpeg_eighth_luma, survives_random_corruption, xorshift,
    };
    use std::path::Path;

    fn dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/jpeg/progressive")
    }

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(dir().join(name)).unwrap()
    }

    /// A scan as this test's own marker walk finds it (independent of the decoder's).
    #[derive(Debug, Clone, Copy)]
    struct ScanAt {
        /// Offset of the SOS marker, of its entropy-coded data, and of the marker after it.
        sos: usize,
        data: usize,
        end: usize,
        comps: u8,
        ss: u8,
        ah: u8,
    }

    fn scans(b: &[u8]) -> Vec<ScanAt> {
        let mut out = Vec::new();
        let mut i = 2;
        while i + 4 <= b.len() {
            assert_eq!(b[i], 0xFF, "marker expected at {i}");
            let m = b[i + 1];
            if m == 0xD9 {
                break;
            }
            let len = usize::from(b[i + 2]) << 8 | usize::from(b[i + 3]);
            if m != 0xDA {
                i += 2 + len;
                continue;
            }
            let n = b[i + 4];
            let p = i + 4 + 2 * usize::from(n) + 1;
            let data = i + 2 + len;
            let mut end = data;
            while !(b[end] == 0xFF && b[end + 1] != 0 && !(0xD0..=0xD7).contains(&b[end + 1])) {
                end += 1;
            }
            out.push(ScanAt {
                sos: i,
                data,
                end,
                comps: n,
                ss: b[p],
                ah: b[p + 2] >> 4,
            });
            i = end;
        }
        out
    }

    /// Luma bit-exact to libjpeg's 1/8 decode, at libjpeg's size.
    fn assert_luma_exact(bytes: &[u8], what: &str) {
        let fast = decode(bytes).unwrap_or_else(|| panic!("{what}: declined"));
        let (_, w, h) = libjpeg_eighth(bytes);
        assert_eq!(
            (fast.width as usize, fast.height as usize),
            (w, h),
            "{what}"
        );
        let (luma, ..) = libjpeg_eighth_luma(bytes);
        assert_eq!(fast_luma(bytes).unwrap(), luma, "{what}: luma");
    }

    /// The same coefficients as a baseline file (jpegtran's twin) give the same pixels: the
    /// planes and the output conversion are the baseline path's. Where a component's DC came
    /// in scans of its own, the blocks beyond the image were never coded (the twin has zeros
    /// there, this decoder repeats the edge), which the last output column and row may show.
    #[test]
    fn the_same_coefficients_give_the_baseline_paths_pixels() {
        let mut compared = 0;
        for entry in std::fs::read_dir(dir()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if !name.ends_with(".jpg") {
                continue;
            }
            let prog = decode(&fixture(&name)).unwrap_or_else(|| panic!("{name}: declined"));
            let base = decode(&fixture(&format!("baseline/{name}")))
                .unwrap_or_else(|| panic!("baseline/{name}: declined"));
            assert_eq!(
                (prog.width, prog.height),
                (base.width, base.height),
                "{name}"
            );
            let (w, h) = (prog.width as usize, prog.height as usize);
            let edge_may_differ = name.contains("dc-separate");
            for y in 0..h {
                for x in 0..w {
                    if edge_may_differ && (x + 1 == w || y + 1 == h) {
                        continue;
                    }
                    let i = (y * w + x) * 3;
                    assert_eq!(
                        prog.buf[i..i + 3],
                        base.buf[i..i + 3],
                        "{name}: pixel ({x}, {y})"
                    );
                }
            }
            compared += 1;
        }
        assert_eq!(compared, 11);
    }

    /// Garbage where an AC scan's entropy-coded data was (no marker in it) changes nothing:
    /// the AC scans are stepped over, not decoded. libjpeg decodes every scan and, with
    /// imgfn's warnings-are-fatal error manager, refuses the file; this decoder's 1/8 image
    /// stays the one the DC scans define (what libjpeg shows of the intact file).
    #[test]
    fn an_ac_scan_is_skipped_not_decoded() {
        let clean = fixture("pillow-p444-57x39.jpg");
        let mut garbage = clean.clone();
        let mut next = xorshift(0x2545_F491_4F6C_DD1D);
        let ac: Vec<ScanAt> = scans(&clean).into_iter().filter(|s| s.ss > 0).collect();
        assert!(ac.len() >= 3);
        for s in &ac {
            for b in &mut garbage[s.data..s.end] {
                *b = (next() as u8).min(0xFE);
            }
        }
        assert_ne!(garbage, clean);
        let fast = decode(&garbage).expect("the DC scans are intact");
        let (reference, ..) = libjpeg_eighth(&clean);
        assert_eq!(fast.buf, reference, "4:4:4: every pixel is its blocks' DC");
        assert!(
            crate::pipeline::decode::decode_jpeg_libjpeg(&garbage, 8).is_err(),
            "libjpeg reads the AC scans and finds them corrupt"
        );
    }

    /// Hostile and unusual files: declined, or decoded exactly as libjpeg does.
    #[test]
    fn hostile_variants() {
        let sep = fixture("p422-dc-separate-sa-99x67.jpg");
        let sc = scans(&sep);
        let eoi = [0xFF, 0xD9];
        let dc: Vec<&ScanAt> = sc.iter().filter(|s| s.ss == 0).collect();
        assert_eq!(
            dc.iter().map(|s| (s.comps, s.ah)).collect::<Vec<_>>(),
            [(1, 0), (1, 0), (1, 0), (1, 2), (2, 2), (3, 1)]
        );

        // Cut after the DC first scans, with or without EOI: no AC scan, so libjpeg's block
        // smoothing would change the DC values: declined.
        let cut = sc[3].sos;
        assert!(decode(&sep[..cut]).is_none());
        assert!(decode(&[&sep[..cut], &eoi[..]].concat()).is_none());
        // EOI before Cr's DC scan; a truncated DC scan.
        assert!(decode(&[&sep[..sc[2].sos], &eoi[..]].concat()).is_none());
        assert!(decode(&[&sep[..sc[0].end - 10], &eoi[..]].concat()).is_none());
        // Cut anywhere: never a panic.
        for cut in (0..sep.len()).step_by(7) {
            let _ = decode(&sep[..cut]);
        }

        // Without its refinement scans the DC lacks its low bits, in libjpeg too.
        let (r1, r2) = (dc[3], dc[5]);
        let unrefined = [&sep[..r1.sos], &sep[r1.end..r2.sos], &sep[r2.end..]].concat();
        assert_luma_exact(&unrefined, "refinement scans removed");
        assert_ne!(decode(&unrefined).unwrap().buf, decode(&sep).unwrap().buf);
        // A refinement scan without its first scan is a libjpeg warning: declined.
        let refine_first = [&sep[..sc[0].sos], &sep[r1.sos..r1.end], &sep[sc[0].sos..]].concat();
        assert!(decode(&refine_first).is_none());

        // A huge restart interval (no restart in the image) is no restart at all; one every
        // MCU without RST markers is a corrupt stream.
        let plain = fixture("pillow-p420-95x63.jpg");
        let first = scans(&plain)[0].sos;
        let dri = |n: u16| {
            let [hi, lo] = n.to_be_bytes();
            [
                &plain[..first],
                &[0xFF, 0xDD, 0, 4, hi, lo][..],
                &plain[first..],
            ]
            .concat()
        };
        assert_eq!(
            decode(&dri(65535)).unwrap().buf,
            decode(&plain).unwrap().buf
        );
        assert_luma_exact(&dri(65535), "DRI 65535");
        assert!(decode(&dri(1)).is_none());

        // A DQT after the first scan does not change the DC quantiser libjpeg latched there.
        let after_first = scans(&plain)[0].end;
        let mut dqt = vec![0xFF, 0xDB, 0, 67, 0];
        dqt.extend_from_slice(&[1; 64]);
        let late_dqt = [&plain[..after_first], &dqt[..], &plain[after_first..]].concat();
        assert_eq!(decode(&late_dqt).unwrap().buf, decode(&plain).unwrap().buf);
        assert_luma_exact(&late_dqt, "DQT after the first scan");

        // A header promising 60000x60000: declined before allocating for its blocks.
        let mut huge = plain.clone();
        let sof = huge.windows(2).position(|w| w == [0xFF, 0xC2]).unwrap();
        huge[sof + 5..sof + 9].copy_from_slice(&[0xEA, 0x60, 0xEA, 0x60]);
        let started = std::time::Instant::now();
        assert!(decode(&huge).is_none());
        assert!(started.elapsed() < std::time::Duration::from_millis(200));

        survives_random_corruption(&sep);
    }

    /// Every fixture's files redefine Huffman tables between scans (libjpeg optimises each
    /// progressive scan's tables); decoding them right needs the redefinitions.
    #[test]
    fn huffman_tables_are_redefined_between_scans() {
        for name in ["p420-simple-101x75.jpg", "p422-dc-separate-sa-99x67.jpg"] {
            let b = fixture(name);
            let sc = scans(&b);
            let between = (sc[0].end..sc[sc.len() - 1].sos)
                .filter(|&i| b[i] == 0xFF && b[i + 1] == 0xC4)
                .count();
            assert!(between >= 2, "{name}: {between} DHT between scans");
            assert_luma_exact(&b, name);
        }
    }
}
