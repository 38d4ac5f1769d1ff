//! Files attached to a chat message: read by the knowledge extractors and added to that
//! conversation as a message of their own (role `user`, `attachments` describing the file), so
//! the model sees the text in this turn and in later ones, and people see a file chip.

use domain::ConversationId;
use domain::time::now_ms;
use serde::Serialize;
use store::{MessageRole, NewMessage, TenantScope};

use crate::{App, AppError, FieldError};

/// Most files on one message.
pub const MAX_ATTACHMENTS: usize = 5;
/// Largest attached file, in bytes.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;
/// Most characters of one file's text given to the model.
pub const MAX_ATTACHMENT_CHARS: usize = 30_000;

/// A file as received.
#[derive(Debug, Clone)]
pub struct AttachmentUpload {
    pub filename: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

/// A file read and ready to give to the model.
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub filename: String,
    pub content_type: Option<String>,
    pub size_bytes: usize,
    /// Characters of text extracted (before any cut).
    pub chars: usize,
    /// Whether the text was cut to [`MAX_ATTACHMENT_CHARS`].
    pub truncated: bool,
    #[serde(skip)]
    pub text: String,
}

impl App {
    /// Reads attached files with the document extractors. A file that cannot be read is a 422
    /// naming it; nothing is kept.
    pub async fn read_attachments(
        &self,
        files: Vec<AttachmentUpload>,
    ) -> Result<Vec<Attachment>, AppError> {
        if files.len() > MAX_ATTACHMENTS {
            return Err(AppError::field(
                "/attachments",
                "too_many",
                format!("attach at most {MAX_ATTACHMENTS} files to one message"),
            ));
        }
        let mut out = Vec::with_capacity(files.len());
        let mut errors = Vec::new();
        for (i, f) in files.into_iter().enumerate() {
            let path = format!("/attachments/{i}");
            let name = f.filename.trim().to_owned();
            if name.is_empty() {
                errors.push(FieldError::new(&path, "required", "the file needs a name"));
                continue;
            }
            if f.bytes.len() > MAX_ATTACHMENT_BYTES {
                errors.push(FieldError::new(
                    &path,
                    "too_large",
                    format!("`{name}` is larger than {} MB", MAX_ATTACHMENT_BYTES / 1024 / 1024),
                ));
                continue;
            }
            let head = &f.bytes[..f.bytes.len().min(8192)];
            let Some(format) = extract::detect(&name, f.content_type.as_deref(), head) else {
                errors.push(FieldError::new(
                    &path,
                    "unsupported_type",
                    format!("`{name}` is not a document type that can be read"),
                ));
                continue;
            };
            let size = f.bytes.len();
            match extract::extract_async(f.bytes, format, extract::Limits::default()).await {
                Ok(x) => {
                    let chars = x.markdown.chars().count();
                    let truncated = chars > MAX_ATTACHMENT_CHARS;
                    let text = if truncated {
                        x.markdown.chars().take(MAX_ATTACHMENT_CHARS).collect()
                    } else {
                        x.markdown
                    };
                    if text.trim().is_empty() {
                        errors.push(FieldError::new(
                            &path,
                            "empty",
                            format!("`{name}` has no text to read"),
                        ));
                        continue;
                    }
                    out.push(Attachment {
                        filename: name,
                        content_type: f.content_type,
                        size_bytes: size,
                        chars,
                        truncated,
                        text,
                    });
                }
                Err(e) => errors.push(FieldError::new(
                    &path,
                    "unreadable",
                    format!("`{name}` could not be read: {e}"),
                )),
            }
        }
        if errors.is_empty() { Ok(out) } else { Err(AppError::Validation(errors)) }
    }

    /// Adds read attachments to a conversation, before the run that answers about them.
    pub(crate) async fn store_attachments(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        attachments: &[Attachment],
    ) -> Result<(), AppError> {
        if attachments.is_empty() {
            return Ok(());
        }
        let rows: Vec<NewMessage> = attachments
            .iter()
            .map(|a| {
                let mut m = NewMessage::text(MessageRole::User, attachment_text(a));
                m.attachments = serde_json::json!([a]);
                m
            })
            .collect();
        self.store().append_messages(scope, conversation, &rows, now_ms()).await?;
        Ok(())
    }
}

/// How an attachment reads to the model.
fn attachment_text(a: &Attachment) -> String {
    let cut = if a.truncated { "\n[…the rest of the file was cut]" } else { "" };
    format!("[Attached file: {}]\n{}{cut}", a.filename, a.text)
}
