//! The one JPEG marker walker: the probe, the completeness check and the DC-only decoder all
//! read a JPEG's structure from here, so two parsers can never disagree about a file.
//!
//! It follows the rules of ITU T.81 as libjpeg applies them: SOI, EOI, RST0–RST7 and TEM carry
//! no length; exactly one frame header (SOF), with 1 to 4 components, sampling factors 1–4
//! and unique ids; every scan header (SOS) names components of that frame, once each and in
//! the order libjpeg's lookup accepts; markers inside
//! entropy-coded data are found past byte stuffing (`FF 00`) and fill bytes (`FF FF`). Where
//! libjpeg would stop with an error or a warning ("corrupt JPEG data"), this refuses the file,
//! so a file this walker accepts is one libjpeg reads the same way.
//!
//! It also answers what a decode will allocate before libjpeg starts: a progressive or
//! multi-scan file keeps a 16-bit coefficient for every sample of the image (libjpeg's "full
//! image buffer"), and every scan is a pass over it, so their count is capped.

use crate::error::{Error, Result};

/// Scans a file may have. A progressive JPEG from libjpeg, mozjpeg, Photoshop or a camera has
/// at most a few dozen (jpegtran's default script has 10); each scan is a full pass over the
/// coefficient buffer, so thousands of empty scans are a cheap way to burn seconds (libjpeg-
/// turbo's `djpeg -maxscans` exists for the same reason).
pub const MAX_SCANS: u32 = 100;

/// One component of the frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Component {
    pub id: u8,
    /// Horizontal and vertical sampling factors (1..=4).
    pub h: u8,
    pub v: u8,
    /// Quantisation table selector (0..=3).
    pub tq: u8,
}

/// The frame header (SOFn).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The SOF marker's code (0xC0 baseline, 0xC1 extended, 0xC2 progressive, ...).
    pub marker: u8,
    pub precision: u8,
    pub width: u16,
    pub height: u16,
    pub components: Vec<Component>,
}

impl Frame {
    pub fn progressive(&self) -> bool {
        matches!(self.marker, 0xC2 | 0xC6 | 0xCA | 0xCE)
    }

    pub fn arithmetic(&self) -> bool {
        self.marker >= 0xC8
    }

    pub fn max_sampling(&self) -> (u8, u8) {
        let h = self.components.iter().map(|c| c.h).max().unwrap_or(1);
        let v = self.components.iter().map(|c| c.v).max().unwrap_or(1);
        (h, v)
    }
}

/// A marker segment before the first scan, in file order (tables, restart interval, APPn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub marker: u8,
    /// The payload, after the two length bytes.
    pub data: &'a [u8],
}

/// Everything imgfn reads from a JPEG's structure, without decoding a pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegHeader<'a> {
    pub frame: Frame,
    /// Segments before the first scan (DQT, DHT, DRI, APPn, COM...), in order.
    pub segments: Vec<Segment<'a>>,
    /// The first scan's header (after its length bytes).
    pub first_scan: &'a [u8],
    /// Offset of the first scan's entropy-coded data.
    pub scan_data: usize,
    /// Number of scans (SOS markers) in the file.
    pub scans: u32,
    /// An EOI marker follows the last scan (the file is not truncated).
    pub complete: bool,
    /// The payload of the first APP1 `Exif` segment, without its `Exif\0\0` prefix.
    pub exif: Option<&'a [u8]>,
    /// The Adobe APP14 colour transform flag, when present.
    pub adobe_transform: Option<u8>,
    /// Restart interval in effect for the first scan (0: none).
    pub restart_interval: u16,
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::corrupt(format!("jpeg: {what}"))
}

fn be16(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from(*b.get(i)?) << 8 | u16::from(*b.get(i + 1)?))
}

/// Is `m` a marker with no length (SOI, EOI, RSTn, TEM)?
fn standalone(m: u8) -> bool {
    matches!(m, 0xD0..=0xD9 | 0x01)
}

fn is_sof(m: u8) -> bool {
    matches!(m, 0xC0..=0xCF) && !matches!(m, 0xC4 | 0xC8 | 0xCC)
}

/// Markers with a length that may appear between scans or before the frame.
fn is_table_or_misc(m: u8) -> bool {
    matches!(m, 0xC4 | 0xCC | 0xDB | 0xDC | 0xDD | 0xE0..=0xEF | 0xFE)
}

/// The segment at `i` (which points at the length bytes): its payload and the offset after it.
fn segment(bytes: &[u8], i: usize, marker: u8) -> Result<(&[u8], usize)> {
    let len = usize::from(
        be16(bytes, i).ok_or_else(|| corrupt(format!("marker 0x{marker:02X} is truncated")))?,
    );
    if len < 2 {
        return Err(corrupt(format!("marker 0x{marker:02X} has length {len}")));
    }
    let data = bytes
        .get(i + 2..i + len)
        .ok_or_else(|| corrupt(format!("marker 0x{marker:02X} runs past the end")))?;
    Ok((data, i + len))
}

fn parse_frame(marker: u8, seg: &[u8]) -> Result<Frame> {
    let precision = *seg.first().ok_or_else(|| corrupt("empty frame header"))?;
    let height = be16(seg, 1).ok_or_else(|| corrupt("short frame header"))?;
    let width = be16(seg, 3).ok_or_else(|| corrupt("short frame header"))?;
    let n = usize::from(*seg.get(5).ok_or_else(|| corrupt("short frame header"))?);
    if matches!(marker, 0xC3 | 0xC7 | 0xCB | 0xCF) {
        return Err(Error::UnsupportedFormat(
            "lossless JPEG is not supported".into(),
        ));
    }
    if matches!(marker, 0xC5..=0xC7 | 0xCD..=0xCF) {
        return Err(Error::UnsupportedFormat(
            "hierarchical JPEG is not supported".into(),
        ));
    }
    if precision != 8 {
        return Err(Error::UnsupportedFormat(format!(
            "{precision}-bit JPEG is not supported (8-bit only)"
        )));
    }
    if width == 0 || height == 0 {
        // Height 0 means "given later by a DNL marker", which libjpeg does not support.
        return Err(corrupt(format!("frame size {width}x{height}")));
    }
    if !(1..=4).contains(&n) {
        return Err(corrupt(format!("{n} components")));
    }
    if seg.len() != 6 + 3 * n {
        return Err(corrupt("frame header length does not match its components"));
    }
    let mut components: Vec<Component> = Vec::with_capacity(n);
    for c in 0..n {
        let b = &seg[6 + 3 * c..9 + 3 * c];
        let comp = Component {
            id: b[0],
            h: b[1] >> 4,
            v: b[1] & 15,
            tq: b[2],
        };
        if !(1..=4).contains(&comp.h) || !(1..=4).contains(&comp.v) || comp.tq > 3 {
            return Err(corrupt(format!(
                "component {} has sampling {}x{} and table {}",
                comp.id, comp.h, comp.v, comp.tq
            )));
        }
        if components.iter().any(|o| o.id == comp.id) {
            return Err(corrupt(format!("component id {} is repeated", comp.id)));
        }
        components.push(comp);
    }
    // libjpeg's limit of blocks in one interleaved MCU.
    let blocks: u32 = components
        .iter()
        .map(|c| u32::from(c.h) * u32::from(c.v))
        .sum();
    if n > 1 && blocks > 10 {
        return Err(corrupt(format!("{blocks} blocks per MCU (at most 10)")));
    }
    Ok(Frame {
        marker,
        precision,
        width,
        height,
        components,
    })
}

/// Check the tables of a DHT or DQT segment as libjpeg reads them ("bogus Huffman table
/// definition", "bogus DQT index"), so a file this walker accepts has readable tables.
fn check_tables(marker: u8, seg: &[u8]) -> Result<()> {
    let mut p = 0;
    while p < seg.len() {
        let (class, index) = (seg[p] >> 4, seg[p] & 15);
        p += match marker {
            0xC4 => {
                let counts = seg
                    .get(p + 1..p + 17)
                    .ok_or_else(|| corrupt("a Huffman table is truncated"))?;
                let total: usize = counts.iter().map(|&c| usize::from(c)).sum();
                if class > 1 || index > 3 || total > 256 || p + 17 + total > seg.len() {
                    return Err(corrupt("a bogus Huffman table definition"));
                }
                // A DC difference has at most 15 bits ("bogus Huffman table" to libjpeg).
                if class == 0 && seg[p + 17..p + 17 + total].iter().any(|&s| s > 15) {
                    return Err(corrupt("a DC Huffman table with a symbol over 15"));
                }
                // Canonical codes must fit their lengths, and no code may be all ones.
                let mut code = 0u32;
                for (len, &count) in counts.iter().enumerate() {
                    code += u32::from(count);
                    if code >= 1 << (len + 1) {
                        return Err(corrupt("a Huffman table whose codes overflow"));
                    }
                    code <<= 1;
                }
                17 + total
            }
            _ => {
                let len = 1 + 64 * (usize::from(class) + 1);
                if class > 1 || index > 3 || p + len > seg.len() {
                    return Err(corrupt("a bogus quantisation table definition"));
                }
                len
            }
        };
    }
    Ok(())
}

/// Check a scan header against the frame.
fn check_scan(frame: &Frame, seg: &[u8]) -> Result<()> {
    let n = usize::from(*seg.first().ok_or_else(|| corrupt("empty scan header"))?);
    if !(1..=4).contains(&n) || seg.len() != 4 + 2 * n {
        return Err(corrupt("scan header length does not match its components"));
    }
    let mut seen: Vec<u8> = Vec::with_capacity(n);
    for s in 0..n {
        let id = seg[1 + 2 * s];
        let Some(index) = frame.components.iter().position(|c| c.id == id) else {
            return Err(corrupt(format!(
                "a scan names component {id}, which the frame does not have"
            )));
        };
        if seen.contains(&id) {
            return Err(corrupt(format!("a scan names component {id} twice")));
        }
        // libjpeg (jdmarker.c, get_sos) looks the scan's k-th id up only among frame
        // components k.. that no earlier scan entry took (the frame has at most 4): a scan
        // that names a component before one the frame lists earlier (frame 1, 3, 2; scan 1,
        // 2, 3) is "Invalid component ID" there, whatever the scan's kind, so it is here.
        if index < s {
            return Err(corrupt(format!(
                "a scan names component {id} out of the frame's order"
            )));
        }
        seen.push(id);
    }
    Ok(())
}

/// The component ids a (checked) scan header names.
fn scan_components(sos: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let n = usize::from(sos.first().copied().unwrap_or(0));
    (0..n).filter_map(move |s| sos.get(1 + 2 * s).copied())
}

/// Walk a JPEG's markers from SOI to EOI: the header, then every later scan and the end.
pub fn parse(bytes: &[u8]) -> Result<JpegHeader<'_>> {
    let mut header = parse_head(bytes)?;
    let mut pos = header.scan_data;
    // A sequential (non-progressive) file codes each component in exactly one scan.
    let mut coded: Vec<u8> = scan_components(header.first_scan).collect();
    // The rest: entropy-coded data, markers between scans, EOI.
    while let Some(off) = memchr::memchr(0xFF, bytes.get(pos..).unwrap_or_default()) {
        let at = pos + off;
        let Some(&m) = bytes.get(at + 1) else { break };
        pos = at + 2;
        match m {
            0x00 | 0xD0..=0xD7 | 0x01 => {}
            0xFF => pos = at + 1,
            0xD9 => {
                header.complete = true;
                break;
            }
            0xD8 => return Err(corrupt("a second SOI marker")),
            0xDA => {
                header.scans += 1;
                if header.scans > MAX_SCANS {
                    return Err(Error::limit(
                        "max_jpeg_scans",
                        format!("the JPEG has more than {MAX_SCANS} scans"),
                    ));
                }
                let (seg, next) = segment(bytes, pos, m)?;
                check_scan(&header.frame, seg)?;
                if !header.frame.progressive() {
                    for id in scan_components(seg) {
                        if coded.contains(&id) {
                            return Err(corrupt(format!("component {id} is in two scans")));
                        }
                        coded.push(id);
                    }
                }
                pos = next;
            }
            m if is_sof(m) => return Err(corrupt("a frame header after a scan")),
            0xDD => {
                let (seg, next) = segment(bytes, pos, m)?;
                if seg.len() != 2 {
                    return Err(corrupt("DRI has the wrong length"));
                }
                pos = next;
            }
            0xC4 | 0xDB => {
                let (seg, next) = segment(bytes, pos, m)?;
                check_tables(m, seg)?;
                pos = next;
            }
            m if is_table_or_misc(m) => pos = segment(bytes, pos, m)?.1,
            m => return Err(corrupt(format!("unknown marker 0x{m:02X} in scan data"))),
        }
    }
    Ok(header)
}

/// Walk a JPEG's markers up to its first scan (`scans` is 1 and `complete` false: what
/// follows is not read).
pub fn parse_head(bytes: &[u8]) -> Result<JpegHeader<'_>> {
    if bytes.get(..2) != Some(&[0xFF, 0xD8][..]) {
        return Err(corrupt("no SOI marker"));
    }
    let mut frame: Option<Frame> = None;
    let mut segments = Vec::new();
    let mut exif = None;
    let mut adobe_transform = None;
    let mut restart_interval = 0u16;
    let mut i = 2;
    // The header: segments up to the first scan.
    let (first_scan, scan_data) = loop {
        if bytes.get(i) != Some(&0xFF) {
            return Err(if i >= bytes.len() {
                corrupt("the file ends before its first scan")
            } else {
                corrupt(format!("expected a marker at byte {i}"))
            });
        }
        while bytes.get(i + 1) == Some(&0xFF) {
            i += 1; // fill bytes before a marker
        }
        let marker = *bytes
            .get(i + 1)
            .ok_or_else(|| corrupt("the file ends before its first scan"))?;
        i += 2;
        match marker {
            0xD8 => return Err(corrupt("a second SOI marker")),
            0xD9 => return Err(corrupt("EOI before any scan")),
            m if standalone(m) => continue,
            _ => {}
        }
        let (seg, next) = segment(bytes, i, marker)?;
        match marker {
            m if is_sof(m) => {
                if frame.is_some() {
                    return Err(corrupt("two frame headers"));
                }
                frame = Some(parse_frame(m, seg)?);
            }
            0xDA => {
                let f = frame
                    .as_ref()
                    .ok_or_else(|| corrupt("a scan before the frame header"))?;
                check_scan(f, seg)?;
                break (seg, next);
            }
            0xDD => {
                restart_interval = be16(seg, 0)
                    .filter(|_| seg.len() == 2)
                    .ok_or_else(|| corrupt("DRI has the wrong length"))?;
            }
            0xC4 | 0xDB => check_tables(marker, seg)?,
            0xE1 if exif.is_none() && seg.starts_with(b"Exif\0\0") => exif = Some(&seg[6..]),
            0xEE if seg.starts_with(b"Adobe") && seg.len() >= 12 => {
                adobe_transform = Some(seg[11]);
            }
            // libjpeg-turbo (mozjpeg's) warns on JFIF versions other than 1.x; it reads a
            // JFIF segment of at least 14 bytes.
            0xE0 if seg.starts_with(b"JFIF\0") && seg.len() >= 14 && seg[5] != 1 => {
                return Err(corrupt(format!("JFIF version {}", seg[5])));
            }
            m if is_table_or_misc(m) => {}
            m => return Err(corrupt(format!("unknown marker 0x{m:02X}"))),
        }
        if marker != 0xDA {
            segments.push(Segment { marker, data: seg });
        }
        i = next;
    };
    let frame = frame.ok_or_else(|| corrupt("no frame header"))?;
    // An Adobe transform that does not fit the components is a libjpeg warning.
    match (frame.components.len(), adobe_transform) {
        (3, Some(t)) if t > 1 => return Err(corrupt(format!("Adobe transform {t} on RGB/YCbCr"))),
        (4, Some(t)) if t != 0 && t != 2 => {
            return Err(corrupt(format!("Adobe transform {t} on CMYK/YCCK")))
        }
        _ => {}
    }
    Ok(JpegHeader {
        frame,
        segments,
        first_scan,
        scan_data,
        scans: 1,
        complete: false,
        exif,
        adobe_transform,
        restart_interval,
    })
}

/// The identifier of an APP2 segment carrying (a chunk of) an ICC profile (ICC.1 B.4).
const ICC_MARKER: &[u8] = b"ICC_PROFILE\0";

impl JpegHeader<'_> {
    /// The embedded ICC profile: the payloads of the APP2 `ICC_PROFILE` segments, joined in
    /// the order of their sequence numbers (1 to the count every chunk repeats). `Ok(None)`
    /// without one; `Err` (why, for the log) when the chunks disagree, one is missing or
    /// repeated, or the whole would exceed `max_bytes`: such a profile is ignored, the image
    /// is not.
    pub fn icc_profile(&self, max_bytes: usize) -> std::result::Result<Option<Vec<u8>>, String> {
        let chunks: Vec<(u8, u8, &[u8])> = self
            .segments
            .iter()
            .filter(|s| s.marker == 0xE2 && s.data.starts_with(ICC_MARKER))
            .map(|s| {
                let rest = &s.data[ICC_MARKER.len()..];
                match rest {
                    [seq, count, data @ ..] => Ok((*seq, *count, data)),
                    _ => Err("an ICC chunk without its sequence number and count".to_string()),
                }
            })
            .collect::<std::result::Result<_, _>>()?;
        let Some(&(_, count, _)) = chunks.first() else {
            return Ok(None);
        };
        if count == 0 || chunks.len() != usize::from(count) {
            return Err(format!(
                "{} ICC chunks where the first says {count}",
                chunks.len()
            ));
        }
        let total: usize = chunks.iter().map(|c| c.2.len()).sum();
        if total > max_bytes {
            return Err(format!(
                "ICC profile of {total} bytes (at most {max_bytes})"
            ));
        }
        let mut profile = Vec::with_capacity(total);
        for seq in 1..=count {
            let mut with_seq = chunks.iter().filter(|c| c.0 == seq);
            match (with_seq.next(), with_seq.next()) {
                (Some(&(_, n, data)), None) if n == count => profile.extend_from_slice(data),
                (None, _) => return Err(format!("ICC chunk {seq} of {count} is missing")),
                _ => return Err(format!("ICC chunk {seq} is repeated or miscounted")),
            }
        }
        Ok(Some(profile))
    }

    /// Does libjpeg keep the whole image's coefficients (progressive, or one scan does not
    /// hold every component)?
    pub fn full_coefficient_buffer(&self) -> bool {
        self.frame.progressive()
            || usize::from(self.first_scan.first().copied().unwrap_or(0))
                < self.frame.components.len()
    }

    /// Bytes of libjpeg's coefficient buffer (0 for a single-scan baseline file): for each
    /// component, 64 16-bit coefficients per block, blocks padded to whole MCUs.
    pub fn coefficient_bytes(&self) -> u64 {
        if !self.full_coefficient_buffer() {
            return 0;
        }
        let f = &self.frame;
        let (hmax, vmax) = f.max_sampling();
        f.components
            .iter()
            .map(|c| {
                let bw = (u64::from(f.width) * u64::from(c.h)).div_ceil(8 * u64::from(hmax));
                let bh = (u64::from(f.height) * u64::from(c.v)).div_ceil(8 * u64::from(vmax));
                bw.next_multiple_of(u64::from(c.h)) * bh.next_multiple_of(u64::from(c.v)) * 128
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
    }

    #[test]
    fn reads_real_files() {
        let h = fixture("testdata/small.jpg");
        let p = parse(&h).unwrap();
        assert!(p.complete);
        assert_eq!(p.scans, 1);
        assert!(!p.frame.progressive());
        assert_eq!(p.coefficient_bytes(), 0);

        let prog = fixture("testdata/jpeg/progressive.jpg");
        let p = parse(&prog).unwrap();
        assert!(p.frame.progressive() && p.scans > 1, "{} scans", p.scans);
        assert!(p.coefficient_bytes() > 0);
    }

    #[test]
    fn truncation_is_seen() {
        let h = fixture("testdata/small.jpg");
        assert!(!parse(&h[..h.len() - 2]).unwrap().complete);
        assert!(parse(&h[..h.len() / 2]).is_ok_and(|p| !p.complete));
        assert!(parse(&h[..20]).is_err());
    }

    /// SOI, a COM of length 4, SOF0 (16x16, one component), SOS, data, EOI.
    fn minimal(extra_before_sos: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xFE, 0x00, 0x04, 0x00, 0x01];
        v.extend_from_slice(&[0xFF, 0xC0, 0, 11, 8, 0, 16, 0, 16, 1, 1, 0x11, 0]);
        v.extend_from_slice(extra_before_sos);
        v.extend_from_slice(&[
            0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0x12, 0xFF, 0x00, 0xFF, 0xD9,
        ]);
        v
    }

    #[test]
    fn markers_without_length_have_none() {
        // RST0 and TEM between segments are skipped without reading a length after them.
        let bytes = minimal(&[0xFF, 0xD0, 0xFF, 0x01]);
        let p = parse(&bytes).unwrap();
        assert!(p.complete);
        assert_eq!((p.frame.width, p.frame.height), (16, 16));
    }

    #[test]
    fn a_second_frame_header_is_refused() {
        let sof = [0xFF, 0xC0, 0, 11, 8, 0xFF, 0xFF, 0xFF, 0xFF, 1, 1, 0x11, 0];
        assert_eq!(parse(&minimal(&sof)).unwrap_err().status(), 422);
    }

    #[test]
    fn bad_frames_are_refused() {
        let base = minimal(&[]);
        let sof_at = 8;
        for (offset, value) in [
            (sof_at + 6, 0),     // height 0 (DNL)
            (sof_at + 9, 0),     // 0 components
            (sof_at + 11, 0),    // sampling 0x0
            (sof_at + 11, 0x51), // h = 5
            (sof_at + 4, 12),    // 12-bit
        ] {
            let mut b = base.clone();
            b[offset] = value;
            let e = parse(&b).unwrap_err();
            assert!(matches!(e.status().as_u16(), 415 | 422), "{offset}: {e}");
        }
    }

    #[test]
    fn scans_are_counted_and_capped() {
        // Progressive: the same component may be in many scans.
        let mut b = minimal(&[]);
        let sof = b.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        b[sof + 1] = 0xC2;
        b.truncate(b.len() - 2);
        for _ in 0..MAX_SCANS {
            b.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0x00]);
        }
        b.extend_from_slice(&[0xFF, 0xD9]);
        let e = parse(&b).unwrap_err();
        assert_eq!(e.status(), 422);
        assert!(e.to_string().contains("max_jpeg_scans"), "{e}");
    }

    #[test]
    fn bogus_tables_are_refused() {
        // A DQT too short for its table; a DHT whose counts add up to more than 256.
        let dqt = [0xFF, 0xDB, 0x00, 0x04, 0x00, 0x01];
        assert_eq!(parse(&minimal(&dqt)).unwrap_err().status(), 422);
        let mut dht = vec![0xFF, 0xC4, 0x00, 0x13, 0x10];
        dht.extend_from_slice(&[255, 255, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(parse(&minimal(&dht)).unwrap_err().status(), 422);
        // Two codes of length 1 use up "1", which is all ones: libjpeg refuses the table.
        let mut ones = vec![0xFF, 0xC4, 0x00, 0x15, 0x10, 2];
        ones.extend_from_slice(&[0; 15]);
        ones.extend_from_slice(&[0x01, 0x02]);
        assert_eq!(parse(&minimal(&ones)).unwrap_err().status(), 422);
        // One code of length 1 ("0") is fine.
        let mut one = vec![0xFF, 0xC4, 0x00, 0x14, 0x10, 1];
        one.extend_from_slice(&[0; 15]);
        one.push(0x01);
        assert!(parse(&minimal(&one)).is_ok());
    }

    #[test]
    fn a_sequential_component_is_in_one_scan_only() {
        let mut b = minimal(&[]);
        b.truncate(b.len() - 2);
        b.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0, 0x00, 0xFF, 0xD9]);
        assert_eq!(parse(&b).unwrap_err().status(), 422);
    }

    #[test]
    fn a_scan_must_name_frame_components() {
        let mut b = minimal(&[]);
        let sos = b.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
        b[sos + 5] = 9;
        assert_eq!(parse(&b).unwrap_err().status(), 422);
    }

    /// A three-component progressive frame (ids in `frame_ids` order, 16x16, 4:4:4) with one
    /// DC scan naming `scan_ids`, then EOI. The scan's data is a single zero byte.
    fn three_components(frame_ids: [u8; 3], scan_ids: &[u8]) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8, 0xFF, 0xC2, 0, 17, 8, 0, 16, 0, 16, 3];
        for id in frame_ids {
            v.extend_from_slice(&[id, 0x11, 0]);
        }
        let n = u8::try_from(scan_ids.len()).unwrap();
        v.extend_from_slice(&[0xFF, 0xDA, 0, 6 + 2 * n, n]);
        for &id in scan_ids {
            v.extend_from_slice(&[id, 0]);
        }
        v.extend_from_slice(&[0, 0, 0, 0x00, 0xFF, 0xD9]);
        v
    }

    /// libjpeg's own header reader (which reads up to the first SOS), with no walker of ours
    /// before it: `Err` with its message. The mozjpeg crate's default error handler panics.
    fn libjpeg_reads_scan(bytes: &[u8]) -> std::result::Result<(), String> {
        std::panic::catch_unwind(|| mozjpeg::Decompress::builder().from_mem(bytes).map(|_| ()))
            .map_err(|p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            })?
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_scan_lists_components_in_the_order_libjpeg_accepts() {
        // Found by the jpeg_dc_diff fuzzer: frame 1, 3, 2 with a DC scan 1, 2, 3. jpeg_dc
        // decoded it and libjpeg refused it ("Invalid component ID 3 in SOS").
        for (frame, scan, ok) in [
            ([1, 2, 3], &[1u8, 2, 3][..], true),
            ([1, 3, 2], &[1, 2, 3][..], false),
            ([1, 2, 3], &[2, 1][..], false),
            ([1, 2, 3], &[3, 2][..], true),
            ([1, 2, 3], &[3][..], true),
            ([1, 2, 3], &[2, 3][..], true),
            ([1, 2, 3], &[1, 3][..], true),
            ([1, 2, 3], &[3, 1][..], false),
        ] {
            let b = three_components(frame, scan);
            let ours = parse(&b);
            assert_eq!(
                ours.is_ok(),
                ok,
                "frame {frame:?} scan {scan:?}: {:?}",
                ours.err()
            );
            // libjpeg's verdict on the same header: a refused order is its "Invalid component
            // ID"; an accepted one reads (tables are looked at only when decoding starts).
            let theirs = libjpeg_reads_scan(&b);
            let refused_id = theirs.as_ref().is_err_and(|e| e.contains("component ID"));
            assert_eq!(
                !refused_id, ok,
                "frame {frame:?} scan {scan:?}: libjpeg {theirs:?}"
            );
        }
    }

    /// An APP2 `ICC_PROFILE` segment: chunk `seq` of `count`.
    fn icc_chunk(seq: u8, count: u8, data: &[u8]) -> Vec<u8> {
        let len = 2 + ICC_MARKER.len() + 2 + data.len();
        let mut v = vec![0xFF, 0xE2, (len >> 8) as u8, len as u8];
        v.extend_from_slice(ICC_MARKER);
        v.extend_from_slice(&[seq, count]);
        v.extend_from_slice(data);
        v
    }

    fn icc_of(chunks: &[Vec<u8>], max: usize) -> std::result::Result<Option<Vec<u8>>, String> {
        parse(&minimal(&chunks.concat())).unwrap().icc_profile(max)
    }

    #[test]
    fn icc_chunks_are_joined_in_sequence_order() {
        assert_eq!(icc_of(&[], 100), Ok(None));
        let one = [icc_chunk(1, 1, b"whole")];
        assert_eq!(icc_of(&one, 100), Ok(Some(b"whole".to_vec())));
        // Stored out of order: joined by sequence number.
        let three = [
            icc_chunk(2, 3, b"BB"),
            icc_chunk(1, 3, b"A"),
            icc_chunk(3, 3, b"CCC"),
        ];
        assert_eq!(icc_of(&three, 100), Ok(Some(b"ABBCCC".to_vec())));
        assert!(icc_of(&three, 5).is_err(), "over the size cap");
        for broken in [
            vec![icc_chunk(1, 2, b"A")],                        // one missing
            vec![icc_chunk(1, 2, b"A"), icc_chunk(1, 2, b"A")], // repeated, 2 missing
            vec![icc_chunk(1, 2, b"A"), icc_chunk(2, 3, b"B")], // counts disagree
            vec![icc_chunk(0, 1, b"A")],                        // sequence 0
            vec![icc_chunk(1, 0, b"A")],                        // count 0
            vec![icc_chunk(1, 2, b"A"), icc_chunk(3, 2, b"B")], // out of range
            vec![vec![
                0xFF, 0xE2, 0, 14, b'I', b'C', b'C', b'_', b'P', b'R', b'O', b'F', b'I', b'L',
                b'E', 0,
            ]],
        ] {
            assert!(icc_of(&broken, 100).is_err(), "{broken:?}");
        }
    }

    #[test]
    fn coefficient_buffer_of_a_progressive_file() {
        // 10000x10000, four components 1x1: 1250 * 1250 blocks * 4 * 128 bytes.
        let mut b = vec![0xFF, 0xD8];
        b.extend_from_slice(&[0xFF, 0xC2, 0, 20, 8, 0x27, 0x10, 0x27, 0x10, 4]);
        for id in 1..=4 {
            b.extend_from_slice(&[id, 0x11, 0]);
        }
        b.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 0, 0, 0xFF, 0xD9]);
        let p = parse(&b).unwrap();
        assert_eq!(p.coefficient_bytes(), 1250 * 1250 * 4 * 128);
    }
}
