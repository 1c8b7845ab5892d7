//! Overload (issue 7, item 5): offered load far above capacity sheds with 503
//! `overloaded` + `Retry-After`, cache hits keep being served meanwhile, and the server
//! recovers by itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::time::timeout;

use crate::support::TestServer;

const COLD_RENDERS: u32 = 200;

#[tokio::test]
async fn far_above_capacity_sheds_serves_hits_and_recovers() {
    let server = Arc::new(
        TestServer::with(|c| {
            c.workers = Some(1);
            c.queue = 4;
        })
        .await,
    );
    let id = server.upload_corpus("face-astronaut.png").await;
    let hit = format!("/image/{id}/w_64.png");
    server.bytes(&hit).await; // rendered once: from now on a cache hit

    let outcome = timeout(Duration::from_secs(240), async {
        // Cache hits, one after another, for as long as the storm lasts.
        let storm_over = Arc::new(AtomicBool::new(false));
        let hits = {
            let (server, hit, storm_over) = (server.clone(), hit.clone(), storm_over.clone());
            tokio::spawn(async move {
                let mut served = 0u32;
                while !storm_over.load(Ordering::Relaxed) {
                    let resp = server.get(&hit).await;
                    assert_eq!(
                        resp.status(),
                        StatusCode::OK,
                        "a cache hit failed under load"
                    );
                    resp.bytes().await.unwrap();
                    served += 1;
                }
                served
            })
        };
        // 200 distinct cold renders at once against 1 worker and a queue of 4.
        let storm = (0..COLD_RENDERS).map(|i| {
            let server = server.clone();
            let path = format!("/image/{id}/w_{}.png", 100 + i);
            async move {
                let resp = server.get(&path).await;
                let status = resp.status();
                let retry_after = resp.headers().get("retry-after").cloned();
                let body = resp.bytes().await.unwrap();
                (path, status, retry_after, body)
            }
        });
        let results = join_all(storm).await;
        storm_over.store(true, Ordering::Relaxed);
        let hits_served = hits.await.expect("cache hits during the storm");

        let mut shed = Vec::new();
        for (path, status, retry_after, body) in results {
            match status {
                StatusCode::OK => {}
                StatusCode::SERVICE_UNAVAILABLE => {
                    let json: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(json["code"], "overloaded", "{json}");
                    assert!(retry_after.is_some(), "503 without Retry-After");
                    shed.push(path);
                }
                other => panic!("{path}: unexpected {other}"),
            }
        }
        println!(
            "overload: {COLD_RENDERS} concurrent cold renders (workers=1, queue=4): {} shed \
             with 503 overloaded, {} rendered; {hits_served} cache hits served meanwhile",
            shed.len(),
            COLD_RENDERS as usize - shed.len()
        );
        assert!(
            !shed.is_empty(),
            "nothing was shed: the queue limit is not enforced"
        );
        assert!(hits_served > 0);

        // Recovery: offered within capacity, every shed request now succeeds.
        for path in &shed {
            let resp = server.get(path).await;
            assert_eq!(resp.status(), StatusCode::OK, "{path} after the storm");
        }
        assert_eq!(server.metric("progimage_work_queue_depth").await, 0.0);
    })
    .await;
    outcome.expect("the overload test did not finish within its bound");
}
