//! One-shot thumbnail through the imaging core, for side-by-side timing with
//! `vipsthumbnail` under hyperfine (see README "Benchmarks"):
//! `cargo run --release --example thumbnail -- IN.jpg 300 OUT.jpg`

use progimage::imaging::{self, DecodeLimits, Output, Spec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, width, output] = &args[..] else {
        return Err("usage: thumbnail IN WIDTH OUT.{jpg,webp,png,avif,svg,txt,…}".into());
    };
    let bytes = std::fs::read(input)?;
    let spec = Spec::parse_path(&format!("w_{width}"))?;
    let ext = output.rsplit('.').next().unwrap_or("jpg");
    let kind = Output::from_ext(ext).ok_or("unknown output extension")?;
    let out = imaging::render(&bytes, &DecodeLimits::for_pixels(64_000_000), &spec, kind)?;
    std::fs::write(output, out.bytes)?;
    Ok(())
}
