//! Per-key request limits (`rate_per_minute`, `rate_per_day`): an in-memory fixed-window
//! counter per API key (or per any other key: the widget counts visitors and agents). The hot
//! path takes one lock and updates a map entry in place; it allocates only the first time a
//! key is seen.

use std::collections::HashMap;
use std::hash::Hash;

use domain::ApiKeyId;
use parking_lot::Mutex;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Copy, Default)]
struct Windows {
    minute: i64,
    minute_count: i64,
    day: i64,
    day_count: i64,
}

/// Where a client stands against its tightest limit after a request, for the `RateLimit-*`
/// headers: the limit, what is left of it, and the seconds until its window resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindow {
    pub limit: i64,
    pub remaining: i64,
    pub reset_secs: u64,
}

/// Counters kept before stale ones are swept (keys chosen by clients, like widget visitor ids,
/// must not grow the map without bound).
const SWEEP_ABOVE: usize = 100_000;

/// Fixed-window counters keyed by API key id (or another key).
pub(crate) struct KeyRateLimiter<K = ApiKeyId> {
    windows: Mutex<HashMap<K, Windows>>,
}

impl<K: Hash + Eq> KeyRateLimiter<K> {
    pub fn new() -> Self {
        Self { windows: Mutex::new(HashMap::new()) }
    }

    /// Counts one request at `now_ms` against the key's limits; `Err(seconds)` to wait when
    /// a limit is reached (the refused request is not counted).
    pub fn hit(
        &self,
        key: K,
        per_minute: Option<i64>,
        per_day: Option<i64>,
        now_ms: i64,
    ) -> Result<(), u64> {
        self.hit_window(key, per_minute, per_day, now_ms).map(|_| ())
    }

    /// [`KeyRateLimiter::hit`], answering where the key stands against its tightest limit
    /// (the one with the least left) once this request is counted; `None` without limits.
    pub fn hit_window(
        &self,
        key: K,
        per_minute: Option<i64>,
        per_day: Option<i64>,
        now_ms: i64,
    ) -> Result<Option<RateWindow>, u64> {
        if per_minute.is_none() && per_day.is_none() {
            return Ok(None);
        }
        let (minute, day) = (now_ms.div_euclid(MINUTE_MS), now_ms.div_euclid(DAY_MS));
        let mut map = self.windows.lock();
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, w| w.minute == minute || (per_day.is_some() && w.day == day));
        }
        let w = map.entry(key).or_default();
        if w.minute != minute {
            w.minute = minute;
            w.minute_count = 0;
        }
        if w.day != day {
            w.day = day;
            w.day_count = 0;
        }
        let wait =
            |window_ms: i64| ((window_ms - now_ms.rem_euclid(window_ms)) / 1000).max(1) as u64;
        if per_day.is_some_and(|max| w.day_count >= max) {
            return Err(wait(DAY_MS));
        }
        if per_minute.is_some_and(|max| w.minute_count >= max) {
            return Err(wait(MINUTE_MS));
        }
        w.minute_count += 1;
        w.day_count += 1;
        let windows = [(per_minute, w.minute_count, MINUTE_MS), (per_day, w.day_count, DAY_MS)];
        Ok(windows
            .into_iter()
            .filter_map(|(max, used, ms)| {
                max.map(|max| RateWindow {
                    limit: max,
                    remaining: (max - used).max(0),
                    reset_secs: wait(ms),
                })
            })
            .min_by_key(|r| r.remaining))
    }

    /// Requests counted in the minute of `now_ms` for `key` (0 when none).
    pub fn minute_count(&self, key: K, now_ms: i64) -> u64 {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let map = self.windows.lock();
        map.get(&key).filter(|w| w.minute == minute).map_or(0, |w| w.minute_count.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_minute_limit_and_resets_with_the_next_window() {
        let l = KeyRateLimiter::new();
        let k = ApiKeyId::new();
        let t = 10 * MINUTE_MS + 1_000;
        assert!(l.hit(k, Some(2), None, t).is_ok());
        assert!(l.hit(k, Some(2), None, t + 1).is_ok());
        let wait = l.hit(k, Some(2), None, t + 2).unwrap_err();
        assert_eq!(wait, 58);
        assert!(l.hit(ApiKeyId::new(), Some(2), None, t).is_ok(), "other keys are separate");
        assert!(l.hit(k, Some(2), None, t + MINUTE_MS).is_ok());
    }

    #[test]
    fn the_window_reported_is_the_one_with_the_least_left() {
        let l = KeyRateLimiter::new();
        let k = ApiKeyId::new();
        let t = 3 * DAY_MS + 30_000;
        let w = l.hit_window(k, Some(5), Some(100), t).unwrap().unwrap();
        assert_eq!(w, RateWindow { limit: 5, remaining: 4, reset_secs: 30 });
        let w = l.hit_window(k, Some(50), Some(3), t + 1).unwrap().unwrap();
        assert_eq!((w.limit, w.remaining), (3, 1), "the day's limit is tighter now");
        assert_eq!(l.hit_window(k, None, None, t + 2), Ok(None));
    }

    #[test]
    fn the_day_limit_holds_across_minutes() {
        let l = KeyRateLimiter::new();
        let k = ApiKeyId::new();
        assert!(l.hit(k, Some(10), Some(1), 5).is_ok());
        assert!(l.hit(k, Some(10), Some(1), 5 + 2 * MINUTE_MS).is_err());
        assert!(l.hit(k, Some(10), Some(1), DAY_MS + 5).is_ok());
    }
}
