//! Runs a converter where its failures cannot hurt the process: on its own thread with a large
//! stack (deep recursion in third-party parsers), behind `catch_unwind` (their panics), and with
//! a wall-clock limit after which the thread is abandoned (their endless loops).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::Duration;

use crate::{ExtractError, Extracted, Format};

/// Stack for extraction threads: recursive HTML/XML walkers need far more than the 2 MiB default.
/// Only the pages actually touched are committed.
const STACK_BYTES: usize = 256 * 1024 * 1024;

type Job = Box<dyn FnOnce() -> Result<Extracted, ExtractError> + Send + 'static>;

fn run_caught(format: Format, job: Job) -> Result<Extracted, ExtractError> {
    catch_unwind(AssertUnwindSafe(job))
        .unwrap_or_else(|_| Err(ExtractError::ParserCrashed(format.name())))
}

/// Runs `job` on a fresh thread and waits at most `timeout` for it.
pub(crate) fn run_blocking(
    format: Format,
    timeout: Duration,
    job: Job,
) -> Result<Extracted, ExtractError> {
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("extract".into()).stack_size(STACK_BYTES).spawn(
        move || {
            // The receiver is gone if we timed out; nothing left to tell.
            let _ = tx.send(run_caught(format, job));
        },
    );
    if spawned.is_err() {
        return Err(ExtractError::ParserCrashed("thread"));
    }
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            tracing::warn!(?format, ?timeout, "extraction abandoned after timeout");
            Err(ExtractError::TimedOut(timeout))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            Err(ExtractError::ParserCrashed(format.name()))
        }
    }
}

/// Async twin of [`run_blocking`]: the tokio worker only awaits, it never runs the parser.
pub(crate) async fn run_async(
    format: Format,
    timeout: Duration,
    job: Job,
) -> Result<Extracted, ExtractError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new().name("extract".into()).stack_size(STACK_BYTES).spawn(
        move || {
            let _ = tx.send(run_caught(format, job));
        },
    );
    if spawned.is_err() {
        return Err(ExtractError::ParserCrashed("thread"));
    }
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(ExtractError::ParserCrashed(format.name())),
        Err(_) => {
            tracing::warn!(?format, ?timeout, "extraction abandoned after timeout");
            Err(ExtractError::TimedOut(timeout))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_parser_becomes_an_error_not_a_crash() {
        let err =
            run_blocking(Format::Pdf, Duration::from_secs(5), Box::new(|| panic!("parser bug")))
                .unwrap_err();
        assert!(matches!(err, ExtractError::ParserCrashed("PDF")), "{err:?}");
    }

    #[test]
    fn deep_recursion_fits_in_the_extraction_stack() {
        fn depth(n: u32) -> u32 {
            let pad = std::hint::black_box([0u8; 512]);
            if n == 0 { u32::from(pad[0]) } else { 1 + depth(n - 1) }
        }
        // ~100 000 frames of > 512 bytes overflow a default 2 MiB stack many times over.
        let job: Job = Box::new(|| {
            let d = depth(100_000);
            let mut doc = crate::document::DocBuilder::new();
            doc.paragraph(d.to_string());
            Ok(doc.finish(Format::Text))
        });
        let doc = run_blocking(Format::Text, Duration::from_secs(30), job).unwrap();
        assert_eq!(doc.markdown, "100000");
    }
}
