//! `progimage-cli`: the progimage command line. Named `progimage-cli` rather than
//! `progimage` so that it never collides with the server binary of the same workspace.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use futures_util::{stream, StreamExt, TryStreamExt};
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use progimage_client::{
    Ascii, Client, Error, Fit, Flip, Format, Gravity, Mask, Rotation, Transform, UploadOutcome,
    Uploaded,
};
use serde_json::{json, Value};

/// The command line of the progimage image service.
#[derive(Debug, Parser)]
#[command(name = "progimage-cli", version)]
struct Cli {
    /// Base URL of the server.
    #[arg(
        long,
        env = "PROGIMAGE_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,

    /// API key, sent as `Authorization: Bearer` (needed for upload and rm when the server has keys).
    #[arg(long, env = "PROGIMAGE_API_KEY", hide_env_values = true, global = true)]
    api_key: Option<String>,

    /// Key that signs variant URLs (the server's PROGIMAGE_SIGNING_KEY).
    #[arg(
        long,
        env = "PROGIMAGE_SIGNING_KEY",
        hide_env_values = true,
        global = true
    )]
    signing_key: Option<String>,

    /// Print one JSON document on stdout instead of text (no progress bar).
    #[arg(long, global = true)]
    json: bool,

    /// Seconds one request may take in all.
    #[arg(long, default_value_t = 300, global = true)]
    timeout: u64,

    /// Retries of a request answered 503 or 429 (waiting as Retry-After says).
    #[arg(long, default_value_t = 3, global = true)]
    retries: u32,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upload files, and directories recursively; only what the server lacks is sent.
    Upload {
        /// Files and directories (dot files inside directories are skipped).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Uploads in flight at once.
        #[arg(short = 'j', long, default_value_t = 4)]
        concurrency: usize,
        /// Send every body, without asking first whether the server has it.
        #[arg(long)]
        no_hash_first: bool,
    },
    /// Download an image or a variant of it.
    Get {
        /// Image id.
        id: String,
        #[command(flatten)]
        transform: TransformArgs,
        /// Where to write it (`-` for stdout); its extension gives the format unless --format does.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Print ASCII art of a stored image (by id) or of a local file (nothing is stored).
    Ascii {
        /// Image id, or the path of an image file.
        target: String,
        /// Columns.
        #[arg(long, default_value_t = 100)]
        width: u32,
        /// Light pixels get the dense characters.
        #[arg(long)]
        invert: bool,
        /// Characters from lightest to densest.
        #[arg(long)]
        charset: Option<String>,
        /// 24-bit colour: `auto` when stdout is a terminal.
        #[arg(long, value_enum, default_value_t = ColourChoice::Auto)]
        colour: ColourChoice,
    },
    /// List stored images, in id order.
    Ls {
        /// Stop after this many images.
        #[arg(long)]
        limit: Option<usize>,
        /// Images fetched per request.
        #[arg(long, default_value_t = 100)]
        page_size: u32,
    },
    /// Delete images and their cached variants.
    Rm {
        /// Image ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Print the canonical URL of a variant (signed when a signing key is set).
    Url {
        /// Image id.
        id: String,
        #[command(flatten)]
        transform: TransformArgs,
    },
    /// Print an image's metadata.
    Meta {
        /// Image id.
        id: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColourChoice {
    Auto,
    Always,
    Never,
}

/// The server's transform keys, as flags.
#[derive(Debug, Args)]
struct TransformArgs {
    /// Output format (jpg, png, webp, avif, gif, bmp, tiff, ico, svg, txt, html, ansi, auto).
    #[arg(short, long)]
    format: Option<Format>,
    /// Width in pixels.
    #[arg(long = "w")]
    width: Option<u32>,
    /// Height in pixels.
    #[arg(long = "h")]
    height: Option<u32>,
    /// contain, cover or fill.
    #[arg(long)]
    fit: Option<Fit>,
    /// center, n, s, e, w, ne, nw, se, sw or smart.
    #[arg(long)]
    gravity: Option<Gravity>,
    /// Allow upscaling.
    #[arg(long)]
    enlarge: bool,
    /// x:y:w:h, or w:h placed by --gravity.
    #[arg(long, value_parser = parse_crop)]
    crop: Option<CropArg>,
    /// 90, 180 or 270.
    #[arg(long, value_parser = ["90", "180", "270"])]
    rot: Option<String>,
    /// h, v or hv.
    #[arg(long, value_parser = ["h", "v", "hv"])]
    flip: Option<String>,
    /// Blur sigma.
    #[arg(long)]
    blur: Option<f32>,
    /// Sharpen sigma.
    #[arg(long)]
    sharpen: Option<f32>,
    /// Grayscale.
    #[arg(long)]
    gray: bool,
    /// Brightness, -100..=100.
    #[arg(long, allow_hyphen_values = true)]
    bri: Option<i32>,
    /// Contrast, -100..=100.
    #[arg(long, allow_hyphen_values = true)]
    con: Option<i32>,
    /// circle or rounded.
    #[arg(long, value_parser = ["circle", "rounded"])]
    mask: Option<String>,
    /// Background colour, hex rrggbb.
    #[arg(long, value_parser = parse_rgb)]
    bg: Option<[u8; 3]>,
    /// Quality 1..=100.
    #[arg(long)]
    q: Option<u8>,
}

/// `--crop`: a region, or a size placed by gravity.
#[derive(Debug, Clone, Copy)]
enum CropArg {
    Region(u32, u32, u32, u32),
    Size(u32, u32),
}

fn parse_crop(s: &str) -> Result<CropArg, String> {
    let nums: Vec<u32> = s
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| "expected x:y:w:h or w:h".to_owned())?;
    match nums[..] {
        [x, y, w, h] => Ok(CropArg::Region(x, y, w, h)),
        [w, h] => Ok(CropArg::Size(w, h)),
        _ => Err("expected x:y:w:h or w:h".to_owned()),
    }
}

fn parse_rgb(s: &str) -> Result<[u8; 3], String> {
    let bytes = hex::decode(s.trim_start_matches('#')).map_err(|e| e.to_string())?;
    bytes
        .try_into()
        .map_err(|_| "expected six hex digits, e.g. ffffff".to_owned())
}

impl TransformArgs {
    fn transform(&self, default_format: Option<Format>) -> Transform {
        let mut t = Transform::new();
        if let Some(f) = self.format.or(default_format) {
            t = t.format(f);
        }
        if let Some(w) = self.width {
            t = t.width(w);
        }
        if let Some(h) = self.height {
            t = t.height(h);
        }
        if let Some(fit) = self.fit {
            t = t.fit(fit);
        }
        if let Some(g) = self.gravity {
            t = t.gravity(g);
        }
        t = t.enlarge(self.enlarge).gray(self.gray);
        match self.crop {
            Some(CropArg::Region(x, y, w, h)) => t = t.crop(x, y, w, h),
            Some(CropArg::Size(w, h)) => t = t.crop_size(w, h),
            None => {}
        }
        match self.rot.as_deref() {
            Some("90") => t = t.rotate(Rotation::Deg90),
            Some("180") => t = t.rotate(Rotation::Deg180),
            Some("270") => t = t.rotate(Rotation::Deg270),
            _ => {}
        }
        match self.flip.as_deref() {
            Some("h") => t = t.flip(Flip::Horizontal),
            Some("v") => t = t.flip(Flip::Vertical),
            Some("hv") => t = t.flip(Flip::Both),
            _ => {}
        }
        if let Some(b) = self.blur {
            t = t.blur(b);
        }
        if let Some(s) = self.sharpen {
            t = t.sharpen(s);
        }
        if let Some(b) = self.bri {
            t = t.brightness(b);
        }
        if let Some(c) = self.con {
            t = t.contrast(c);
        }
        match self.mask.as_deref() {
            Some("circle") => t = t.mask(Mask::Circle),
            Some("rounded") => t = t.mask(Mask::Rounded),
            _ => {}
        }
        if let Some(bg) = self.bg {
            t = t.background(bg);
        }
        if let Some(q) = self.q {
            t = t.quality(q);
        }
        t
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            if json {
                println!("{}", json!({ "error": error_json(&e) }));
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, Error> {
    let mut builder = Client::builder(&cli.url)
        .timeout(Duration::from_secs(cli.timeout))
        .max_retries(cli.retries);
    if let Some(key) = &cli.api_key {
        builder = builder.api_key(key);
    }
    if let Some(key) = &cli.signing_key {
        builder = builder.signing_key(key);
    }
    if let Command::Upload { no_hash_first, .. } = &cli.command {
        builder = builder.hash_first(!no_hash_first);
    }
    let client = builder.build()?;
    let json = cli.json;
    match cli.command {
        Command::Upload {
            paths, concurrency, ..
        } => upload(&client, &paths, concurrency.max(1), json).await,
        Command::Get {
            id,
            transform,
            output,
        } => get(&client, &id, &transform, &output, json).await,
        Command::Ascii {
            target,
            width,
            invert,
            charset,
            colour,
        } => {
            let colour = match colour {
                ColourChoice::Auto => !json && std::io::stdout().is_terminal(),
                ColourChoice::Always => true,
                ColourChoice::Never => false,
            };
            let mut art = Ascii::new(width).invert(invert).colour(colour);
            if let Some(c) = charset {
                art = art.charset(c);
            }
            let text = if Path::new(&target).is_file() {
                let bytes = read(Path::new(&target))?;
                client.ascii_bytes(bytes, &art).await?
            } else {
                client.ascii(&target, &art).await?
            };
            if json {
                println!("{}", json!({ "art": text }));
            } else {
                print!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ls { limit, page_size } => {
            let images: Vec<_> = client
                .list(page_size)
                .take(limit.unwrap_or(usize::MAX))
                .try_collect()
                .await?;
            if json {
                println!("{}", json!({ "images": images }));
            } else {
                for m in &images {
                    println!(
                        "{}  {:<5} {:>10}  {:>5}x{:<5}  {}  {}",
                        m.id,
                        m.format,
                        HumanBytes(m.bytes).to_string(),
                        m.width,
                        m.height,
                        m.created_at,
                        m.filename.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Rm { ids } => remove(&client, &ids, json).await,
        Command::Url { id, transform } => {
            let url = client.url(&id, &transform.transform(None));
            if json {
                println!("{}", json!({ "url": url }));
            } else {
                println!("{url}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Meta { id } => {
            let meta = client.meta(&id).await?;
            let text = serde_json::to_string_pretty(&meta).expect("metadata serialises");
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

fn error_json(e: &Error) -> Value {
    json!({
        "status": e.status().map(|s| s.as_u16()),
        "code": e.code(),
        "message": e.message(),
    })
}

async fn get(
    client: &Client,
    id: &str,
    args: &TransformArgs,
    output: &Path,
    json: bool,
) -> Result<ExitCode, Error> {
    let to_stdout = output == Path::new("-");
    let from_name = output
        .extension()
        .and_then(|e| e.to_str())
        .and_then(|e| e.parse::<Format>().ok())
        .filter(|_| !to_stdout);
    let transform = args.transform(from_name);
    let variant = client.get(id, &transform).await?;
    if to_stdout {
        std::io::stdout()
            .write_all(&variant.bytes)
            .map_err(|source| Error::Io {
                path: output.to_owned(),
                source,
            })?;
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::write(output, &variant.bytes).map_err(|source| Error::Io {
        path: output.to_owned(),
        source,
    })?;
    let url = client.url(id, &transform);
    if json {
        let line = json!({
            "path": output, "bytes": variant.bytes.len(),
            "content_type": variant.content_type, "url": url,
        });
        println!("{line}");
    } else {
        println!(
            "{}: {} ({})",
            output.display(),
            HumanBytes(variant.bytes.len() as u64),
            variant.content_type.as_deref().unwrap_or("?")
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn remove(client: &Client, ids: &[String], json: bool) -> Result<ExitCode, Error> {
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    for id in ids {
        match client.delete(id).await {
            Ok(()) => {
                if !json {
                    println!("deleted {id}");
                }
                deleted.push(id.clone());
            }
            Err(e) => {
                if !json {
                    eprintln!("{id}: {e}");
                }
                failed.push(json!({ "id": id, "error": error_json(&e) }));
            }
        }
    }
    if json {
        println!("{}", json!({ "deleted": deleted, "failed": failed }));
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// A file to upload, found on the command line or in a directory.
struct Pending {
    path: PathBuf,
    size: u64,
}

/// The outcome of one file.
struct Done {
    path: PathBuf,
    size: u64,
    result: Result<Uploaded, Error>,
}

/// The files named, directories walked recursively in name order; a path that cannot
/// be read becomes a failure of its own.
fn collect_files(paths: &[PathBuf]) -> (Vec<Pending>, Vec<Done>) {
    let mut files = Vec::new();
    let mut failures = Vec::new();
    for root in paths {
        let walk = walkdir::WalkDir::new(root)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
        for entry in walk {
            match entry {
                Ok(e) if e.file_type().is_file() || (e.depth() == 0 && e.path().is_file()) => {
                    let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                    files.push(Pending {
                        path: e.into_path(),
                        size,
                    });
                }
                Ok(_) => {}
                Err(e) => {
                    let path = e.path().unwrap_or(root).to_owned();
                    let source = e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("filesystem loop"));
                    failures.push(Done {
                        path: path.clone(),
                        size: 0,
                        result: Err(Error::Io { path, source }),
                    });
                }
            }
        }
    }
    (files, failures)
}

fn progress_bar(total_bytes: u64, hidden: bool) -> ProgressBar {
    if hidden || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_bytes);
    let style = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} {msg}",
    )
    .expect("a valid template");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn upload(
    client: &Client,
    paths: &[PathBuf],
    concurrency: usize,
    json: bool,
) -> Result<ExitCode, Error> {
    let (files, mut done) = collect_files(paths);
    let total_files = files.len();
    let bar = progress_bar(files.iter().map(|f| f.size).sum(), json);
    let started = Instant::now();
    let mut finished = 0usize;
    let mut uploads = stream::iter(files)
        .map(|file| async move {
            let result = client.upload_file(&file.path).await;
            Done {
                path: file.path,
                size: file.size,
                result,
            }
        })
        .buffer_unordered(concurrency);
    while let Some(item) = uploads.next().await {
        finished += 1;
        bar.inc(item.size);
        let rate = finished as f64 / started.elapsed().as_secs_f64().max(1e-3);
        bar.set_message(format!("{finished}/{total_files} files, {rate:.1} files/s"));
        done.push(item);
    }
    bar.finish_and_clear();
    done.sort_by(|a, b| a.path.cmp(&b.path));
    let failed = done.iter().filter(|d| d.result.is_err()).count();
    let count = |o: UploadOutcome| {
        done.iter()
            .filter(|d| matches!(&d.result, Ok(u) if u.outcome == o))
            .count()
    };
    let (created, existing, skipped) = (
        count(UploadOutcome::Created),
        count(UploadOutcome::AlreadyStored),
        count(UploadOutcome::Skipped),
    );
    if json {
        let files: Vec<Value> = done.iter().map(file_json).collect();
        let summary = json!({
            "files": files,
            "total": done.len(),
            "created": created,
            "already_stored": existing,
            "skipped": skipped,
            "failed": failed,
        });
        println!("{summary}");
    } else {
        print_table(&done);
        let bytes: u64 = done.iter().map(|d| d.size).sum();
        println!(
            "{} files, {} in {:.1}s: {created} created, {existing} already stored, \
             {skipped} skipped (already stored, not sent), {failed} failed",
            done.len(),
            HumanBytes(bytes),
            started.elapsed().as_secs_f64(),
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn outcome_name(result: &Result<Uploaded, Error>) -> &'static str {
    match result {
        Ok(u) => match u.outcome {
            UploadOutcome::Created => "created",
            UploadOutcome::AlreadyStored => "already_stored",
            UploadOutcome::Skipped => "skipped",
        },
        Err(_) => "failed",
    }
}

fn file_json(d: &Done) -> Value {
    let mut v = json!({
        "path": d.path,
        "bytes": d.size,
        "outcome": outcome_name(&d.result),
    });
    match &d.result {
        Ok(u) => {
            v["id"] = json!(u.image.id);
            v["image"] = json!(u.image);
        }
        Err(e) => v["error"] = error_json(e),
    }
    v
}

fn print_table(done: &[Done]) {
    let rows: Vec<[String; 5]> = done
        .iter()
        .map(|d| {
            let (id, detail) = match &d.result {
                Ok(u) => (
                    u.image.id[..12].to_owned(),
                    format!("{} {}x{}", u.image.format, u.image.width, u.image.height),
                ),
                Err(e) => (
                    "-".to_owned(),
                    match (e.status(), e.code()) {
                        (Some(s), Some(code)) => format!("{} {code}: {}", s.as_u16(), e.message()),
                        _ => e.to_string(),
                    },
                ),
            };
            [
                outcome_name(&d.result).to_owned(),
                id,
                HumanBytes(d.size).to_string(),
                d.path.display().to_string(),
                detail,
            ]
        })
        .collect();
    let header = ["STATUS", "ID", "SIZE", "FILE", "DETAIL"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| match i {
                2 => format!("{cell:>w$}"),
                4 => cell.clone(),
                _ => format!("{cell:<w$}"),
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  "));
    }
}
