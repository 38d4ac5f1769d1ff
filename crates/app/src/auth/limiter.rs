//! Counting failures per key in a fixed window, for brute-force protection on login.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Allows `max` failures per key per `window`; after that, the key is refused until the window
/// that started with its first failure ends.
pub struct FailureLimiter {
    max: u32,
    window: Duration,
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self { max, window, entries: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds)` if the key is blocked now.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let entries = self.entries.lock();
        match entries.get(key) {
            Some((count, start)) if *count >= self.max => {
                let elapsed = start.elapsed();
                if elapsed < self.window {
                    Err((self.window - elapsed).as_secs().max(1))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str) {
        let mut entries = self.entries.lock();
        if entries.len() > 100_000 {
            let window = self.window;
            entries.retain(|_, (_, start)| start.elapsed() < window);
        }
        let now = Instant::now();
        let entry = entries.entry(key.to_owned()).or_insert((0, now));
        if entry.1.elapsed() >= self.window {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub fn reset(&self, key: &str) {
        self.entries.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_and_resets_on_success() {
        let l = FailureLimiter::new(2, Duration::from_secs(60));
        l.record_failure("a");
        assert!(l.check("a").is_ok());
        l.record_failure("a");
        let wait = l.check("a").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.check("b").is_ok());
        l.reset("a");
        assert!(l.check("a").is_ok());
    }

    #[test]
    fn the_block_ends_with_the_window() {
        let l = FailureLimiter::new(1, Duration::from_millis(20));
        l.record_failure("a");
        assert!(l.check("a").is_err());
        std::thread::sleep(Duration::from_millis(25));
        assert!(l.check("a").is_ok());
    }
}
