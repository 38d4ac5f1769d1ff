//! Metered usage to Stripe. Usage records are written with the usage counters they repeat
//! (`Store::add_usage`, one transaction, which also queues a `billing.report_usage` job), so
//! a crash loses neither. The job sends every unreported record as a Billing meter event whose
//! `identifier` and `Idempotency-Key` are the record's id, then marks it `reported_to_stripe`:
//! a crash between Stripe's answer and the mark, or a retried attempt, sends the same key
//! again and Stripe applies it once. Two jobs running at once send the same keys too.

use connectors::stripe::{MeterEvent, StripeError};
use domain::time::now_ms;

use crate::App;
use crate::worker::JobError;

/// Records sent per round of the job.
const BATCH: u32 = 100;

impl App {
    /// Reports unreported usage records to Stripe (the `billing.report_usage` job).
    pub async fn report_usage_job(&self) -> Result<(), JobError> {
        let Some(stripe) = self.stripe() else {
            return Err(JobError::Retry("Stripe is not set up; usage stays unreported".into()));
        };
        let mut refused = 0usize;
        loop {
            let records = self
                .store()
                .unreported_usage(BATCH)
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
            let full = records.len() as u32 == BATCH;
            let mut sent = 0usize;
            for r in &records {
                let event = MeterEvent {
                    event_name: &stripe.settings.meter_event,
                    customer: &r.stripe_customer_id,
                    value: r.quantity,
                    identifier: &r.id,
                    timestamp_secs: r.created_at / 1000,
                };
                match stripe.client.report_meter_event(&event).await {
                    Ok(()) => {
                        self.store()
                            .mark_usage_reported(&r.id, now_ms())
                            .await
                            .map_err(|e| JobError::Retry(e.to_string()))?;
                        sent += 1;
                    }
                    Err(StripeError::Refused { status, message }) => {
                        // Left unreported (visible, retried by the next job), not resent in a loop.
                        tracing::error!(record = %r.id, workspace = %r.workspace_id, status, %message, "Stripe refused a usage record");
                        refused += 1;
                    }
                    Err(e) => return Err(JobError::Retry(e.to_string())),
                }
            }
            if !full || sent == 0 {
                break;
            }
        }
        if refused > 0 {
            return Err(JobError::Retry(format!("Stripe refused {refused} usage record(s)")));
        }
        Ok(())
    }
}
