//! Outgoing mail. Mail is queued as a durable job (its body sealed by the vault, since it
//! carries single-use links) and sent by a worker: over SMTP when configured, otherwise written
//! as a real `.eml` file to the outbox directory with its link logged, so a fresh install works.

use std::path::PathBuf;

use async_trait::async_trait;
use domain::time::now_ms;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use store::NewJob;

use crate::{App, AppError};

/// The job queue mail goes through.
pub const MAIL_QUEUE: &str = "mail";

/// One message to send.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// The action link in the body, logged when mail goes to the outbox.
    pub link: Option<String>,
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address: {0}")]
    Address(String),
    #[error("could not build the message: {0}")]
    Build(String),
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
    #[error("could not write to the outbox: {0}")]
    Outbox(String),
}

/// Delivers messages.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn deliver(&self, mail: &Mail) -> Result<(), MailError>;
}

fn build(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&mail.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(|e| MailError::Build(e.to_string()))
}

/// Writes each message as an `.eml` file (RFC 5322, as it would go over the wire).
pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf, from: &str) -> Result<Self, MailError> {
        std::fs::create_dir_all(&dir).map_err(|e| MailError::Outbox(e.to_string()))?;
        Ok(Self {
            dir,
            from: from
                .parse()
                .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?,
        })
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn deliver(&self, mail: &Mail) -> Result<(), MailError> {
        let bytes = build(&self.from, mail)?.formatted();
        let name = format!("{}-{}.eml", now_ms(), domain::JobId::new());
        let tmp = self.dir.join(format!(".{name}.tmp"));
        tokio::fs::write(&tmp, &bytes).await.map_err(|e| MailError::Outbox(e.to_string()))?;
        tokio::fs::rename(&tmp, self.dir.join(&name))
            .await
            .map_err(|e| MailError::Outbox(e.to_string()))?;
        tracing::info!(to = %mail.to, subject = %mail.subject, file = %name, link = mail.link.as_deref().unwrap_or(""), "mail written to the outbox (no SMTP server configured)");
        Ok(())
    }
}

/// Sends over SMTP (`smtp://host:port`, `smtps://user:pass@host`, `smtp://…?tls=required`).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Smtp(e.to_string()))?
            .build();
        Ok(Self {
            transport,
            from: from
                .parse()
                .map_err(|e: lettre::address::AddressError| MailError::Address(e.to_string()))?,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn deliver(&self, mail: &Mail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        self.transport.send(message).await.map_err(|e| MailError::Smtp(e.to_string()))?;
        tracing::info!(to = %mail.to, subject = %mail.subject, "mail sent over SMTP");
        Ok(())
    }
}

impl App {
    /// Queues a message for delivery (durably: a crash after this returns loses nothing).
    pub(crate) async fn send_mail(&self, mail: Mail) -> Result<(), AppError> {
        let json = serde_json::to_vec(&mail).map_err(|e| AppError::Internal(e.to_string()))?;
        let sealed = self.inner.keyring.seal(&json, "mail");
        let now = now_ms();
        self.inner
            .store
            .enqueue_job(
                &NewJob {
                    queue: MAIL_QUEUE.into(),
                    kind: "mail.send".into(),
                    payload: serde_json::json!({ "sealed": sealed }),
                    workspace_id: None,
                    max_attempts: 8,
                    run_at: now,
                },
                now,
            )
            .await?;
        Ok(())
    }

    /// Delivers one queued message (the mail job handler).
    pub async fn deliver_mail_job(&self, payload: &str) -> Result<(), crate::worker::JobError> {
        use crate::worker::JobError;
        let value: serde_json::Value =
            serde_json::from_str(payload).map_err(|e| JobError::Permanent(e.to_string()))?;
        let sealed = value["sealed"]
            .as_str()
            .ok_or_else(|| JobError::Permanent("mail job without a sealed body".into()))?;
        let json = self
            .inner
            .keyring
            .open(sealed, "mail")
            .map_err(|e| JobError::Permanent(e.to_string()))?;
        let mail: Mail =
            serde_json::from_slice(&json).map_err(|e| JobError::Permanent(e.to_string()))?;
        self.inner.mailer.deliver(&mail).await.map_err(|e| match e {
            MailError::Address(_) | MailError::Build(_) => JobError::Permanent(e.to_string()),
            other => JobError::Retry(other.to_string()),
        })
    }
}
