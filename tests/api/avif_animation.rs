//! Animated AVIF (an `avis` image sequence): its frames and their timing go into gif and
//! webp outputs; other outputs show the first frame. The sequences are made here: rav1e
//! (the encoder `ravif` wraps) codes the frames as one stream, so all but the first are
//! inter frames that need the ones before them, and the test writes the ISOBMFF boxes
//! around them itself, with an alpha track when asked. The expected pixels are the ones
//! the test drew, not anything progimage decoded.

use image::AnimationDecoder;
use reqwest::StatusCode;

use crate::support::{assert_error, decode_png, TestServer};

const W: usize = 67;
const H: usize = 45;
/// Each frame's background, and how long it shows.
const FRAMES: [([u8; 3], u32); 4] = [
    ([200, 30, 30], 100),
    ([30, 180, 40], 200),
    ([40, 60, 210], 300),
    ([220, 200, 40], 400),
];
/// A white bar 8 px wide that moves 12 px right each frame (motion for inter prediction).
fn bar_x(frame: usize) -> usize {
    4 + 12 * frame
}

fn pixel(frame: usize, x: usize) -> [u8; 3] {
    if (bar_x(frame)..bar_x(frame) + 8).contains(&x) {
        [255, 255, 255]
    } else {
        FRAMES[frame].0
    }
}

/// BT.601 limited-range Y, Cb, Cr of an sRGB colour (what libavif writes by default).
fn ycbcr([r, g, b]: [u8; 3]) -> [u8; 3] {
    let (r, g, b) = (
        f64::from(r) / 255.0,
        f64::from(g) / 255.0,
        f64::from(b) / 255.0,
    );
    let y = 0.299 * r + 0.587 * g + 0.114 * b;
    let cb = (b - y) / 1.772;
    let cr = (r - y) / 1.402;
    [16.0 + 219.0 * y, 128.0 + 224.0 * cb, 128.0 + 224.0 * cr].map(|v| v.round() as u8)
}

/// Y, Cb and Cr samples of one frame, row-major (Cb and Cr empty for luma only).
type Planes = [Vec<u8>; 3];

/// Encode planes with rav1e as one stream: returns the `av1C` payload and one sample per
/// frame. With `alpha`, a luma-only stream in that range (an alpha track).
fn encode_stream(frames: &[Planes], alpha: Option<Range>) -> (Vec<u8>, Vec<Vec<u8>>) {
    let monochrome = alpha.is_some();
    use rav1e::prelude::*;
    let mut config = EncoderConfig::with_speed_preset(10);
    config.width = W;
    config.height = H;
    config.bit_depth = 8;
    config.low_latency = true; // every sample shows one frame
    config.min_key_frame_interval = 60;
    config.max_key_frame_interval = 60;
    config.quantizer = 20;
    if let Some(range) = alpha {
        config.chroma_sampling = ChromaSampling::Cs400;
        config.pixel_range = match range {
            Range::Full => PixelRange::Full,
            Range::Limited => PixelRange::Limited,
        };
    } else {
        config.chroma_sampling = ChromaSampling::Cs420;
        config.pixel_range = PixelRange::Limited;
        config.color_description = Some(ColorDescription {
            color_primaries: ColorPrimaries::BT709,
            transfer_characteristics: TransferCharacteristics::SRGB,
            matrix_coefficients: MatrixCoefficients::BT601,
        });
    }
    let mut context: Context<u8> = Config::new()
        .with_encoder_config(config)
        .with_threads(1)
        .new_context()
        .unwrap();
    let av1c = context.container_sequence_header();
    for planes in frames {
        let mut frame = context.new_frame();
        let count = if monochrome { 1 } else { 3 };
        for (i, plane) in planes.iter().take(count).enumerate() {
            let width = if i == 0 { W } else { W.div_ceil(2) };
            frame.planes[i].copy_from_raw_u8(plane, width, 1);
        }
        context.send_frame(frame).unwrap();
    }
    context.flush();
    let mut samples = Vec::new();
    loop {
        match context.receive_packet() {
            Ok(packet) => {
                let first = samples.is_empty();
                assert_eq!(
                    packet.frame_type == FrameType::KEY,
                    first,
                    "inter frames after the first"
                );
                samples.push(packet.data);
            }
            Err(EncoderStatus::Encoded) => {}
            Err(EncoderStatus::LimitReached) => break,
            Err(e) => panic!("rav1e: {e:?}"),
        }
    }
    assert_eq!(samples.len(), frames.len(), "one sample per frame");
    (av1c, samples)
}

/// How an alpha track's samples map to 0..=1: full range (0..=255, what libavif writes)
/// or limited (16..=235, as in Pillow's `star.avifs`).
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Range {
    Full,
    Limited,
}

/// Rows of the alpha track: opaque above `HALF_FROM`, half-transparent (alpha 128) down
/// to `CLEAR_FROM`, clear below.
const HALF_FROM: usize = 15;
const CLEAR_FROM: usize = 30;

/// The 4:2:0 planes of every frame, and the alpha track's luma plane per frame.
fn frame_planes(range: Range) -> (Vec<Planes>, Vec<Planes>) {
    let colour = (0..FRAMES.len())
        .map(|f| {
            let y = (0..W * H).map(|i| ycbcr(pixel(f, i % W))[0]).collect();
            let (cw, ch) = (W.div_ceil(2), H.div_ceil(2));
            let chroma = |c: usize| {
                (0..cw * ch)
                    .map(|i| ycbcr(pixel(f, 2 * (i % cw)))[c])
                    .collect()
            };
            [y, chroma(1), chroma(2)]
        })
        .collect();
    let alpha = (0..FRAMES.len())
        .map(|_| {
            let y = (0..W * H)
                .map(|i| match i / W {
                    y if y < HALF_FROM => 255u8,
                    y if y < CLEAR_FROM => 128,
                    _ => 0,
                })
                .map(|a| match range {
                    Range::Full => a,
                    Range::Limited => (16.0 + 219.0 * f64::from(a) / 255.0).round() as u8,
                })
                .collect();
            [y, Vec::new(), Vec::new()]
        })
        .collect();
    (colour, alpha)
}

fn bx(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

fn full(kind: &[u8; 4], flags: u32, payload: &[u8]) -> Vec<u8> {
    bx(kind, &[&flags.to_be_bytes()[..], payload].concat()) // version 0
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

const IDENTITY: [u32; 9] = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000];

/// One `trak`: a picture (or, with `alpha_of`, an auxiliary alpha) track whose samples
/// lie in one chunk at `offset`, each shown for its delay at a timescale of 1000.
fn track(id: u32, alpha_of: Option<u32>, av1c: &[u8], sizes: &[usize], offset: u32) -> Vec<u8> {
    let delays: Vec<u32> = FRAMES.iter().map(|f| f.1).collect();
    let duration: u32 = delays.iter().sum();
    let tkhd = full(
        b"tkhd",
        3,
        &[
            u32s(&[0, 0, id, 0, duration, 0, 0, 0, 0]),
            u32s(&IDENTITY),
            u32s(&[(W as u32) << 16, (H as u32) << 16]),
        ]
        .concat(),
    );
    let mdhd = full(
        b"mdhd",
        0,
        &[u32s(&[0, 0, 1000, duration]), vec![0x55, 0xc4, 0, 0]].concat(),
    );
    let handler: &[u8; 4] = if alpha_of.is_some() { b"auxv" } else { b"pict" };
    let hdlr = full(
        b"hdlr",
        0,
        &[&[0u8; 4][..], handler, &[0; 12], b"\0"].concat(),
    );
    let mut entry = vec![0u8; 6];
    entry.extend_from_slice(&1u16.to_be_bytes()); // data reference index
    entry.extend_from_slice(&[0; 16]);
    entry.extend_from_slice(&(W as u16).to_be_bytes());
    entry.extend_from_slice(&(H as u16).to_be_bytes());
    entry.extend_from_slice(&u32s(&[0x48_0000, 0x48_0000, 0]));
    entry.extend_from_slice(&1u16.to_be_bytes()); // frame count
    entry.extend_from_slice(&[0; 32]); // compressor name
    entry.extend_from_slice(&[0, 0x18, 0xff, 0xff]); // depth, pre-defined -1
    entry.extend_from_slice(&bx(b"av1C", av1c));
    let stsd = full(b"stsd", 0, &[u32s(&[1]), bx(b"av01", &entry)].concat());
    let stts: Vec<u32> = std::iter::once(delays.len() as u32)
        .chain(delays.iter().flat_map(|&d| [1, d]))
        .collect();
    let stsz: Vec<u32> = [0, sizes.len() as u32]
        .into_iter()
        .chain(sizes.iter().map(|&s| s as u32))
        .collect();
    let stbl = bx(
        b"stbl",
        &[
            stsd,
            full(b"stts", 0, &u32s(&stts)),
            full(b"stsc", 0, &u32s(&[1, 1, sizes.len() as u32, 1])),
            full(b"stsz", 0, &u32s(&stsz)),
            full(b"stco", 0, &u32s(&[1, offset])),
        ]
        .concat(),
    );
    let dinf = bx(
        b"dinf",
        &full(b"dref", 0, &[u32s(&[1]), full(b"url ", 1, &[])].concat()),
    );
    let minf = bx(b"minf", &[full(b"vmhd", 1, &[0; 8]), dinf, stbl].concat());
    let mdia = bx(b"mdia", &[mdhd, hdlr, minf].concat());
    let tref = match alpha_of {
        Some(colour) => bx(b"tref", &bx(b"auxl", &u32s(&[colour]))),
        None => Vec::new(),
    };
    bx(b"trak", &[tkhd, tref, mdia].concat())
}

/// A whole `avis` file: ftyp, moov, then one mdat holding the colour samples and, after
/// them, the alpha samples.
pub(crate) fn sequence(alpha: Option<Range>) -> Vec<u8> {
    let (colour_planes, alpha_planes) = frame_planes(alpha.unwrap_or(Range::Full));
    let (colour_config, colour) = encode_stream(&colour_planes, None);
    let alpha = alpha.map(|range| encode_stream(&alpha_planes, Some(range)));
    let ftyp = bx(b"ftyp", b"avis\0\0\0\0avismsf1miafMA1B");
    let sizes = |samples: &[Vec<u8>]| samples.iter().map(Vec::len).collect::<Vec<_>>();
    let moov = |data_at: u32| {
        let colour_len: usize = colour.iter().map(Vec::len).sum();
        let mvhd = full(
            b"mvhd",
            0,
            &[
                u32s(&[0, 0, 1000, 1000, 0x10000]),
                vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                u32s(&IDENTITY),
                vec![0; 24],
                u32s(&[3]),
            ]
            .concat(),
        );
        let mut boxes = mvhd;
        boxes.extend(track(1, None, &colour_config, &sizes(&colour), data_at));
        if let Some((config, samples)) = &alpha {
            let at = data_at + colour_len as u32;
            boxes.extend(track(2, Some(1), config, &sizes(samples), at));
        }
        bx(b"moov", &boxes)
    };
    let data_at = (ftyp.len() + moov(0).len() + 8) as u32;
    let mut data: Vec<u8> = colour.concat();
    if let Some((_, samples)) = &alpha {
        data.extend(samples.concat());
    }
    [ftyp, moov(data_at), bx(b"mdat", &data)].concat()
}

fn near(got: [u8; 4], want: [u8; 3], what: &str) {
    let off = (0..3).map(|c| got[c].abs_diff(want[c])).max().unwrap();
    assert!(off <= 12, "{what}: got {got:?}, drew {want:?}");
}

/// Every frame of a GIF, full canvas, as RGBA rows, with its delay in ms.
fn gif_frames(bytes: &[u8]) -> Vec<(Vec<u8>, u32)> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options.read_info(bytes).unwrap();
    let mut frames = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        assert_eq!(
            (frame.left, frame.top),
            (0, 0),
            "progimage writes whole frames"
        );
        frames.push((frame.buffer.to_vec(), u32::from(frame.delay) * 10));
    }
    frames
}

fn at(rgba: &[u8], width: usize, x: usize, y: usize) -> [u8; 4] {
    let i = 4 * (y * width + x);
    [rgba[i], rgba[i + 1], rgba[i + 2], rgba[i + 3]]
}

#[tokio::test]
async fn an_animated_avif_keeps_its_frames_and_timing_into_gif_and_webp() {
    let server = TestServer::start().await;
    let (status, body) = server.upload_bytes(sequence(None)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["format"], "avif");
    assert_eq!(
        (body["width"].as_u64(), body["height"].as_u64()),
        (Some(67), Some(45))
    );
    let id = body["id"].as_str().unwrap();

    let gif = gif_frames(&server.bytes(&format!("/image/{id}.gif")).await);
    assert_eq!(gif.len(), FRAMES.len(), "every frame");
    for (f, (rgba, delay)) in gif.iter().enumerate() {
        assert_eq!(*delay, FRAMES[f].1, "frame {f}'s delay");
        near(
            at(rgba, W, 60, 30),
            FRAMES[f].0,
            &format!("frame {f}'s background"),
        );
        near(
            at(rgba, W, bar_x(f) + 4, 20),
            [255; 3],
            &format!("frame {f}'s bar"),
        );
        if f > 0 {
            near(
                at(rgba, W, bar_x(f - 1) + 2, 20),
                FRAMES[f].0,
                "the bar has moved on",
            );
        }
    }

    // A resize applies to every frame; image-webp reads the animation back.
    let webp = server.bytes(&format!("/image/{id}.webp?w=33")).await;
    let decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(webp)).unwrap();
    let frames = decoder.into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), FRAMES.len());
    for (f, frame) in frames.iter().enumerate() {
        assert_eq!(frame.buffer().dimensions(), (33, 22));
        let (n, d) = frame.delay().numer_denom_ms();
        assert_eq!(n / d, FRAMES[f].1);
        let p = frame.buffer().get_pixel(30, 15).0;
        near(p, FRAMES[f].0, &format!("resized frame {f}"));
    }

    // A still output is the first frame.
    let png = decode_png(&server.bytes(&format!("/image/{id}.png")).await);
    assert_eq!((png.width, png.height), (67, 45));
    near(png.at(60, 30), FRAMES[0].0, "the still is frame 0");
    near(png.at(bar_x(0) as u32 + 4, 20), [255; 3], "frame 0's bar");
}

/// The alpha track in either range: opaque, half and clear rows come out 255, 128 and 0
/// in every frame of a webp (whose alpha libwebp keeps exactly), clear or not in a gif,
/// and in the still.
#[tokio::test]
async fn an_animated_avif_with_an_alpha_track_keeps_its_transparency() {
    let server = TestServer::start().await;
    for range in [Range::Full, Range::Limited] {
        let what = if range == Range::Full {
            "full"
        } else {
            "limited"
        };
        let (status, body) = server.upload_bytes(sequence(Some(range))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["has_alpha"], true, "{body}");
        let id = body["id"].as_str().unwrap();
        let rows = [(5, 255), (HALF_FROM + 7, 128), (H - 5, 0)];
        let webp = server.bytes(&format!("/image/{id}.webp")).await;
        let decoder = image::codecs::webp::WebPDecoder::new(std::io::Cursor::new(webp)).unwrap();
        let frames = decoder.into_frames().collect_frames().unwrap();
        assert_eq!(frames.len(), FRAMES.len());
        for (f, frame) in frames.iter().enumerate() {
            for (y, want) in rows {
                let got = frame.buffer().get_pixel(60, y as u32).0[3];
                assert!(
                    got.abs_diff(want) <= 3,
                    "{what} range, frame {f}, row {y}: alpha {got}, drew {want}"
                );
            }
            near(
                frame.buffer().get_pixel(60, 5).0,
                FRAMES[f].0,
                &format!("frame {f}"),
            );
        }
        let gif = gif_frames(&server.bytes(&format!("/image/{id}.gif")).await);
        assert_eq!(gif.len(), FRAMES.len());
        for (f, (rgba, _)) in gif.iter().enumerate() {
            assert_eq!(
                at(rgba, W, 60, 5)[3],
                255,
                "{what}: frame {f} is opaque at the top"
            );
            assert_eq!(
                at(rgba, W, 60, H - 5)[3],
                0,
                "{what}: frame {f} is clear at the bottom"
            );
        }
        let png = decode_png(&server.bytes(&format!("/image/{id}.png")).await);
        for (y, want) in rows {
            let got = png.at(60, y as u32)[3];
            assert!(
                got.abs_diff(want) <= 3,
                "{what} range, the still, row {y}: {got}"
            );
        }
    }
}

/// A sequence whose sample table points past the end of the file, and one cut short in
/// its samples, are refused as corrupt; the server goes on.
#[tokio::test]
async fn a_damaged_animated_avif_is_refused() {
    let server = TestServer::start().await;
    let whole = sequence(None);
    let cut = whole[..whole.len() - 40].to_vec();
    let resp = server.post("/image", cut).await;
    assert_error(resp, StatusCode::UNPROCESSABLE_ENTITY, "corrupt_image").await;
    let (status, _) = server.upload_bytes(whole).await;
    assert_eq!(status, StatusCode::CREATED);
}
