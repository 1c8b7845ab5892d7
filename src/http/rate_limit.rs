//! Per-client rate limits on work that renders or stores (`PROGIMAGE_RATE_LIMIT` per
//! second). The client is its API key when it sent one, else its address. Cache hits,
//! metadata, health and metrics never reach a check.
//!
//! The middleware records the client in a task-local for the request, so the few places
//! that start real work (an upload, a render, a direct transform, a batch) can ask
//! `check()` without every handler threading the client through. Work spawned off the
//! request task has no client and is not counted again; batch items are charged one by
//! one through `check_client`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::Error;
use crate::AppState;

tokio::task_local! {
    static CLIENT: Client;
}

/// Who the request is from, and whether its next unit is already paid for.
struct Client {
    name: String,
    /// Set by [`RateLimit::check_ahead`]: the next `check()` of this request is free.
    prepaid: std::cell::Cell<bool>,
}

pub struct RateLimit {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl RateLimit {
    /// `per_second` requests per client, with bursts of the same size.
    pub fn new(per_second: Option<u32>) -> RateLimit {
        let limiter = per_second
            .and_then(NonZeroU32::new)
            .map(|n| RateLimiter::keyed(Quota::per_second(n)));
        RateLimit { limiter }
    }

    /// Count one unit of work for the current request's client.
    pub fn check(&self) -> Result<(), Error> {
        if self.limiter.is_none() {
            return Ok(());
        }
        let Ok(client) = CLIENT.try_with(|c| (!c.prepaid.replace(false)).then(|| c.name.clone()))
        else {
            return Ok(()); // not on a request task: part of work already counted
        };
        self.check_client(client.as_deref())
    }

    /// Take the unit of work the request will ask for later now, before work that
    /// must not happen for a client over its limit (downloading a remote image); the
    /// request's next `check()` is then free, so it is charged once.
    pub fn check_ahead(&self) -> Result<(), Error> {
        self.check()?;
        let _ = CLIENT.try_with(|c| c.prepaid.set(self.limiter.is_some()));
        Ok(())
    }

    /// The current request's client, to charge work done off the request's task
    /// (batch items) with [`RateLimit::check_client`]. `None` off a request task.
    pub fn client() -> Option<String> {
        CLIENT.try_with(|c| c.name.clone()).ok()
    }

    /// Count one unit of work for a named client (`None`: not limited).
    pub fn check_client(&self, client: Option<&str>) -> Result<(), Error> {
        let (Some(limiter), Some(client)) = (&self.limiter, client) else {
            return Ok(());
        };
        limiter.check_key(&client.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            Error::RateLimited(wait.as_secs().max(1))
        })
    }

    /// Drop idle clients' state now and then so the map does not grow without bound.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
        }
    }
}

/// Record who is asking, for the duration of the request.
pub async fn identify(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if state.rate_limit.limiter.is_none() {
        return next.run(req).await;
    }
    let client = match super::auth::bearer_token(req.headers()) {
        // Only a real key names a client: made-up keys must not buy fresh buckets.
        Some(key) if super::auth::key_matches(&state.config.api_keys, key) => {
            format!("key:{key}")
        }
        _ => req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| format!("ip:{}", addr.ip()))
            .unwrap_or_else(|| "ip:unknown".into()),
    };
    let client = Client {
        name: client,
        prepaid: std::cell::Cell::new(false),
    };
    CLIENT.scope(client, next.run(req)).await
}
