//! The client and the server code agree, checked directly against the server crate: every
//! spec the client writes is already the server's canonical form, and every signature the
//! client makes passes the server's check.

use progimage::http::signing as server;
use progimage::imaging::Spec;
use progimage_client::{signing, Fit, Flip, Format, Gravity, Mask, Rotation, Transform};

fn variants() -> Vec<Transform> {
    let wm = "C0FFEE".repeat(10) + "ABCD";
    let one_key: Vec<fn(Transform) -> Transform> = vec![
        |t| t.width(1),
        |t| t.height(8192),
        |t| t.fit(Fit::Cover),
        |t| t.fit(Fit::Fill),
        |t| t.fit(Fit::Contain),
        |t| t.gravity(Gravity::SouthWest),
        |t| t.gravity(Gravity::Center),
        |t| t.enlarge(true),
        |t| t.crop(0, 5, 10, 20),
        |t| t.crop_size(7, 9),
        |t| t.rotate(Rotation::Deg270),
        |t| t.flip(Flip::Vertical),
        |t| t.blur(0.1),
        |t| t.blur(100.0),
        |t| t.sharpen(1.25),
        |t| t.gray(true),
        |t| t.brightness(-100),
        |t| t.contrast(100),
        |t| t.mask(Mask::Circle),
        |t| t.background([0, 0xab, 0xff]),
        |t| t.quality(1),
        |t| t.invert(true),
        |t| t.colors(8),
        |t| t.detail(0),
        |t| t.watermark_position(Gravity::East),
        |t| t.watermark_scale(0.01),
        |t| t.watermark_opacity(0.0),
        |t| t.watermark_opacity(0.333),
        |t| t.keep_colour(true),
    ];
    let mut all: Vec<Transform> = one_key.iter().map(|f| f(Transform::new())).collect();
    // Every pair, and everything at once, in both call orders.
    for (i, f) in one_key.iter().enumerate() {
        for g in &one_key[i + 1..] {
            all.push(g(f(Transform::new())));
        }
    }
    let forward = one_key.iter().fold(Transform::new(), |t, f| f(t));
    let backward = one_key.iter().rev().fold(Transform::new(), |t, f| f(t));
    all.push(forward.watermark(&wm));
    all.push(backward.watermark(&wm));
    all
}

#[test]
fn client_specs_are_the_servers_canonical_form() {
    for t in variants() {
        let spec = t.spec();
        let parsed =
            Spec::parse_path(&spec).unwrap_or_else(|e| panic!("the server refuses `{spec}`: {e}"));
        assert_eq!(parsed.canonical(), spec);
    }
    // Equal transforms give equal specs whatever the order of the calls.
    let a = Transform::new().width(3).blur(2.0).gray(true);
    let b = Transform::new().gray(true).blur(2.0).width(3);
    assert_eq!(a.spec(), b.spec());
}

#[test]
fn client_signatures_pass_the_servers_check() {
    let id = "ab".repeat(32);
    let mut paths: Vec<String> = variants()
        .iter()
        .map(|t| t.clone().format(Format::Webp).path(&id))
        .collect();
    paths.extend(
        [
            "/image/{id}.png?w=3&h=4&fit=cover",
            "/image/{id}.png?h=%32&w=3",
            "/image/{id}.txt?charset=+.%23&w=5",
            "/image/{id}.png?b=2&a=1&b=1",
            "/fetch/w_64.png?url=https%3A%2F%2Fexample.com%2Fcat.jpg",
            "/image/{id}/thumb.webp",
        ]
        .map(|p| p.replace("{id}", &id)),
    );
    paths.push(
        Transform::new()
            .width(9)
            .charset(" .:#,_")
            .format(Format::Txt)
            .path(&id),
    );
    for path in paths {
        let (p, q) = path
            .split_once('?')
            .map_or((path.as_str(), None), |(p, q)| (p, Some(q)));
        assert_eq!(
            signing::signing_message(&path),
            server::signing_message(p, q)
        );
        assert_eq!(
            signing::sign(b"key", &path),
            server::sign(b"key", &server::signing_message(p, q))
        );

        let signed: http::Uri = signing::signed(b"key", &path).parse().unwrap();
        assert!(server::verify(Some("key"), &signed).is_ok(), "{signed}");
        let other: http::Uri = signing::signed(b"other", &path).parse().unwrap();
        assert!(server::verify(Some("key"), &other).is_err(), "{other}");
        let tampered: http::Uri = signing::signed(b"key", &path)
            .replacen('/', "/x", 1)
            .parse()
            .unwrap();
        assert!(
            server::verify(Some("key"), &tampered).is_err(),
            "{tampered}"
        );
    }
}
