//! A full disk: uploads fail with 507 `insufficient_storage`, nothing half-written is
//! left or served, and what was stored before stays readable.

use std::process::Command;

use reqwest::StatusCode;

use crate::support::TestServer;

/// A 2 MiB tmpfs mounted for the test's lifetime (needs root, as on this project's
/// machines and CI).
struct SmallDisk {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping the disk-full test: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(&path)
            .status()
            .expect("run mount");
        assert!(status.success(), "root could not mount a tmpfs");
        Some(SmallDisk { path, _dir: dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A valid PNG of `n` bytes or more that does not compress (random pixels).
fn noise_png(seed: u32, side: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    let img = image::RgbImage::from_fn(side, side, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let [r, g, b, _] = state.to_le_bytes();
        image::Rgb([r, g, b])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn a_full_disk_gives_507_and_loses_nothing() {
    let Some(disk) = SmallDisk::mount() else {
        return;
    };
    let data_dir = disk.path.clone();
    let server = TestServer::local(|c| c.data_dir = data_dir).await;
    // Fill the disk with ~300 KB uploads until it refuses.
    let mut stored = Vec::new();
    let mut refused = None;
    for seed in 1..=20 {
        let bytes = noise_png(seed, 300);
        let (status, body) = server.upload_bytes(bytes.clone()).await;
        match status {
            StatusCode::CREATED => stored.push((body["id"].as_str().unwrap().to_owned(), bytes)),
            StatusCode::INSUFFICIENT_STORAGE => {
                assert_eq!(body["code"], "insufficient_storage", "{body}");
                refused = Some(bytes);
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let refused = refused.expect("a 2 MiB disk fills up within 20 uploads of ~300 KB");
    assert!(!stored.is_empty());

    // The refused image is not there, not even half.
    let id = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&refused))
    };
    assert_eq!(
        server.get(&format!("/image/{id}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get(&format!("/image/{id}/original")).await.status(),
        StatusCode::NOT_FOUND
    );
    let leftovers: Vec<String> = walk(&disk.path.join("store"))
        .into_iter()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            name.contains('#') || name.starts_with(".tmp")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "partial files left behind: {leftovers:?}"
    );
    let blobs = server.state.images.blobs();
    assert_eq!(
        blobs.list("originals").await.unwrap().len(),
        stored.len(),
        "no orphan originals"
    );
    assert_eq!(blobs.list("meta").await.unwrap().len(), stored.len());

    // Everything stored before is intact and still served, and reads keep working.
    for (id, bytes) in &stored {
        assert_eq!(&server.bytes(&format!("/image/{id}/original")).await, bytes);
        assert_eq!(
            server.get(&format!("/image/{id}")).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(server.get("/health").await.status(), StatusCode::OK);
    drop(server);
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}
