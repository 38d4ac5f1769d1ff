//! Retries of idempotent-enough vendor calls: a 5xx, a 429 or a transport failure is tried
//! again after a short backoff (honouring `Retry-After` up to a cap); anything else is final.

use std::time::Duration;

use fetch::{ApiRequest, ApiResponse, FetchError, GuardedClient};

/// Attempts in all (the first and two retries).
const ATTEMPTS: u32 = 3;
const BASE_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(2);

/// Sends `request` (cloned per attempt) until it gets an answer that is not worth retrying.
pub(crate) async fn send(
    client: &GuardedClient,
    request: &ApiRequest<'_>,
) -> Result<ApiResponse, FetchError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = client.call(request.clone()).await;
        let retry_after = match &result {
            Ok(r) if r.status >= 500 || r.status == 429 => r.retry_after_secs,
            Err(FetchError::Unreachable(_) | FetchError::Timeout(_)) => None,
            _ => return result,
        };
        if attempt >= ATTEMPTS {
            return result;
        }
        let backoff = BASE_DELAY * 2u32.pow(attempt - 1);
        let delay = retry_after.map_or(backoff, Duration::from_secs).min(MAX_DELAY);
        tracing::debug!(url = request.url, attempt, ?delay, "vendor call failed; retrying");
        tokio::time::sleep(delay).await;
    }
}
