//! AV1 pictures decoded with `rav1d` (a Rust port of dav1d, built without its assembly so
//! the Rust toolchain alone builds it), one thread, in a forked child of the caller (the
//! work pool's thread): see [`isolated`] for why. The AVIF container around them is
//! `avif`'s business; here are only AV1 data in and YUV planes out, and their turn into
//! RGB by the picture's own matrix and range (8 bits stay 8, 10 and 12 become 16).

use std::ptr::NonNull;

use image::{DynamicImage, ImageBuffer, Luma, Rgb};
use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    Dav1dSequenceHeader, DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib as dav1d;

use super::ImagingError;

fn corrupt(what: &str) -> ImagingError {
    ImagingError::Corrupt(format!("the AVIF is malformed: {what}"))
}

/// The coded size from the AV1 sequence header (parsed in a child too: see [`isolated`]).
pub(super) fn coded_size(obus: &[u8]) -> Result<(u32, u32), ImagingError> {
    let answer = isolated(|| {
        // SAFETY: the header is plain C data, all-zero is a valid value to be overwritten.
        let mut header: Dav1dSequenceHeader = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call; rav1d only reads `obus`.
        let result = unsafe {
            dav1d::dav1d_parse_sequence_header(
                Some(NonNull::from(&mut header)),
                NonNull::new(obus.as_ptr().cast_mut()),
                obus.len(),
            )
        };
        let (w, h) = (header.max_width, header.max_height);
        (result.0 == 0 && w > 0 && h > 0)
            .then(|| [w as u32, h as u32].map(u32::to_le_bytes).concat())
    });
    match answer.as_deref() {
        Some([a, b, c, d, e, f, g, h]) => Ok((
            u32::from_le_bytes([*a, *b, *c, *d]),
            u32::from_le_bytes([*e, *f, *g, *h]),
        )),
        _ => Err(corrupt("no AV1 sequence header")),
    }
}

/// One decoded AV1 frame: its planes copied out of rav1d's buffers.
pub(super) struct Planes {
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) bits: u32,
    /// Chroma subsampling shifts (x, y); `None` for monochrome.
    chroma: Option<(usize, usize)>,
    /// Y, U, V samples, row-major, each plane `width >> sx` wide.
    planes: [Vec<u16>; 3],
    pub(super) matrix: u8,
    pub(super) full_range: bool,
    pub(super) primaries: u8,
    pub(super) transfer: u8,
}

/// Decode AV1 samples (one for a still image, a track's for a sequence) in a forked child
/// process (see [`isolated`]), every shown picture in order, each at most `frame_pixels`
/// and no more pictures than samples.
pub(super) fn decode(samples: &[&[u8]], frame_pixels: u64) -> Result<Vec<Planes>, ImagingError> {
    let answer = isolated(|| {
        let decoder = Decoder::open(frame_pixels).ok()?;
        let mut pictures = Vec::new();
        for sample in samples {
            decoder.feed(sample, &mut pictures).ok()?;
            if pictures.len() > samples.len() {
                return None;
            }
        }
        let mut out = Vec::new();
        for picture in &pictures {
            let bytes = picture.to_bytes();
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(&bytes);
        }
        Some(out)
    });
    let pictures = answer.and_then(|bytes| {
        let mut pictures = Vec::new();
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let len = usize::try_from(u64::from_le_bytes(rest.get(..8)?.try_into().ok()?)).ok()?;
            let picture = rest.get(8..8usize.checked_add(len)?)?;
            pictures.push(Planes::from_bytes(picture)?);
            rest = &rest[8 + len..];
        }
        Some(pictures)
    });
    match pictures {
        Some(pictures) if !pictures.is_empty() => Ok(pictures),
        _ => Err(corrupt("the AV1 data does not decode")),
    }
}

/// Run `work` in a forked child process and return the bytes it makes, or `None` when it
/// fails or dies. rav1d's only public API is `extern "C"`, and a panic inside it (it has
/// `unwrap`s that malformed data reaches) cannot unwind out: it aborts the process. In a
/// child that costs only the child. The child runs nothing but `work` (rav1d with one
/// thread starts no threads) and the write to its pipe, then `_exit`s without running
/// destructors, as a forked child of a threaded process must.
fn isolated(work: impl FnOnce() -> Option<Vec<u8>>) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe() writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return None;
    }
    let [read_end, write_end] = fds;
    // SAFETY: see above; the parent goes on as before.
    match unsafe { libc::fork() } {
        -1 => {
            // SAFETY: both descriptors are ours and open.
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            None
        }
        0 => {
            // A panic here aborts the child; the parent reports the file, so stay quiet:
            // no panic message, and no stderr for the runtime's own abort notice.
            std::panic::set_hook(Box::new(|_| {}));
            // SAFETY: plain descriptor calls on the child's own table.
            unsafe {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
                if null >= 0 {
                    libc::dup2(null, 2);
                }
            }
            // SAFETY: the child owns its copy of the write end.
            let mut out = unsafe { std::fs::File::from_raw_fd(write_end) };
            let status = match work() {
                Some(bytes) => i32::from(out.write_all(&bytes).is_err()),
                None => 2,
            };
            // SAFETY: ends the child at once.
            unsafe { libc::_exit(status) }
        }
        child => {
            // SAFETY: the write end is the child's now; the read end is the parent's.
            unsafe { libc::close(write_end) };
            let mut input = unsafe { std::fs::File::from_raw_fd(read_end) };
            let mut bytes = Vec::new();
            let read = input.read_to_end(&mut bytes);
            let mut status = 0;
            // SAFETY: waits for our own child, so it leaves no zombie.
            unsafe { libc::waitpid(child, &mut status, 0) };
            let clean = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            (read.is_ok() && clean).then_some(bytes)
        }
    }
}

/// A rav1d context, closed on drop.
struct Decoder(Option<Dav1dContext>);

impl Decoder {
    fn open(max_pixels: u64) -> Result<Self, ImagingError> {
        let mut settings = std::mem::MaybeUninit::<Dav1dSettings>::uninit();
        // SAFETY: dav1d_default_settings initialises every field.
        let mut settings = unsafe {
            dav1d::dav1d_default_settings(NonNull::from(&mut settings).cast());
            settings.assume_init()
        };
        settings.n_threads = 1;
        settings.max_frame_delay = 1;
        settings.frame_size_limit = u32::try_from(max_pixels).unwrap_or(u32::MAX);
        let mut context: Option<Dav1dContext> = None;
        // SAFETY: both pointers are valid for the call.
        let result = unsafe {
            dav1d::dav1d_open(
                Some(NonNull::from(&mut context)),
                Some(NonNull::from(&mut settings)),
            )
        };
        match (result.0, context) {
            (0, Some(c)) => Ok(Decoder(Some(c))),
            _ => Err(ImagingError::Corrupt(
                "the AV1 decoder could not start".into(),
            )),
        }
    }

    /// Send one sample and collect every picture it shows. rav1d answers `EAGAIN` to a
    /// send while it holds a picture to be taken, and to a take while it needs data.
    fn feed(&self, obus: &[u8], pictures: &mut Vec<Planes>) -> Result<(), ImagingError> {
        const EAGAIN: i32 = -11;
        // SAFETY: zeroed Dav1dData is the empty value rav1d expects to fill.
        let mut data: Dav1dData = unsafe { std::mem::zeroed() };
        // SAFETY: rav1d allocates `obus.len()` bytes for `data` and returns them.
        let buffer =
            unsafe { dav1d::dav1d_data_create(Some(NonNull::from(&mut data)), obus.len()) };
        if buffer.is_null() {
            return Err(corrupt("no room for the AV1 data"));
        }
        // SAFETY: `buffer` holds `obus.len()` writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(obus.as_ptr(), buffer, obus.len()) };
        let result = (|| loop {
            let mut progress = false;
            if data.sz > 0 {
                let before = data.sz;
                // SAFETY: the context is open and `data` is rav1d's own.
                let sent =
                    unsafe { dav1d::dav1d_send_data(self.0, Some(NonNull::from(&mut data))) };
                if sent.0 != 0 && sent.0 != EAGAIN {
                    return Err(corrupt("the AV1 data does not decode"));
                }
                progress |= data.sz != before;
            }
            loop {
                let mut picture = Dav1dPicture::default();
                // SAFETY: as above; `picture` receives a reference rav1d counts.
                let got =
                    unsafe { dav1d::dav1d_get_picture(self.0, Some(NonNull::from(&mut picture))) };
                match got.0 {
                    0 => {
                        let planes = copy_planes(&picture);
                        // SAFETY: the picture came from dav1d_get_picture and is released once.
                        unsafe { dav1d::dav1d_picture_unref(Some(NonNull::from(&mut picture))) };
                        pictures.push(planes?);
                        progress = true;
                    }
                    EAGAIN => break,
                    _ => return Err(corrupt("the AV1 data holds no picture")),
                }
            }
            if data.sz == 0 {
                return Ok(());
            }
            if !progress {
                return Err(corrupt("the AV1 decoder takes no more data"));
            }
        })();
        // SAFETY: releases whatever of `data` rav1d has not taken.
        unsafe { dav1d::dav1d_data_unref(Some(NonNull::from(&mut data))) };
        result
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        // SAFETY: the context was opened by dav1d_open and is closed once.
        unsafe { dav1d::dav1d_close(Some(NonNull::from(&mut self.0))) };
    }
}

fn copy_planes(picture: &Dav1dPicture) -> Result<Planes, ImagingError> {
    let (width, height) = (picture.p.w as usize, picture.p.h as usize);
    let bits = picture.p.bpc as u32;
    if width == 0 || height == 0 || !matches!(bits, 8 | 10 | 12) {
        return Err(corrupt("an AV1 picture of no size or an unknown depth"));
    }
    let chroma = match picture.p.layout {
        DAV1D_PIXEL_LAYOUT_I400 => None,
        DAV1D_PIXEL_LAYOUT_I420 => Some((1, 1)),
        DAV1D_PIXEL_LAYOUT_I422 => Some((1, 0)),
        _ => Some((0, 0)),
    };
    // SAFETY: a decoded picture always has its sequence header.
    let sequence = picture.seq_hdr.map(|s| unsafe { s.as_ref() });
    let (matrix, full_range, primaries, transfer) = sequence.map_or((1, false, 1, 13), |s| {
        (s.mtrx as u8, s.color_range != 0, s.pri as u8, s.trc as u8)
    });
    let copy =
        |index: usize, w: usize, h: usize, stride: isize| -> Result<Vec<u16>, ImagingError> {
            let base = picture.data[index]
                .ok_or_else(|| corrupt("a missing plane"))?
                .as_ptr() as *const u8;
            let mut out = Vec::with_capacity(w * h);
            for y in 0..h {
                // SAFETY: rav1d's planes hold `h` rows of `stride` bytes with `w` samples each.
                unsafe {
                    let row = base.offset(y as isize * stride);
                    if bits == 8 {
                        out.extend(
                            std::slice::from_raw_parts(row, w)
                                .iter()
                                .map(|&v| u16::from(v)),
                        );
                    } else {
                        out.extend_from_slice(std::slice::from_raw_parts(row.cast::<u16>(), w));
                    }
                }
            }
            Ok(out)
        };
    let y = copy(0, width, height, picture.stride[0])?;
    let (u, v) = match chroma {
        Some((sx, sy)) => {
            let (cw, ch) = ((width + sx) >> sx, (height + sy) >> sy);
            (
                copy(1, cw, ch, picture.stride[1])?,
                copy(2, cw, ch, picture.stride[1])?,
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(Planes {
        width,
        height,
        bits,
        chroma,
        planes: [y, u, v],
        matrix,
        full_range,
        primaries,
        transfer,
    })
}

impl Planes {
    /// The planes as bytes for the pipe from the decoding child: eight header numbers,
    /// then each plane's length and samples (bytes at 8 bits, else little-endian u16).
    fn to_bytes(&self) -> Vec<u8> {
        let chroma = match self.chroma {
            None => 0,
            Some((sx, sy)) => 1 + sx as u32 + 2 * sy as u32,
        };
        let header = [
            self.width as u32,
            self.height as u32,
            self.bits,
            chroma,
            u32::from(self.matrix),
            u32::from(self.full_range),
            u32::from(self.primaries),
            u32::from(self.transfer),
        ];
        let mut out: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
        for plane in &self.planes {
            out.extend_from_slice(&(plane.len() as u64).to_le_bytes());
            if self.bits == 8 {
                out.extend(plane.iter().map(|&v| v as u8));
            } else {
                out.extend(plane.iter().flat_map(|v| v.to_le_bytes()));
            }
        }
        out
    }

    fn from_bytes(bytes: &[u8]) -> Option<Planes> {
        let u32_at = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                bytes.get(4 * i..4 * i + 4)?.try_into().ok()?,
            ))
        };
        let header: Vec<u32> = (0..8).map(u32_at).collect::<Option<_>>()?;
        let size = if header[2] == 8 { 1 } else { 2 };
        let mut at = 32;
        let mut planes: [Vec<u16>; 3] = Default::default();
        for plane in &mut planes {
            let len = u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?) as usize;
            at += 8;
            let data = bytes.get(at..at.checked_add(len.checked_mul(size)?)?)?;
            *plane = if size == 1 {
                data.iter().map(|&v| u16::from(v)).collect()
            } else {
                data.chunks_exact(2)
                    .map(|b| u16::from_le_bytes([b[0], b[1]]))
                    .collect()
            };
            at += size * len;
        }
        let chroma = match header[3] {
            0 => None,
            c => Some((((c - 1) & 1) as usize, ((c - 1) >> 1) as usize)),
        };
        let (width, height) = (header[0] as usize, header[1] as usize);
        (planes[0].len() == width * height).then_some(Planes {
            width,
            height,
            bits: header[2],
            chroma,
            planes,
            matrix: header[4] as u8,
            full_range: header[5] != 0,
            primaries: header[6] as u8,
            transfer: header[7] as u8,
        })
    }

    /// Luma as a 0..=1 fraction, with the limited range's foot and head removed.
    fn luma(&self, v: u16) -> f32 {
        let max = ((1u32 << self.bits) - 1) as f32;
        if self.full_range {
            f32::from(v) / max
        } else {
            let scale = (1u32 << (self.bits - 8)) as f32;
            (f32::from(v) - 16.0 * scale) / (219.0 * scale)
        }
    }

    /// Chroma as -0.5..=0.5.
    fn chroma(&self, v: u16) -> f32 {
        let scale = (1u32 << (self.bits - 8)) as f32;
        let max = ((1u32 << self.bits) - 1) as f32;
        if self.full_range {
            (f32::from(v) - 128.0 * scale) / max
        } else {
            (f32::from(v) - 128.0 * scale) / (224.0 * scale)
        }
    }

    pub(super) fn to_rgb(&self) -> Result<DynamicImage, ImagingError> {
        let (w, h) = (self.width, self.height);
        let wide = self.bits > 8;
        let scale = if wide { 65535.0 } else { 255.0 };
        let Some((sx, sy)) = self.chroma else {
            let gray: Vec<u16> = self.planes[0]
                .iter()
                .map(|&v| (self.luma(v).clamp(0.0, 1.0) * scale).round() as u16)
                .collect();
            return Ok(pack_gray(w, h, gray, wide));
        };
        // Kr and Kb of the matrix (H.273); identity (0) stores G, B, R in Y, U, V.
        let (kr, kb) = match self.matrix {
            1 => (0.2126, 0.0722),
            9 | 10 => (0.2627, 0.0593),
            4 => (0.30, 0.11),
            7 => (0.212, 0.087),
            _ => (0.299, 0.114), // 5, 6 and unspecified: BT.601, as libavif assumes
        };
        let kg = 1.0 - kr - kb;
        let chroma_w = (w + sx) >> sx;
        let mut rgb = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let c = (y >> sy) * chroma_w + (x >> sx);
                let (luma, cb, cr) = (
                    self.planes[0][y * w + x],
                    self.planes[1][c],
                    self.planes[2][c],
                );
                let (r, g, b) = if self.matrix == 0 {
                    let full = |v: u16| self.luma(v);
                    (full(cr), full(luma), full(cb))
                } else {
                    let (yy, u, v) = (self.luma(luma), self.chroma(cb), self.chroma(cr));
                    let r = yy + 2.0 * (1.0 - kr) * v;
                    let b = yy + 2.0 * (1.0 - kb) * u;
                    (r, (yy - kr * r - kb * b) / kg, b)
                };
                rgb.extend([r, g, b].map(|c| (c.clamp(0.0, 1.0) * scale).round() as u16));
            }
        }
        Ok(if wide {
            DynamicImage::ImageRgb16(
                ImageBuffer::<Rgb<u16>, _>::from_raw(w as u32, h as u32, rgb)
                    .ok_or_else(|| corrupt("size"))?,
            )
        } else {
            let bytes = rgb.into_iter().map(|v| v as u8).collect();
            DynamicImage::ImageRgb8(
                ImageBuffer::<Rgb<u8>, _>::from_raw(w as u32, h as u32, bytes)
                    .ok_or_else(|| corrupt("size"))?,
            )
        })
    }
}

fn pack_gray(w: usize, h: usize, gray: Vec<u16>, wide: bool) -> DynamicImage {
    let (w, h) = (w as u32, h as u32);
    if wide {
        DynamicImage::ImageLuma16(
            ImageBuffer::<Luma<u16>, _>::from_raw(w, h, gray).unwrap_or_default(),
        )
    } else {
        let bytes = gray.into_iter().map(|v| v as u8).collect();
        DynamicImage::ImageLuma8(
            ImageBuffer::<Luma<u8>, _>::from_raw(w, h, bytes).unwrap_or_default(),
        )
    }
}

/// The colour image with the alpha image's luma as its alpha channel, in the range its
/// own sequence header gives (libavif writes alpha full range, but files with limited-range
/// alpha exist: Pillow's `star.avifs`), un-premultiplied when the file says the colour is
/// premultiplied.
pub(super) fn with_alpha(
    image: DynamicImage,
    alpha: &Planes,
    premultiplied: bool,
) -> Result<DynamicImage, ImagingError> {
    let size = || corrupt("the alpha image is not the colour image's size");
    let (w, h) = (image.width(), image.height());
    if (alpha.width, alpha.height) != (w as usize, h as usize) {
        return Err(size());
    }
    let fraction = alpha.planes[0]
        .iter()
        .map(|&v| alpha.luma(v).clamp(0.0, 1.0));
    let mut out = match image {
        DynamicImage::ImageRgb8(rgb) => {
            let pixels = rgb.pixels().zip(fraction);
            let rgba = pixels.flat_map(|(p, a)| [p[0], p[1], p[2], (a * 255.0).round() as u8]);
            DynamicImage::ImageRgba8(
                image::RgbaImage::from_raw(w, h, rgba.collect()).ok_or_else(size)?,
            )
        }
        DynamicImage::ImageLuma8(gray) => {
            let pixels = gray.pixels().zip(fraction);
            let la = pixels.flat_map(|(p, a)| [p[0], (a * 255.0).round() as u8]);
            DynamicImage::ImageLumaA8(
                image::GrayAlphaImage::from_raw(w, h, la.collect()).ok_or_else(size)?,
            )
        }
        DynamicImage::ImageLuma16(gray) => {
            let pixels = gray.pixels().zip(fraction);
            let la = pixels.flat_map(|(p, a)| [p[0], (a * 65535.0).round() as u16]);
            DynamicImage::ImageLumaA16(ImageBuffer::from_raw(w, h, la.collect()).ok_or_else(size)?)
        }
        other => {
            let rgb = other.to_rgb16();
            let pixels = rgb.pixels().zip(fraction);
            let rgba = pixels.flat_map(|(p, a)| [p[0], p[1], p[2], (a * 65535.0).round() as u16]);
            DynamicImage::ImageRgba16(ImageBuffer::from_raw(w, h, rgba.collect()).ok_or_else(size)?)
        }
    };
    if premultiplied {
        super::alpha::unpremultiply(&mut out);
    }
    Ok(out)
}
