//! The HEIF container (ISO/IEC 23008-12 on ISOBMFF) of AVIF and HEIC originals: a bounded,
//! header-only parser that finds the primary image (a coded item or a `grid` of them), its
//! alpha auxiliary, its size, orientation (`irot`/`imir`) and colour (`colr`), and where the
//! coded bytes lie. Both the probe and the decoders read the file through it, so admission
//! weighs exactly what the decoder will be given.
//!
//! Nothing here trusts a length: every box and extent is checked against the bytes it lies
//! in, and lists grow only as entries are read, so nothing is allocated beyond what the file
//! itself holds. EXIF orientation inside HEIF is ignored, as libheif and browsers do: HEIF
//! readers apply `irot`/`imir` only.

use super::colour::Profile;
use super::decode::{SourceFormat, SourceInfo};
use super::orientation::Orientation;
use super::Pixels;
use crate::error::{Error, Result};
use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

/// The codec of the coded items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Av1,
    Hevc,
}

/// One coded image item: its decoder configuration and where its bitstream lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coded {
    /// `ispe`: the size the decoded frame must have.
    pub size: (u32, u32),
    /// The `av1C` or `hvcC` property's payload.
    pub config: Range<usize>,
    /// The item's extents in the file (already resolved against `idat`).
    pub extents: Vec<Range<usize>>,
}

impl Coded {
    /// The bitstream: borrowed when it is one extent, joined otherwise (at most the file).
    pub fn data<'a>(&self, file: &'a [u8]) -> Cow<'a, [u8]> {
        match self.extents.as_slice() {
            [one] => Cow::Borrowed(&file[one.clone()]),
            many => Cow::Owned(
                many.iter()
                    .flat_map(|r| &file[r.clone()])
                    .copied()
                    .collect(),
            ),
        }
    }

    pub fn config<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.config.clone()]
    }
}

/// An image: one coded item, or a grid of equally sized tiles cropped to `size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub size: (u32, u32),
    /// Tiles in raster order (one for a coded item).
    pub tiles: Vec<Coded>,
    /// Tile columns (1 for a coded item).
    pub columns: u32,
}

impl Image {
    pub fn tile_size(&self) -> (u32, u32) {
        self.tiles.first().map_or((0, 0), |t| t.size)
    }
}

/// `colr nclx`: the coding-independent code points (ITU-T H.273).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nclx {
    pub primaries: u16,
    pub transfer: u16,
    pub matrix: u16,
    pub full_range: bool,
}

/// What a HEIF file says about its primary image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heif {
    pub codec: Codec,
    pub image: Image,
    pub alpha: Option<Image>,
    /// The colour channels are premultiplied by alpha (`prem` reference).
    pub premultiplied: bool,
    pub orientation: Orientation,
    pub nclx: Option<Nclx>,
    /// `colr prof`/`rICC`: where the ICC profile lies.
    pub icc: Option<Range<usize>>,
    /// Bits per channel (`pixi`, else the decoder configuration).
    pub bit_depth: u8,
}

impl Heif {
    /// The colour description to convert from (an ICC profile wins over nclx, as in libheif).
    pub fn profile(&self, file: &[u8]) -> Option<Profile> {
        if let Some(icc) = &self.icc {
            return Some(Profile::Icc(file[icc.clone()].to_vec()));
        }
        self.nclx.map(|n| Profile::Cicp {
            primaries: u8::try_from(n.primaries).unwrap_or(2),
            transfer: u8::try_from(n.transfer).unwrap_or(2),
        })
    }

    /// Coded bytes the decoder will be given (what a decode reads, besides the pixels).
    pub fn coded_bytes(&self) -> u64 {
        let sum = |img: &Image| -> u64 {
            img.tiles
                .iter()
                .flat_map(|t| &t.extents)
                .map(|r| r.len() as u64)
                .sum()
        };
        sum(&self.image) + self.alpha.as_ref().map_or(0, sum)
    }
}

/// Which HEIF family the `ftyp` brands name, if any: `Some(true)` for AVIF.
pub fn brand_is_avif(bytes: &[u8]) -> Option<bool> {
    let size = u32::from_be_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    if bytes.get(4..8)? != b"ftyp" || size < 16 {
        return None;
    }
    let ftyp = bytes.get(8..size.min(bytes.len()).max(8))?;
    // Major brand, then (after the minor version) the compatible ones.
    let brands = ftyp
        .get(0..4)
        .into_iter()
        .chain(ftyp.get(8..).unwrap_or_default().chunks_exact(4));
    let mut heif = false;
    for b in brands {
        match b {
            b"avif" | b"avis" => return Some(true),
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1"
            | b"heif" => heif = true,
            _ => {}
        }
    }
    heif.then_some(false)
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::corrupt(format!("heif: {what}"))
}

/// A cursor over one box's payload; every read is checked.
#[derive(Clone, Copy)]
struct Reader<'a> {
    data: &'a [u8],
    /// Offset of `data` in the file.
    base: usize,
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], base: usize) -> Self {
        Reader { data, base, pos: 0 }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| corrupt("box shorter than its fields"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    /// An unsigned field of 0, 4 or 8 bytes (iloc's sizes; others are refused earlier).
    fn uint(&mut self, size: u8) -> Result<u64> {
        match size {
            0 => Ok(0),
            4 => Ok(u64::from(self.u32()?)),
            8 => self.u64(),
            _ => Err(corrupt("iloc field size")),
        }
    }
    fn id(&mut self, wide: bool) -> Result<u32> {
        if wide {
            self.u32()
        } else {
            self.u16().map(u32::from)
        }
    }
    /// FullBox header: (version, flags).
    fn full(&mut self) -> Result<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00FF_FFFF))
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }
    fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// The next child box: (type, payload reader), or `None` at the end.
    fn next_box(&mut self) -> Result<Option<([u8; 4], Reader<'a>)>> {
        if self.pos == self.data.len() {
            return Ok(None);
        }
        let start = self.pos;
        let size32 = self.u32()?;
        let kind: [u8; 4] = self.bytes(4)?.try_into().unwrap_or_default();
        let size = match size32 {
            0 => (self.data.len() - start) as u64,
            1 => self.u64()?,
            s => u64::from(s),
        };
        let header = self.pos - start;
        let end = usize::try_from(size)
            .ok()
            .filter(|&s| s >= header)
            .and_then(|s| start.checked_add(s))
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                corrupt(format!(
                    "box {} claims {size} bytes, more than its parent holds",
                    String::from_utf8_lossy(&kind)
                ))
            })?;
        let payload = Reader::new(&self.data[self.pos..end], self.base + self.pos);
        self.pos = end;
        Ok(Some((kind, payload)))
    }
}

/// Item properties imgfn reads.
#[derive(Debug, Clone)]
enum Property {
    Ispe(u32, u32),
    Irot(u8),
    /// `true`: mirror top-bottom (about the horizontal axis).
    Imir(bool),
    Pixi(u8),
    Config(Range<usize>, Option<u8>),
    Nclx(Nclx),
    Icc(Range<usize>),
    AuxAlpha,
    Other,
}

#[derive(Debug, Default)]
struct Item {
    id: u32,
    kind: [u8; 4],
    /// (construction method, extents relative to the file or `idat`).
    location: Option<(u8, Vec<Range<u64>>)>,
    /// Indices into `ipco`, in ipma order.
    props: Vec<usize>,
}

#[derive(Debug, Default)]
struct Meta {
    primary: Option<u32>,
    items: Vec<Item>,
    /// Item id to its index in `items`.
    index: HashMap<u32, usize>,
    props: Vec<Property>,
    /// (type, from, to list)
    refs: Vec<([u8; 4], u32, Vec<u32>)>,
    idat: Option<Range<usize>>,
}

/// Grid tiles at most. An iPhone's 48 MP photo is 192 tiles of 512x512; 4096 such tiles are
/// 1 GP, past any pixel limit.
const MAX_TILES: u64 = 4096;

/// Items at most: a grid's tiles, its alpha's, thumbnails, EXIF and a few more.
const MAX_ITEMS: usize = 3 * MAX_TILES as usize;

/// Parse a HEIF/AVIF file's header. The coded data is located, not read.
pub fn parse(file: &[u8]) -> Result<Heif> {
    let mut top = Reader::new(file, 0);
    let mut meta = None;
    let mut ftyp = false;
    while let Some((kind, mut body)) = top.next_box()? {
        match &kind {
            b"ftyp" => ftyp = true,
            b"meta" if meta.is_none() => meta = Some(parse_meta(&mut body)?),
            _ => {}
        }
    }
    if !ftyp {
        return Err(corrupt("no ftyp box"));
    }
    let meta = meta.ok_or_else(|| corrupt("no meta box (truncated?)"))?;
    resolve(&meta, file)
}

fn parse_meta(r: &mut Reader) -> Result<Meta> {
    r.full()?;
    let mut m = Meta::default();
    let mut handler_pict = false;
    while let Some((kind, mut b)) = r.next_box()? {
        match &kind {
            b"hdlr" => {
                b.full()?;
                b.u32()?; // pre_defined
                handler_pict = b.bytes(4)? == b"pict";
            }
            b"pitm" => {
                let (v, _) = b.full()?;
                m.primary = Some(b.id(v != 0)?);
            }
            b"iinf" => parse_iinf(&mut b, &mut m)?,
            b"iloc" => parse_iloc(&mut b, &mut m)?,
            b"iref" => parse_iref(&mut b, &mut m)?,
            b"iprp" => parse_iprp(&mut b, &mut m)?,
            b"idat" => m.idat = Some(b.offset()..b.offset() + b.data.len()),
            _ => {}
        }
    }
    if !handler_pict {
        return Err(corrupt("meta handler is not 'pict'"));
    }
    Ok(m)
}

fn item_mut(m: &mut Meta, id: u32) -> Result<&mut Item> {
    let i = match m.index.get(&id) {
        Some(&i) => i,
        None => {
            if m.items.len() >= MAX_ITEMS {
                return Err(Error::limit(
                    "max_source_pixels",
                    format!("heif: more than {MAX_ITEMS} items"),
                ));
            }
            m.items.push(Item {
                id,
                ..Item::default()
            });
            m.index.insert(id, m.items.len() - 1);
            m.items.len() - 1
        }
    };
    Ok(&mut m.items[i])
}

fn parse_iinf(r: &mut Reader, m: &mut Meta) -> Result<()> {
    let (v, _) = r.full()?;
    r.id(v != 0)?; // entry count: the children say it
    while let Some((kind, mut b)) = r.next_box()? {
        if &kind != b"infe" {
            continue;
        }
        let (v, _) = b.full()?;
        if v < 2 {
            continue; // no item type: not an image item
        }
        let id = b.id(v == 3)?;
        b.u16()?; // protection index
        let t: [u8; 4] = b.bytes(4)?.try_into().unwrap_or_default();
        item_mut(m, id)?.kind = t;
    }
    Ok(())
}

fn parse_iloc(r: &mut Reader, m: &mut Meta) -> Result<()> {
    let (v, _) = r.full()?;
    if v > 2 {
        return Err(corrupt("iloc version"));
    }
    let sizes = r.u16()?;
    let (off_size, len_size, base_size) = (
        (sizes >> 12) as u8,
        (sizes >> 8 & 15) as u8,
        (sizes >> 4 & 15) as u8,
    );
    let index_size = if v >= 1 { (sizes & 15) as u8 } else { 0 };
    for s in [off_size, len_size, base_size, index_size] {
        if !matches!(s, 0 | 4 | 8) {
            return Err(corrupt("iloc field size"));
        }
    }
    let count = if v < 2 { u32::from(r.u16()?) } else { r.u32()? };
    for _ in 0..count {
        let id = r.id(v == 2)?;
        let method = if v >= 1 { (r.u16()? & 15) as u8 } else { 0 };
        if r.u16()? != 0 {
            return Err(Error::UnsupportedFormat(
                "heif: item data in another file (data_reference_index)".into(),
            ));
        }
        let base = r.uint(base_size)?;
        let n = r.u16()?;
        let mut extents = Vec::new();
        for _ in 0..n {
            r.uint(index_size)?;
            let off = base
                .checked_add(r.uint(off_size)?)
                .ok_or_else(|| corrupt("iloc offset"))?;
            let len = r.uint(len_size)?;
            let end = off.checked_add(len).ok_or_else(|| corrupt("iloc length"))?;
            extents.push(off..end);
        }
        if method > 1 {
            return Err(Error::UnsupportedFormat(
                "heif: item construction method 2 (item offsets)".into(),
            ));
        }
        item_mut(m, id)?.location = Some((method, extents));
    }
    Ok(())
}

fn parse_iref(r: &mut Reader, m: &mut Meta) -> Result<()> {
    let (v, _) = r.full()?;
    while let Some((kind, mut b)) = r.next_box()? {
        let from = b.id(v != 0)?;
        let n = b.u16()?;
        let mut to = Vec::new();
        for _ in 0..n {
            to.push(b.id(v != 0)?);
        }
        m.refs.push((kind, from, to));
    }
    Ok(())
}

fn parse_iprp(r: &mut Reader, m: &mut Meta) -> Result<()> {
    while let Some((kind, mut b)) = r.next_box()? {
        match &kind {
            b"ipco" => {
                while let Some((kind, mut p)) = b.next_box()? {
                    m.props.push(parse_property(&kind, &mut p)?);
                }
            }
            b"ipma" => {
                let (v, flags) = b.full()?;
                let n = b.u32()?;
                for _ in 0..n {
                    let id = b.id(v >= 1)?;
                    let count = b.u8()?;
                    let mut props = Vec::new();
                    for _ in 0..count {
                        let index = if flags & 1 != 0 {
                            usize::from(b.u16()? & 0x7FFF)
                        } else {
                            usize::from(b.u8()? & 0x7F)
                        };
                        if index > 0 {
                            props.push(index - 1);
                        }
                    }
                    item_mut(m, id)?.props.extend(props);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_property(kind: &[u8; 4], p: &mut Reader) -> Result<Property> {
    Ok(match kind {
        b"ispe" => {
            p.full()?;
            Property::Ispe(p.u32()?, p.u32()?)
        }
        b"irot" => Property::Irot(p.u8()? & 3),
        // Mode 0 exchanges top and bottom, 1 left and right (ISO/IEC 23008-12:2022; libheif
        // and libavif read it so).
        b"imir" => Property::Imir(p.u8()? & 1 == 0),
        b"pixi" => {
            p.full()?;
            let n = p.u8()?;
            let depths = p.bytes(usize::from(n))?;
            Property::Pixi(depths.first().copied().unwrap_or(8))
        }
        b"av1C" => {
            let start = p.offset();
            let b = p.bytes(4)?;
            // high_bitdepth, twelve_bit
            let depth = match (b[2] >> 6 & 1, b[2] >> 5 & 1) {
                (0, _) => 8,
                (1, 0) => 10,
                _ => 12,
            };
            p.rest();
            Property::Config(start..p.offset(), Some(depth))
        }
        b"hvcC" => {
            let start = p.offset();
            p.rest();
            Property::Config(start..p.offset(), None)
        }
        b"colr" => match p.bytes(4)? {
            b"nclx" => Property::Nclx(Nclx {
                primaries: p.u16()?,
                transfer: p.u16()?,
                matrix: p.u16()?,
                full_range: p.u8()? & 0x80 != 0,
            }),
            b"prof" | b"rICC" => {
                let start = p.offset();
                p.rest();
                Property::Icc(start..p.offset())
            }
            _ => Property::Other,
        },
        b"auxC" => {
            p.full()?;
            let urn = p.rest();
            let urn = urn.split(|&c| c == 0).next().unwrap_or_default();
            if urn == b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha"
                || urn == b"urn:mpeg:hevc:2015:auxid:1"
            {
                Property::AuxAlpha
            } else {
                Property::Other
            }
        }
        _ => Property::Other,
    })
}

impl Meta {
    fn item(&self, id: u32) -> Result<&Item> {
        self.index
            .get(&id)
            .map(|&i| &self.items[i])
            .ok_or_else(|| corrupt(format!("item {id} is referenced but not declared")))
    }

    fn props<'m>(&'m self, item: &'m Item) -> impl Iterator<Item = &'m Property> + 'm {
        item.props.iter().filter_map(|&i| self.props.get(i))
    }

    fn refs_from(&self, kind: &[u8; 4], from: u32) -> impl Iterator<Item = u32> + '_ {
        let kind = *kind;
        self.refs
            .iter()
            .filter(move |(k, f, _)| *k == kind && *f == from)
            .flat_map(|(_, _, to)| to.iter().copied())
    }

    /// The item's bytes as extents of the file.
    fn extents(&self, item: &Item, file_len: usize) -> Result<Vec<Range<usize>>> {
        let (method, extents) = item
            .location
            .as_ref()
            .ok_or_else(|| corrupt(format!("item {} has no location", item.id)))?;
        let (base, limit) = match method {
            0 => (0, file_len),
            _ => {
                let idat = self
                    .idat
                    .clone()
                    .ok_or_else(|| corrupt("item data in a missing idat"))?;
                (idat.start, idat.end)
            }
        };
        let mut out = Vec::new();
        for e in extents {
            let range = usize::try_from(e.start)
                .ok()
                .zip(usize::try_from(e.end).ok())
                .and_then(|(s, end)| Some(base.checked_add(s)?..base.checked_add(end)?))
                .filter(|r| r.end <= limit)
                .ok_or_else(|| {
                    corrupt(format!(
                        "item {} lies past the end of the file (truncated?)",
                        item.id
                    ))
                })?;
            out.push(range);
        }
        if out.iter().all(|r| r.is_empty()) {
            return Err(corrupt(format!("item {} is empty", item.id)));
        }
        Ok(out)
    }

    fn ispe(&self, item: &Item) -> Result<(u32, u32)> {
        self.props(item)
            .find_map(|p| match p {
                Property::Ispe(w, h) => Some((*w, *h)),
                _ => None,
            })
            .filter(|&(w, h)| w > 0 && h > 0)
            .ok_or_else(|| corrupt(format!("item {} has no (or a zero) ispe size", item.id)))
    }

    fn coded(&self, item: &Item, file_len: usize) -> Result<Coded> {
        let config = self
            .props(item)
            .find_map(|p| match p {
                Property::Config(r, _) => Some(r.clone()),
                _ => None,
            })
            .ok_or_else(|| corrupt(format!("item {} has no decoder configuration", item.id)))?;
        Ok(Coded {
            size: self.ispe(item)?,
            config,
            extents: self.extents(item, file_len)?,
        })
    }

    /// The image `id` names: a coded item or a grid of them.
    fn image(&self, id: u32, file: &[u8]) -> Result<(Image, Codec)> {
        let item = self.item(id)?;
        if &item.kind == b"grid" {
            return self.grid(item, file);
        }
        let codec = codec_of(&item.kind)?;
        let coded = self.coded(item, file.len())?;
        let image = Image {
            size: coded.size,
            tiles: vec![coded],
            columns: 1,
        };
        Ok((image, codec))
    }

    fn grid(&self, item: &Item, file: &[u8]) -> Result<(Image, Codec)> {
        let extents = self.extents(item, file.len())?;
        let desc: Vec<u8> = extents
            .iter()
            .flat_map(|r| &file[r.clone()])
            .take(12)
            .copied()
            .collect();
        let mut r = Reader::new(&desc, 0);
        if r.u8()? != 0 {
            return Err(corrupt("grid version"));
        }
        let wide = r.u8()? & 1 != 0;
        let rows = u32::from(r.u8()?) + 1;
        let columns = u32::from(r.u8()?) + 1;
        let size = if wide {
            (r.u32()?, r.u32()?)
        } else {
            (u32::from(r.u16()?), u32::from(r.u16()?))
        };
        if size.0 == 0 || size.1 == 0 {
            return Err(corrupt("grid of zero size"));
        }
        // A grid's ispe, when present, must say what its descriptor says (two sizes of one
        // image are a parser differential).
        if let Ok(ispe) = self.ispe(item) {
            if ispe != size {
                return Err(corrupt(format!(
                    "grid ispe {}x{} differs from its descriptor {}x{}",
                    ispe.0, ispe.1, size.0, size.1
                )));
            }
        }
        let count = u64::from(rows) * u64::from(columns);
        if count > MAX_TILES {
            return Err(Error::limit(
                "max_source_pixels",
                format!("heif: a grid of {count} tiles (at most {MAX_TILES})"),
            ));
        }
        let ids: Vec<u32> = self
            .refs_from(b"dimg", item.id)
            .take(count as usize + 1)
            .collect();
        if ids.len() as u64 != count {
            return Err(corrupt(format!(
                "grid of {rows}x{columns} has {} tiles",
                ids.len()
            )));
        }
        let mut tiles = Vec::new();
        let mut codec = None;
        for id in ids {
            let tile = self.item(id)?;
            let c = codec_of(&tile.kind)?;
            if codec.is_some_and(|k| k != c) {
                return Err(corrupt("grid tiles of two codecs"));
            }
            codec = Some(c);
            let coded = self.coded(tile, file.len())?;
            if tiles.first().is_some_and(|t: &Coded| t.size != coded.size) {
                return Err(corrupt("grid tiles of different sizes"));
            }
            tiles.push(coded);
        }
        let (tw, th) = tiles[0].size;
        let covers = |n: u32, t: u32, out: u32| u64::from(n) * u64::from(t) >= u64::from(out);
        // The tiles cover the output, and the last row and column are not wholly outside it.
        let tight = |n: u32, t: u32, out: u32| u64::from(n - 1) * u64::from(t) < u64::from(out);
        let fits = covers(columns, tw, size.0)
            && covers(rows, th, size.1)
            && tight(columns, tw, size.0)
            && tight(rows, th, size.1);
        if !fits {
            return Err(corrupt(format!(
                "{rows}x{columns} tiles of {tw}x{th} do not make a {}x{} grid",
                size.0, size.1
            )));
        }
        let codec = codec.ok_or_else(|| corrupt("grid without tiles"))?;
        Ok((
            Image {
                size,
                tiles,
                columns,
            },
            codec,
        ))
    }
}

fn codec_of(kind: &[u8; 4]) -> Result<Codec> {
    match kind {
        b"av01" => Ok(Codec::Av1),
        b"hvc1" => Ok(Codec::Hevc),
        other => Err(Error::UnsupportedFormat(format!(
            "heif: image item type '{}' is not supported (av01, hvc1 and grid are)",
            String::from_utf8_lossy(other).trim_end_matches('\0')
        ))),
    }
}

fn resolve(meta: &Meta, file: &[u8]) -> Result<Heif> {
    let primary = meta
        .primary
        .ok_or_else(|| corrupt("no primary item (pitm)"))?;
    let (image, codec) = meta.image(primary, file)?;
    let item = meta.item(primary)?;
    // Colour, depth and transforms are the primary item's; a grid's colour may sit on its
    // tiles only (libheif looks there too).
    let first_tile = meta.refs_from(b"dimg", primary).next();
    let mut props: Vec<&Property> = meta.props(item).collect();
    let mut orientation = Orientation::identity();
    let (mut nclx, mut icc, mut depth) = (None, None, None);
    if let Some(tile) = first_tile.and_then(|t| meta.item(t).ok()) {
        props.extend(
            meta.props(tile)
                .filter(|p| !matches!(p, Property::Irot(_) | Property::Imir(_))),
        );
    }
    for p in props {
        match p {
            // irot turns anti-clockwise; transforms apply in ipma order.
            Property::Irot(a) => {
                let turn = Orientation::rotate((4 - u32::from(*a)) % 4 * 90).unwrap_or_default();
                orientation = orientation.then(turn);
            }
            Property::Imir(top_bottom) => {
                let m = if *top_bottom {
                    Orientation::flip_v()
                } else {
                    Orientation::flip_h()
                };
                orientation = orientation.then(m);
            }
            Property::Nclx(n) => nclx = nclx.or(Some(*n)),
            Property::Icc(r) => icc = icc.or(Some(r.clone())),
            Property::Pixi(d) => depth = depth.or(Some(*d)),
            Property::Config(_, Some(d)) => depth = depth.or(Some(*d)),
            _ => {}
        }
    }
    // The alpha auxiliary: an item whose auxl reference points at the primary.
    let mut alpha = None;
    for (kind, from, to) in &meta.refs {
        if kind != b"auxl" || !to.contains(&primary) {
            continue;
        }
        let Ok(aux) = meta.item(*from) else { continue };
        if !meta.props(aux).any(|p| matches!(p, Property::AuxAlpha)) {
            continue;
        }
        let (a, c) = meta.image(*from, file)?;
        if a.size != image.size || c != codec {
            return Err(corrupt(format!(
                "alpha {}x{} for an image of {}x{}",
                a.size.0, a.size.1, image.size.0, image.size.1
            )));
        }
        alpha = Some(a);
        break;
    }
    let premultiplied = alpha.is_some()
        && meta
            .refs
            .iter()
            .any(|(k, from, _)| k == b"prem" && *from == primary);
    Ok(Heif {
        codec,
        image,
        alpha,
        premultiplied,
        orientation,
        nclx,
        icc,
        bit_depth: depth.unwrap_or(8),
    })
}

/// Header-only facts of an AVIF or HEIC original, for admission and `fmt=json`.
pub fn probe(file: &[u8], format: SourceFormat) -> Result<SourceInfo> {
    let heif = parse(file)?;
    let tile_px = {
        let (w, h) = heif.image.tile_size();
        u64::from(w) * u64::from(h)
    };
    let decoder = match heif.codec {
        Codec::Av1 => super::avif::decoder_bytes(tile_px),
        Codec::Hevc => super::heic::decoder_bytes(&heif),
    };
    Ok(SourceInfo {
        format,
        stored: heif.image.size,
        orientation: heif.orientation,
        has_alpha: heif.alpha.is_some(),
        complete: true,
        decoder_overhead: heif.coded_bytes().saturating_add(decoder),
        decode_px_bytes: if heif.alpha.is_some() { 4 } else { 3 },
        animation: None,
    })
}

/// Decode the primary image (with its alpha) to 8-bit sRGB, unoriented: the plan applies
/// `info.orientation`, as for EXIF.
pub fn decode(file: &[u8], info: &SourceInfo) -> Result<Pixels> {
    let heif = parse(file)?;
    if heif.image.size != info.stored {
        return Err(corrupt("the file changed between probe and decode"));
    }
    let mut px = match heif.codec {
        Codec::Av1 => super::guard("avif decode", || super::avif::decode(file, &heif))?,
        Codec::Hevc => super::guard("heic decode", || super::heic::decode(file, &heif))?,
    };
    if (px.width, px.height) != heif.image.size {
        return Err(corrupt(format!(
            "decoded {}x{}, the header says {}x{}",
            px.width, px.height, heif.image.size.0, heif.image.size.1
        )));
    }
    super::colour::to_srgb(&mut px, heif.profile(file).as_ref());
    Ok(px)
}
