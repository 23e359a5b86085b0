//! Metadata in image files: sources that carry a unique marker in every metadata block a
//! format has (EXIF with a GPS IFD, XMP, comments), and parsers that list the metadata
//! blocks of each output format, so a test can say that none was copied.

/// In every metadata block of the fixtures below, and nowhere else.
pub const MARKER: &str = "imgfn-metadata-marker-5c1e9a";

/// A big-endian TIFF (the body of every EXIF block): IFD0 with ImageDescription = MARKER,
/// Orientation = 1 and a GPS IFD (version 2.3, latitude ref N).
pub fn exif_tiff() -> Vec<u8> {
    let desc = format!("{MARKER}\0");
    let entry = |tag: u16, kind: u16, count: u32, value: [u8; 4]| -> Vec<u8> {
        [
            &tag.to_be_bytes()[..],
            &kind.to_be_bytes(),
            &count.to_be_bytes(),
            &value,
        ]
        .concat()
    };
    // Layout: header (8), IFD0 (2 + 3*12 + 4 = 42), GPS IFD (2 + 2*12 + 4 = 30), description.
    let gps_at: u32 = 8 + 42;
    let desc_at: u32 = gps_at + 30;
    let mut t = b"MM\0\x2a\0\0\0\x08".to_vec();
    t.extend(3u16.to_be_bytes());
    t.extend(entry(0x010E, 2, desc.len() as u32, desc_at.to_be_bytes()));
    t.extend(entry(0x0112, 3, 1, [0, 1, 0, 0]));
    t.extend(entry(0x8825, 4, 1, gps_at.to_be_bytes()));
    t.extend(0u32.to_be_bytes());
    t.extend(2u16.to_be_bytes());
    t.extend(entry(0x0000, 1, 4, [2, 3, 0, 0]));
    t.extend(entry(0x0001, 2, 2, [b'N', 0, 0, 0]));
    t.extend(0u32.to_be_bytes());
    assert_eq!(t.len() as u32, desc_at);
    t.extend(desc.as_bytes());
    t
}

fn xmp_packet() -> String {
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
         <rdf:Description xmlns:dc=\"http://purl.org/dc/elements/1.1/\" dc:description=\"{MARKER}\"/>\
         </rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>"
    )
}

/// A JPEG with EXIF (APP1), XMP (APP1) and a comment (COM), each holding MARKER.
pub fn jpeg_with_metadata(jpeg: &[u8]) -> Vec<u8> {
    assert_eq!(&jpeg[..2], b"\xFF\xD8");
    let segment = |marker: u8, body: &[u8]| -> Vec<u8> {
        let len = u16::try_from(body.len() + 2).unwrap();
        [&[0xFF, marker][..], &len.to_be_bytes(), body].concat()
    };
    let exif = [&b"Exif\0\0"[..], &exif_tiff()].concat();
    let xmp = [
        &b"http://ns.adobe.com/xap/1.0/\0"[..],
        xmp_packet().as_bytes(),
    ]
    .concat();
    [
        &jpeg[..2],
        &segment(0xE1, &exif),
        &segment(0xE1, &xmp),
        &segment(0xFE, format!("comment {MARKER}").as_bytes()),
        &jpeg[2..],
    ]
    .concat()
}

/// A PNG with eXIf, tEXt and iTXt (XMP) chunks, each holding MARKER, after its IHDR.
pub fn png_with_metadata(png: &[u8]) -> Vec<u8> {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let ihdr_end = 8 + 4 + 4 + 13 + 4;
    assert_eq!(&png[12..16], b"IHDR");
    let mut itxt = b"XML:com.adobe.xmp\0\0\0\0\0".to_vec();
    itxt.extend(xmp_packet().as_bytes());
    [
        &png[..ihdr_end],
        &png_chunk(b"eXIf", &exif_tiff()),
        &png_chunk(b"tEXt", format!("Comment\0{MARKER}").as_bytes()),
        &png_chunk(b"iTXt", &itxt),
        &png[ihdr_end..],
    ]
    .concat()
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let len = u32::try_from(data.len()).unwrap();
    let crc = crc32(&[&kind[..], data].concat());
    [&len.to_be_bytes()[..], kind, data, &crc.to_be_bytes()].concat()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// The metadata blocks of an image, by format: what a viewer or an EXIF tool would read.
/// Each entry names the block (`"APP1 Exif"`, `"eXIf"`, `"EXIF"`, `"item Exif"`...).
pub fn metadata_blocks(bytes: &[u8]) -> Vec<String> {
    if bytes.starts_with(b"\xFF\xD8") {
        jpeg_blocks(bytes)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        png_blocks(bytes)
    } else if bytes.len() > 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        webp_blocks(bytes)
    } else if bytes.len() > 12 && &bytes[4..8] == b"ftyp" {
        avif_blocks(bytes)
    } else {
        panic!("unknown format: {:02x?}", &bytes[..bytes.len().min(16)]);
    }
}

/// JPEG: every segment before the first scan but the ones that describe pixels (JFIF APP0,
/// tables, frame, restart interval).
fn jpeg_blocks(b: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 2;
    while i + 4 <= b.len() {
        assert_eq!(b[i], 0xFF, "JPEG segment expected at {i}");
        let marker = b[i + 1];
        if marker == 0xDA {
            return found;
        }
        let len = usize::from(u16::from_be_bytes([b[i + 2], b[i + 3]]));
        let body = &b[i + 4..i + 2 + len];
        let pixels_only = matches!(marker, 0xDB | 0xC4 | 0xC0..=0xC3 | 0xDD)
            || (marker == 0xE0 && body.starts_with(b"JFIF\0"));
        if !pixels_only {
            let name = match marker {
                0xE1 if body.starts_with(b"Exif\0") => "APP1 Exif".to_string(),
                0xE1 if body.starts_with(b"http://ns.adobe.com/xap") => "APP1 XMP".to_string(),
                0xFE => "COM".to_string(),
                m => format!("marker {m:02X}"),
            };
            found.push(name);
        }
        i += 2 + len;
    }
    panic!("JPEG without a scan");
}

/// PNG: text, EXIF and other ancillary metadata chunks.
fn png_blocks(b: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 8;
    while i + 8 <= b.len() {
        let len = be32(b, i);
        let kind = String::from_utf8_lossy(&b[i + 4..i + 8]).into_owned();
        if matches!(
            kind.as_str(),
            "eXIf" | "tEXt" | "zTXt" | "iTXt" | "tIME" | "iCCP"
        ) {
            found.push(kind.clone());
        }
        if kind == "IEND" {
            return found;
        }
        i += 12 + len;
    }
    panic!("PNG without IEND");
}

/// WebP: EXIF, XMP and ICCP chunks, and the VP8X flags announcing them.
fn webp_blocks(b: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut i = 12;
    while i + 8 <= b.len() {
        let kind = String::from_utf8_lossy(&b[i..i + 4]).into_owned();
        let len = le32(b, i + 4);
        if kind == "VP8X" {
            let flags = b[i + 8];
            for (bit, name) in [(0x20, "ICC flag"), (0x08, "EXIF flag"), (0x04, "XMP flag")] {
                if flags & bit != 0 {
                    found.push(name.to_string());
                }
            }
        }
        if matches!(kind.as_str(), "EXIF" | "XMP " | "ICCP") {
            found.push(kind);
        }
        i += 8 + len + (len & 1);
    }
    found
}

/// AVIF (ISOBMFF): the items of the `meta` box other than the image's own AV1 items
/// (EXIF is an `Exif` item of bare TIFF data, XMP a `mime` item), and colour profiles.
fn avif_blocks(b: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for (kind, body) in boxes(b) {
        if kind != *b"meta" {
            continue;
        }
        for (kind, body) in boxes(&body[4..]) {
            match &kind {
                b"iinf" => {
                    let version = body[0];
                    let entries = if version == 0 { &body[6..] } else { &body[8..] };
                    for (kind, infe) in boxes(entries) {
                        assert_eq!(&kind, b"infe");
                        let version = infe[0];
                        assert!(version >= 2, "infe version {version}");
                        let at = if version == 2 { 8 } else { 10 };
                        let item_type = String::from_utf8_lossy(&infe[at..at + 4]).into_owned();
                        if item_type != "av01" && item_type != "grid" {
                            found.push(format!("item {item_type}"));
                        }
                    }
                }
                b"iprp" => {
                    for (kind, ipco) in boxes(body) {
                        if &kind != b"ipco" {
                            continue;
                        }
                        for (kind, colr) in boxes(ipco) {
                            if &kind == b"colr" && matches!(&colr[..4], b"prof" | b"rICC") {
                                found.push("ICC colr".to_string());
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    found
}

/// The boxes of an ISOBMFF byte range, as (type, body).
fn boxes(mut b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let mut len = be32(b, 0);
        let kind: [u8; 4] = b[4..8].try_into().unwrap();
        let mut header = 8;
        if len == 1 {
            len = u64::from_be_bytes(b[8..16].try_into().unwrap()) as usize;
            header = 16;
        } else if len == 0 {
            len = b.len();
        }
        out.push((kind, &b[header..len]));
        b = &b[len..];
    }
    out
}

/// A WebP with an EXIF chunk (of MARKER's TIFF) around the simple (`VP8 `) WebP `webp`: what
/// an encoder that copied EXIF would write. The parsers' positive control.
pub fn webp_with_exif(webp: &[u8], width: u32, height: u32) -> Vec<u8> {
    assert_eq!(&webp[12..16], b"VP8 ", "a simple lossy WebP");
    let mut vp8x = vec![0x08u8, 0, 0, 0];
    vp8x.extend(&(width - 1).to_le_bytes()[..3]);
    vp8x.extend(&(height - 1).to_le_bytes()[..3]);
    let chunk = |kind: &[u8; 4], data: &[u8]| -> Vec<u8> {
        let mut c = [&kind[..], &(data.len() as u32).to_le_bytes()].concat();
        c.extend(data);
        if data.len() % 2 == 1 {
            c.push(0);
        }
        c
    };
    let body = [
        &b"WEBP"[..],
        &chunk(b"VP8X", &vp8x),
        &webp[12..],
        &chunk(b"EXIF", &exif_tiff()),
    ]
    .concat();
    [&b"RIFF"[..], &(body.len() as u32).to_le_bytes(), &body].concat()
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
