//! Colour management, checked against an independent colour engine: Little CMS's
//! `transicc` (the server uses moxcms), on profiles from Debian's `colord-data` and
//! `icc-profiles-free`, which `scripts/colour-tools.sh` installs. Sources are patches of
//! flat colour, so every patch's centre is one exact source value.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::support::{decode_jpeg, decode_png, png_icc_profile, Pixels, TestServer};

/// Primaries, secondaries, greys and everyday colours (skin, sky, foliage).
const PATCHES: [[u8; 3]; 14] = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [0, 255, 255],
    [255, 0, 255],
    [255, 255, 0],
    [0, 0, 0],
    [60, 60, 60],
    [128, 128, 128],
    [230, 230, 230],
    [224, 172, 140],
    [96, 150, 210],
    [70, 120, 40],
    [180, 40, 90],
];
/// An odd patch side, so no patch edge falls on an 8-pixel block boundary.
const SIDE: u32 = 11;

fn profile_dir() -> &'static Path {
    static READY: OnceLock<PathBuf> = OnceLock::new();
    READY.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/colour-tools.sh");
        let status = Command::new(script).status().expect("run colour-tools.sh");
        assert!(status.success(), "colour-tools.sh failed: {status}");
        PathBuf::from("/usr/share/color/icc")
    })
}

fn profile(name: &str) -> Vec<u8> {
    let path = profile_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What Little CMS makes of `colours` in the profile at `name` (relative colorimetric, to
/// its built-in sRGB), rounded and clipped to 8 bits. Gray profiles take one value each.
fn reference(name: &str, colours: &[[u8; 3]], gray: bool) -> Vec<[u8; 3]> {
    let input: String = colours
        .iter()
        .map(|c| match gray {
            true => format!("{}\n", c[0]),
            false => format!("{} {} {}\n", c[0], c[1], c[2]),
        })
        .collect();
    transicc(name, &input, colours.len())
}

/// The same for CMYK inks (0 = no ink), which transicc reads as percentages.
fn reference_cmyk(name: &str, inks: &[[u8; 4]]) -> Vec<[u8; 3]> {
    let percent = |v: u8| f64::from(v) * 100.0 / 255.0;
    let input: String = inks
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {}\n",
                percent(c[0]),
                percent(c[1]),
                percent(c[2]),
                percent(c[3])
            )
        })
        .collect();
    transicc(name, &input, inks.len())
}

fn transicc(name: &str, input: &str, count: usize) -> Vec<[u8; 3]> {
    let path = profile_dir().join(name);
    let mut child = Command::new("transicc")
        .args(["-n", "-t1", "-o", "*sRGB", "-i"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("transicc");
    // Written from another thread: transicc answers as it reads, and a long input would
    // fill both pipes.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().expect("transicc output");
    writer.join().unwrap().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let values: Vec<[u8; 3]> = text
        .lines()
        .filter_map(|line| {
            let v: Vec<f64> = line
                .split_whitespace()
                .map(|t| t.parse::<f64>())
                .collect::<Result<_, _>>()
                .ok()?;
            (v.len() == 3).then(|| to_u8(&v))
        })
        .collect();
    assert_eq!(values.len(), count, "transicc said: {text}");
    values
}

/// A Little CMS value (unbounded, fractional) as an 8-bit sample.
fn to_u8(v: &[f64]) -> [u8; 3] {
    [0, 1, 2].map(|i| v[i].round().clamp(0.0, 255.0) as u8)
}

/// RGB pixels of the patches in a row, each SIDE×SIDE.
fn patch_pixels(patches: &[[u8; 3]]) -> (u32, u32, Vec<u8>) {
    let (w, h) = (SIDE * patches.len() as u32, SIDE);
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for _ in 0..h {
        for x in 0..w {
            pixels.extend_from_slice(&patches[(x / SIDE) as usize]);
        }
    }
    (w, h, pixels)
}

/// The patches as an 8-bit PNG with an `iCCP` profile, or with `tag` adding other colour
/// chunks to its header.
fn patch_png(
    patches: &[[u8; 3]],
    gray: bool,
    icc: Option<Vec<u8>>,
    tag: impl FnOnce(&mut png::Encoder<'static, &mut Vec<u8>>),
) -> Vec<u8> {
    let (w, h, rgb) = patch_pixels(patches);
    let mut out = Vec::new();
    {
        let mut info = png::Info::with_size(w, h);
        info.icc_profile = icc.map(std::borrow::Cow::Owned);
        let mut encoder = png::Encoder::with_info(&mut out, info).unwrap();
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_color(if gray {
            png::ColorType::Grayscale
        } else {
            png::ColorType::Rgb
        });
        tag(&mut encoder);
        let mut writer = encoder.write_header().unwrap();
        let data: Vec<u8> = if gray {
            rgb.chunks(3).map(|p| p[0]).collect()
        } else {
            rgb
        };
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
    }
    out
}

fn icc_png(patches: &[[u8; 3]], gray: bool, icc: Vec<u8>) -> Vec<u8> {
    patch_png(patches, gray, Some(icc), |_| {})
}

fn patch_centres(p: &Pixels, count: usize) -> Vec<[u8; 3]> {
    (0..count as u32)
        .map(|i| {
            let px = p.at(i * SIDE + SIDE / 2, SIDE / 2);
            [px[0], px[1], px[2]]
        })
        .collect()
}

fn assert_close(got: &[[u8; 3]], want: &[[u8; 3]], tolerance: u8, what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let off = (0..3).map(|c| g[c].abs_diff(w[c])).max().unwrap();
        assert!(
            off <= tolerance,
            "{what}: patch {i} ({:?}) came out {g:?}, Little CMS says {w:?}",
            PATCHES.get(i)
        );
    }
}

/// The image as a converted PNG: a `w` equal to its width makes it a render (the stored
/// URL itself publishes the original with its profile, see `publish`).
async fn converted(server: &TestServer, id: &str, count: usize) -> Pixels {
    let width = SIDE * count as u32;
    decode_png(&server.bytes(&format!("/image/{id}.png?w={width}")).await)
}

async fn upload(server: &TestServer, bytes: Vec<u8>) -> String {
    let (status, body) = server.upload_bytes(bytes).await;
    assert!(status.is_success(), "{status} {body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Wide-gamut and odd RGB profiles, as PNG `iCCP`: the output's sRGB values are what
/// Little CMS computes, within a level or two of rounding between engines.
#[tokio::test]
async fn rgb_profiles_convert_to_srgb_as_little_cms_does() {
    let server = TestServer::start().await;
    for name in [
        "colord/AdobeRGB1998.icc",
        "colord/ProPhotoRGB.icc",
        "colord/WideGamutRGB.icc",
        "colord/AppleRGB.icc",
        "colord/BestRGB.icc",
        "colord/Bluish.icc",
        "colord/SwappedRedAndGreen.icc",
        "compatibleWithAdobeRGB1998.icc",
    ] {
        let id = upload(&server, icc_png(&PATCHES, false, profile(name))).await;
        let got = patch_centres(&converted(&server, &id, PATCHES.len()).await, PATCHES.len());
        assert_close(&got, &reference(name, &PATCHES, false), 2, name);
    }
}

/// A profile that swaps red and green: pure red pixels are meant to be seen as green.
#[tokio::test]
async fn a_profile_that_swaps_red_and_green_shows_green() {
    let server = TestServer::start().await;
    let icc = profile("colord/SwappedRedAndGreen.icc");
    let id = upload(&server, icc_png(&PATCHES[..3], false, icc)).await;
    for ext in ["png", "jpg", "webp"] {
        let bytes = server.bytes(&format!("/image/{id}.{ext}?w=33")).await;
        let out = match ext {
            "png" => decode_png(&bytes),
            "jpg" => decode_jpeg(&bytes),
            _ => rgb_of(image::load_from_memory(&bytes).unwrap()),
        };
        let red_patch = out.at(SIDE / 2, SIDE / 2);
        assert!(
            red_patch[1] > 200 && red_patch[0] < 60 && red_patch[2] < 60,
            ".{ext}: red under the swapped profile came out {red_patch:?}"
        );
    }
}

fn rgb_of(img: image::DynamicImage) -> Pixels {
    let rgba = img.to_rgba8();
    Pixels {
        width: rgba.width(),
        height: rgba.height(),
        rgba: rgba.pixels().map(|p| p.0).collect(),
    }
}

/// JPEG ICC profiles come in APP2 chunks of at most 64 KiB; a large one spans several.
/// Both, a small and a padded 150 KB profile, are read whole.
#[tokio::test]
async fn jpeg_profiles_in_one_or_several_chunks_are_honoured() {
    let server = TestServer::start().await;
    let name = "colord/AdobeRGB1998.icc";
    let small = profile(name);
    let mut large = small.clone();
    large.resize(150_000, 0);
    large[..4].copy_from_slice(&150_000u32.to_be_bytes()); // the header's profile size
    for icc in [small, large] {
        let (w, h, rgb) = patch_pixels(&PATCHES);
        let mut jpeg = Vec::new();
        let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 100);
        image::ImageEncoder::set_icc_profile(&mut encoder, icc.clone()).unwrap();
        image::ImageEncoder::write_image(encoder, &rgb, w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        let chunks = jpeg.windows(12).filter(|w| w == b"ICC_PROFILE\0").count();
        assert_eq!(chunks, icc.len().div_ceil(65519));
        // The source's own decoded values (by an independent decoder) are the input.
        let source = patch_centres(&decode_jpeg(&jpeg), PATCHES.len());
        let id = upload(&server, jpeg).await;
        let got = patch_centres(&converted(&server, &id, PATCHES.len()).await, PATCHES.len());
        let what = format!("JPEG with a {} byte profile", icc.len());
        // Two JPEG decoders' IDCTs differ by a level or two before the conversion.
        assert_close(&got, &reference(name, &source, false), 3, &what);
    }
}

/// Gray images with a gray profile.
#[tokio::test]
async fn gray_profiles_are_honoured() {
    let server = TestServer::start().await;
    let grays: Vec<[u8; 3]> = [0u8, 30, 64, 100, 128, 160, 200, 255]
        .iter()
        .map(|&g| [g, g, g])
        .collect();
    let name = "Gray.icc";
    let id = upload(&server, icc_png(&grays, true, profile(name))).await;
    let got = patch_centres(&converted(&server, &id, grays.len()).await, grays.len());
    let want = reference(name, &grays, true);
    assert_ne!(want, grays, "the profile should not be sRGB gray");
    assert_close(&got, &want, 2, name);
}

/// The sRGB tone curve, from linear light (the formula of IEC 61966-2-1, not a CMS).
fn srgb_encode(linear: f64) -> u8 {
    let l = linear.clamp(0.0, 1.0);
    let v = if l <= 0.003_130_8 {
        12.92 * l
    } else {
        1.055 * l.powf(1.0 / 2.4) - 0.055
    };
    (v * 255.0).round() as u8
}

fn srgb_decode(v: u8) -> f64 {
    let v = f64::from(v) / 255.0;
    if v <= 0.040_45 {
        v / 12.92
    } else {
        ((v + 0.055) / 1.055).powf(2.4)
    }
}

/// PNG colour chunks without an ICC profile: `gAMA` alone, `gAMA` + `cHRM`, and `cICP`
/// (Display P3), against the published formulas and matrices.
#[tokio::test]
async fn png_gamma_chromaticities_and_cicp_are_honoured() {
    let server = TestServer::start().await;

    // Linear light (gAMA 1.0) with the sRGB primaries: only the tone curve changes.
    let id = upload(
        &server,
        patch_png(&PATCHES, false, None, |e| {
            e.set_source_gamma(png::ScaledFloat::new(1.0));
        }),
    )
    .await;
    let got = patch_centres(&converted(&server, &id, PATCHES.len()).await, PATCHES.len());
    let want: Vec<[u8; 3]> = PATCHES
        .iter()
        .map(|c| c.map(|v| srgb_encode(f64::from(v) / 255.0)))
        .collect();
    assert_close(&got, &want, 1, "gAMA 1.0");

    // gAMA 1/2.2 with Adobe RGB's chromaticities is Adobe RGB (1998) within rounding.
    let id = upload(
        &server,
        patch_png(&PATCHES, false, None, |e| {
            e.set_source_gamma(png::ScaledFloat::new(1.0 / 2.2));
            e.set_source_chromaticities(png::SourceChromaticities::new(
                (0.3127, 0.3290),
                (0.64, 0.33),
                (0.21, 0.71),
                (0.15, 0.06),
            ));
        }),
    )
    .await;
    let got = patch_centres(&converted(&server, &id, PATCHES.len()).await, PATCHES.len());
    assert_close(
        &got,
        &reference("colord/AdobeRGB1998.icc", &PATCHES, false),
        2,
        "gAMA + cHRM",
    );

    // cICP 12/13/0/1: Display P3 primaries, sRGB transfer, full range.
    let (w, h, rgb) = patch_pixels(&PATCHES);
    let mut p3 = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut p3, w, h);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        writer
            .write_chunk(png::chunk::ChunkType(*b"cICP"), &[12, 13, 0, 1])
            .unwrap();
        writer.write_image_data(&rgb).unwrap();
    }
    let id = upload(&server, p3).await;
    let got = patch_centres(&converted(&server, &id, PATCHES.len()).await, PATCHES.len());
    // Linear Display P3 → linear sRGB (both D65), then the sRGB curve.
    const P3_TO_SRGB: [[f64; 3]; 3] = [
        [1.224_940, -0.224_940, 0.0],
        [-0.042_057, 1.042_057, 0.0],
        [-0.019_638, -0.078_636, 1.098_274],
    ];
    let want: Vec<[u8; 3]> = PATCHES
        .iter()
        .map(|c| {
            let lin = c.map(srgb_decode);
            [0, 1, 2]
                .map(|row| srgb_encode((0..3).map(|k| P3_TO_SRGB[row][k] * lin[k]).sum::<f64>()))
        })
        .collect();
    assert_close(&got, &want, 2, "cICP Display P3");
}

/// `color=keep`: the pixels stay as stored and the profile goes with them, in every
/// output that can carry one; `color=srgb` is the default spelled out.
#[tokio::test]
async fn color_keep_embeds_the_source_profile_instead_of_converting() {
    let server = TestServer::start().await;
    let icc = profile("colord/AdobeRGB1998.icc");
    let id = upload(&server, icc_png(&PATCHES, false, icc.clone())).await;

    let kept = server.bytes(&format!("/image/{id}.png?color=keep")).await;
    assert!(
        png_icc_profile(&kept) == Some(icc.clone()),
        "the profile is kept"
    );
    let got = patch_centres(&decode_png(&kept), PATCHES.len());
    assert_eq!(got, PATCHES.to_vec(), "kept pixels are the source's");

    let jpeg = server
        .bytes(&format!("/image/{id}/color_keep,q_95.jpg"))
        .await;
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(&jpeg));
    decoder.decode().unwrap();
    assert!(
        decoder.icc_profile() == Some(icc.clone()),
        "the JPEG keeps the profile"
    );

    let webp = server.bytes(&format!("/image/{id}.webp?color=keep")).await;
    let mut decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(&webp)).unwrap();
    let embedded = image::ImageDecoder::icc_profile(&mut decoder).unwrap();
    assert!(embedded == Some(icc.clone()), "the WebP keeps the profile");
    assert!(
        webp::Decoder::new(&webp).decode().is_some(),
        "libwebp reads it"
    );

    // Default and explicit sRGB agree and carry no profile; formats that cannot carry one
    // are converted even when asked to keep.
    let srgb = server
        .bytes(&format!("/image/{id}.png?w=154&color=srgb"))
        .await;
    assert_eq!(srgb, server.bytes(&format!("/image/{id}.png?w=154")).await);
    assert!(png_icc_profile(&srgb).is_none());
    let gif = image::load_from_memory(&server.bytes(&format!("/image/{id}.gif?color=keep")).await)
        .unwrap();
    let red = gif.to_rgb8().get_pixel(SIDE / 2, SIDE / 2).0;
    let want = reference("colord/AdobeRGB1998.icc", &PATCHES[..1], false)[0];
    assert!(
        (0..3).all(|c| red[c].abs_diff(want[c]) <= 6),
        "gif {red:?} vs {want:?}"
    );
    let bad = server.get(&format!("/image/{id}.png?color=p3")).await;
    crate::support::assert_error(bad, reqwest::StatusCode::BAD_REQUEST, "bad_transform").await;
}

/// A profile that is not one (garbage in `iCCP`) is ignored as browsers ignore it.
#[tokio::test]
async fn a_broken_profile_is_ignored_not_an_error() {
    let server = TestServer::start().await;
    let garbage: Vec<u8> = (0..600u32).map(|i| (i * 37 % 251) as u8).collect();
    let id = upload(&server, icc_png(&PATCHES, false, garbage)).await;
    let got = patch_centres(
        &decode_png(&server.bytes(&format!("/image/{id}.png?w=154")).await),
        PATCHES.len(),
    );
    assert_close(&got, &PATCHES, 1, "garbage profile");
}

/// A CMYK JPEG with a CMYK profile (Ghostscript's SWOP profile, LUT-based, in three APP2
/// chunks) converts through it: its inks, read by jpeg-decoder, through Little CMS are the
/// reference; the naive formula (what a decoder without colour management shows) is not.
#[tokio::test]
async fn cmyk_jpegs_convert_through_their_profile() {
    let server = TestServer::start().await;
    let name = "ghostscript/default_cmyk.icc";
    let icc = profile(name);
    let base = crate::support::corpus("jpeg-cmyk.jpg");
    let mut jpeg = base[..2].to_vec();
    let count = icc.len().div_ceil(65519);
    for (i, chunk) in icc.chunks(65519).enumerate() {
        jpeg.extend_from_slice(&[0xFF, 0xE2]);
        jpeg.extend_from_slice(&((chunk.len() + 16) as u16).to_be_bytes());
        jpeg.extend_from_slice(b"ICC_PROFILE\0");
        jpeg.extend_from_slice(&[i as u8 + 1, count as u8]);
        jpeg.extend_from_slice(chunk);
    }
    jpeg.extend_from_slice(&base[2..]);
    let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(&base));
    let samples = decoder.decode().unwrap();
    assert_eq!(
        decoder.info().unwrap().pixel_format,
        jpeg_decoder::PixelFormat::CMYK32
    );
    // jpeg-decoder gives inks with 0 = no ink (Adobe's inversion undone).
    let inks: Vec<[u8; 4]> = samples
        .chunks(4)
        .map(|p| [p[0], p[1], p[2], p[3]])
        .collect();
    let want = reference_cmyk(name, &inks);
    let naive: Vec<[u8; 3]> = inks
        .iter()
        .map(|p| [0, 1, 2].map(|i| ((255 - u16::from(p[i])) * (255 - u16::from(p[3])) / 255) as u8))
        .collect();
    let mean = |a: &[[u8; 3]], b: &[[u8; 3]]| {
        let total: u64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (0..3).map(|c| u64::from(x[c].abs_diff(y[c]))).sum::<u64>())
            .sum();
        total as f64 / (a.len() * 3) as f64
    };
    assert!(
        mean(&naive, &want) > 5.0,
        "the profile should matter for this image"
    );
    let id = upload(&server, jpeg).await;
    let out = decode_png(&server.bytes(&format!("/image/{id}.png?w=100")).await);
    let got: Vec<[u8; 3]> = out.rgba.iter().map(|p| [p[0], p[1], p[2]]).collect();
    // Two JPEG decoders' IDCTs and two engines' LUT interpolation differ by a little.
    let diff = mean(&got, &want);
    assert!(
        diff < 2.5,
        "mean difference {diff} from Little CMS (naive: {})",
        mean(&got, &naive)
    );
}

/// JPEG XL with an ICC profile, lossless and lossy (XYB), made by libjxl's `cjxl` from the
/// profiled PNG: converted to what Little CMS makes of the source values.
#[tokio::test]
async fn jpeg_xl_with_an_icc_profile_is_converted() {
    let server = TestServer::start().await;
    for name in ["colord/AdobeRGB1998.icc", "colord/SwappedRedAndGreen.icc"] {
        let png = icc_png(&PATCHES, false, profile(name));
        let want = reference(name, &PATCHES, false);
        // Lossy files carry XYB, rendered straight to sRGB; at distance 0.3 compression
        // costs up to 5 levels (at 1, up to ~15 on saturated primaries).
        for (distance, tolerance) in [("0", 2), ("0.3", 6)] {
            let jxl = cjxl(&png, distance);
            let id = upload(&server, jxl).await;
            let got = patch_centres(&converted(&server, &id, PATCHES.len()).await, PATCHES.len());
            assert_close(
                &got,
                &want,
                tolerance,
                &format!("{name} as JPEG XL at distance {distance}"),
            );
        }
    }
}

/// `cjxl -d distance` of a PNG, through files in a temporary directory.
fn cjxl(png: &[u8], distance: &str) -> Vec<u8> {
    profile_dir(); // installs cjxl with the profiles
    let dir = std::env::temp_dir().join(format!(
        "progimage-cjxl-{}-{distance}-{:x}",
        std::process::id(),
        png.len() ^ png.iter().map(|&b| usize::from(b)).sum::<usize>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let (input, output) = (dir.join("in.png"), dir.join("out.jxl"));
    std::fs::write(&input, png).unwrap();
    let status = Command::new("cjxl")
        .arg(&input)
        .arg(&output)
        .args(["-d", distance])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("cjxl");
    assert!(status.success(), "cjxl failed: {status}");
    let jxl = std::fs::read(&output).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    jxl
}

/// An animated WebP with an ICC profile: every frame is converted. Under a profile that
/// swaps red and green, each frame comes out as the unprofiled file's with red and green
/// exchanged.
#[tokio::test]
async fn an_animated_webp_with_a_profile_converts_every_frame() {
    let server = TestServer::start().await;
    // Two opaque frames of reddish and greenish halves, by libwebp's animation encoder.
    let (w, h) = (24u32, 10u32);
    let frame = |left: [u8; 3], right: [u8; 3]| -> Vec<u8> {
        (0..w * h)
            .flat_map(|i| {
                let [r, g, b] = if i % w < w / 2 { left } else { right };
                [r, g, b, 255]
            })
            .collect()
    };
    let frames_rgba = [
        frame([200, 50, 30], [40, 180, 60]),
        frame([40, 180, 60], [220, 90, 20]),
    ];
    let config = webp::WebPConfig::new().unwrap();
    let mut encoder = webp::AnimEncoder::new(w, h, &config);
    for (i, rgba) in frames_rgba.iter().enumerate() {
        encoder.add_frame(webp::AnimFrame::from_rgba(rgba, w, h, 100 * i as i32));
    }
    let plain = encoder.try_encode().unwrap().to_vec();
    assert_eq!(&plain[12..16], b"VP8X");
    let icc = profile("colord/SwappedRedAndGreen.icc");
    // The ICCP chunk goes right after VP8X, whose flags then say it is there.
    let mut iccp = b"ICCP".to_vec();
    iccp.extend_from_slice(&(icc.len() as u32).to_le_bytes());
    iccp.extend_from_slice(&icc);
    if icc.len() % 2 == 1 {
        iccp.push(0);
    }
    let mut profiled = plain[..30].to_vec();
    profiled[20] |= 0x20;
    profiled.extend(iccp);
    profiled.extend_from_slice(&plain[30..]);
    let riff = (profiled.len() - 8) as u32;
    profiled[4..8].copy_from_slice(&riff.to_le_bytes());
    let frames = |bytes: Vec<u8>| {
        let decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(bytes)).unwrap();
        image::AnimationDecoder::into_frames(decoder)
            .collect_frames()
            .unwrap()
    };
    let ids = [
        upload(&server, plain).await,
        upload(&server, profiled).await,
    ];
    // q=100: lossy WebP at its best, so the two encodes differ by little but their inputs.
    let [a, b] = [&ids[0], &ids[1]].map(|id| format!("/image/{id}.webp?w={w}&q=100"));
    let (plain, swapped) = (
        frames(server.bytes(&a).await),
        frames(server.bytes(&b).await),
    );
    assert_eq!(plain.len(), swapped.len());
    assert!(plain.len() > 1);
    for (f, (p, s)) in plain.iter().zip(&swapped).enumerate() {
        let (mut exchanged, mut kept, mut count) = (0u64, 0u64, 0u64);
        for (p, s) in p.buffer().pixels().zip(s.buffer().pixels()) {
            if p[3] < 255 || p[0].abs_diff(p[1]) < 40 {
                continue; // only opaque pixels where red and green differ tell
            }
            exchanged += u64::from(p[0].abs_diff(s[1])) + u64::from(p[1].abs_diff(s[0]));
            kept += u64::from(p[0].abs_diff(s[0])) + u64::from(p[1].abs_diff(s[1]));
            count += 2;
        }
        assert!(count > 200, "frame {f} has too few telling pixels");
        let (exchanged, kept) = (exchanged as f64 / count as f64, kept as f64 / count as f64);
        assert!(
            exchanged < 4.0 && kept > 20.0,
            "frame {f}: red and green off by {exchanged} exchanged, {kept} as they were"
        );
    }
}
