//! Catalogue workload on three embedded stores: durable single-row commits (an upload
//! each), a bulk load, a 100-row page from a middle cursor, a point read, a count, and
//! the time to reopen. One run, same machine, same data.
use std::time::Instant;

fn id(i: u64) -> String {
    // Spread like SHA-256 hex: a multiplicative hash of i.
    format!("{:016x}{:048x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i)
}
fn meta(i: u64) -> Vec<u8> {
    format!(r#"{{"id":"{}","url":"/image/{}.jpg","format":"jpeg","content_type":"image/jpeg","width":4032,"height":3024,"bytes":2345678,"has_alpha":false,"filename":"IMG_{i}.jpg","created_at":"2026-12-03T18:00:00Z"}}"#, id(i), id(i)).into_bytes()
}
fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

trait Cat {
    fn name(&self) -> &'static str;
    fn put_durable(&mut self, i: u64);
    fn put_bulk(&mut self, range: std::ops::Range<u64>);
    fn page_after(&self, cursor: &str, n: usize) -> usize;
    fn get(&self, key: &str) -> bool;
    fn count(&self) -> u64;
}

struct Sqlite(rusqlite::Connection);
impl Sqlite {
    fn open(dir: &str) -> Self {
        let c = rusqlite::Connection::open(format!("{dir}/cat.sqlite")).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        c.execute_batch("CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, meta BLOB NOT NULL) WITHOUT ROWID; CREATE TABLE IF NOT EXISTS counts (k INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT OR IGNORE INTO counts VALUES (0, 0);").unwrap();
        Sqlite(c)
    }
}
impl Cat for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite (WAL, synchronous=FULL)"
    }
    fn put_durable(&mut self, i: u64) {
        let t = self.0.transaction().unwrap();
        let n = t
            .execute(
                "INSERT OR IGNORE INTO images VALUES (?1, ?2)",
                rusqlite::params![id(i), meta(i)],
            )
            .unwrap();
        t.execute("UPDATE counts SET n = n + ?1 WHERE k = 0", [n as i64])
            .unwrap();
        t.commit().unwrap();
    }
    fn put_bulk(&mut self, range: std::ops::Range<u64>) {
        let t = self.0.transaction().unwrap();
        let mut added = 0;
        {
            let mut s = t
                .prepare("INSERT OR IGNORE INTO images VALUES (?1, ?2)")
                .unwrap();
            for i in range {
                added += s.execute(rusqlite::params![id(i), meta(i)]).unwrap();
            }
        }
        t.execute("UPDATE counts SET n = n + ?1 WHERE k = 0", [added as i64])
            .unwrap();
        t.commit().unwrap();
    }
    fn page_after(&self, cursor: &str, n: usize) -> usize {
        let mut s = self
            .0
            .prepare_cached("SELECT meta FROM images WHERE id > ?1 ORDER BY id LIMIT ?2")
            .unwrap();
        s.query_map(rusqlite::params![cursor, n as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .unwrap()
        .count()
    }
    fn get(&self, key: &str) -> bool {
        let mut s = self
            .0
            .prepare_cached("SELECT meta FROM images WHERE id = ?1")
            .unwrap();
        s.query_row([key], |r| r.get::<_, Vec<u8>>(0)).is_ok()
    }
    fn count(&self) -> u64 {
        self.0
            .query_row("SELECT n FROM counts WHERE k = 0", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap() as u64
    }
}

const IMAGES: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("images");
const COUNTS: redb::TableDefinition<u8, u64> = redb::TableDefinition::new("counts");
struct Redb(redb::Database);
impl Redb {
    fn open(dir: &str) -> Self {
        Redb(redb::Database::create(format!("{dir}/cat.redb")).unwrap())
    }
}
impl Redb {
    fn write(&self, range: std::ops::Range<u64>) {
        use redb::ReadableTable;
        let w = self.0.begin_write().unwrap();
        {
            let mut t = w.open_table(IMAGES).unwrap();
            let mut c = w.open_table(COUNTS).unwrap();
            let mut added = 0;
            for i in range {
                if t.insert(id(i).as_str(), meta(i).as_slice())
                    .unwrap()
                    .is_none()
                {
                    added += 1;
                }
            }
            let n = c.get(0).unwrap().map_or(0, |v| v.value());
            c.insert(0, n + added).unwrap();
        }
        w.commit().unwrap();
    }
}
impl Cat for Redb {
    fn name(&self) -> &'static str {
        "redb 2 (Durability::Immediate)"
    }
    fn put_durable(&mut self, i: u64) {
        self.write(i..i + 1)
    }
    fn put_bulk(&mut self, range: std::ops::Range<u64>) {
        self.write(range)
    }
    fn page_after(&self, cursor: &str, n: usize) -> usize {
        let r = self.0.begin_read().unwrap();
        let t = r.open_table(IMAGES).unwrap();
        let bound: (std::ops::Bound<&str>, std::ops::Bound<&str>) = (
            std::ops::Bound::Excluded(cursor),
            std::ops::Bound::Unbounded,
        );
        t.range::<&str>(bound)
            .unwrap()
            .take(n)
            .map(|e| e.unwrap().1.value().len())
            .count()
    }
    fn get(&self, key: &str) -> bool {
        let r = self.0.begin_read().unwrap();
        let t = r.open_table(IMAGES).unwrap();
        t.get(key).unwrap().is_some()
    }
    fn count(&self) -> u64 {
        let r = self.0.begin_read().unwrap();
        let t = r.open_table(COUNTS).unwrap();
        t.get(0).unwrap().map_or(0, |v| v.value())
    }
}

struct Fjall(fjall::Keyspace, fjall::TxPartitionHandle, fjall::TxKeyspace);
impl Fjall {
    fn open(dir: &str) -> Self {
        let ks = fjall::Config::new(format!("{dir}/cat.fjall"))
            .open_transactional()
            .unwrap();
        let p = ks.open_partition("images", Default::default()).unwrap();
        Fjall(ks.inner().clone(), p, ks)
    }
}
impl Cat for Fjall {
    fn name(&self) -> &'static str {
        "fjall 2 (PersistMode::SyncAll per commit)"
    }
    fn put_durable(&mut self, i: u64) {
        let mut tx = self.2.write_tx();
        tx.insert(&self.1, id(i), meta(i));
        tx.commit().unwrap();
        self.0.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    fn put_bulk(&mut self, range: std::ops::Range<u64>) {
        let mut tx = self.2.write_tx();
        for i in range {
            tx.insert(&self.1, id(i), meta(i));
        }
        tx.commit().unwrap();
        self.0.persist(fjall::PersistMode::SyncAll).unwrap();
    }
    fn page_after(&self, cursor: &str, n: usize) -> usize {
        let r = self.2.read_tx();
        r.range(
            &self.1,
            (
                std::ops::Bound::Excluded(cursor.as_bytes().to_vec()),
                std::ops::Bound::Unbounded,
            ),
        )
        .take(n)
        .map(|e| e.unwrap().1.len())
        .count()
    }
    fn get(&self, key: &str) -> bool {
        self.2.read_tx().get(&self.1, key).unwrap().is_some()
    }
    fn count(&self) -> u64 {
        self.2.read_tx().len(&self.1).unwrap() as u64
    } // a scan: fjall keeps no count
}

fn run(make: &dyn Fn(&str) -> Box<dyn Cat>, total: u64, durable: u64) {
    let dir = format!("/tmp/catalogue-stores-{}", std::process::id());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = make(&dir);
    let t = Instant::now();
    for i in 0..durable {
        c.put_durable(i);
    }
    let per_commit = ms(t) / durable as f64;
    let t = Instant::now();
    let mut at = durable;
    while at < total {
        let end = (at + 10_000).min(total);
        c.put_bulk(at..end);
        at = end;
    }
    let bulk = ms(t);
    let ids: Vec<String> = (0..total).map(id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    let middle = &sorted[sorted.len() / 2];
    let reps = 200;
    let t = Instant::now();
    let mut got = 0;
    for _ in 0..reps {
        got += c.page_after("", 100);
    }
    let first = ms(t) / reps as f64;
    let t = Instant::now();
    for _ in 0..reps {
        got += c.page_after(middle, 100);
    }
    let mid = ms(t) / reps as f64;
    let t = Instant::now();
    for k in ids.iter().step_by((total / 1000) as usize) {
        assert!(c.get(k));
    }
    let get = ms(t) / 1000.0;
    let t = Instant::now();
    let n = c.count();
    let count = ms(t);
    assert_eq!(n, total);
    assert!(got > 0);
    let name = c.name();
    drop(c);
    let t = Instant::now();
    let c = make(&dir);
    let reopen = ms(t);
    assert_eq!(c.count(), total);
    drop(c);
    let size: u64 = walk(&dir);
    println!("| {name} | {total} | {:.3} ms ({:.0}/s) | {bulk:.0} ms | {first:.3} ms | {mid:.3} ms | {get:.4} ms | {count:.3} ms | {reopen:.1} ms | {:.1} MB |", per_commit, 1000.0 / per_commit, size as f64 / 1e6);
    let _ = std::fs::remove_dir_all(&dir);
}
fn walk(d: &str) -> u64 {
    std::fs::read_dir(d)
        .map(|r| {
            r.flatten()
                .map(|e| {
                    let m = e.metadata().unwrap();
                    if m.is_dir() {
                        walk(e.path().to_str().unwrap())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let total: u64 = std::env::args()
        .nth(1)
        .map_or(100_000, |s| s.parse().unwrap());
    let durable: u64 = std::env::args()
        .nth(2)
        .map_or(2_000, |s| s.parse().unwrap());
    println!("| store | rows | durable single-row commit | bulk load of the rest | first page (100) | middle page (100) | point read | count | reopen | on disk |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    run(&|d| Box::new(Sqlite::open(d)), total, durable);
    run(&|d| Box::new(Redb::open(d)), total, durable);
    run(&|d| Box::new(Fjall::open(d)), total, durable);
}
