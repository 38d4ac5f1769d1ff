//! Receiving a file into the file store without holding it in memory: it is written to a
//! staging file (`<files>/.staging/`) as it arrives, hashed (SHA-256) and measured on the way,
//! and refused the moment it passes the size limit. An upload that is refused, fails or is
//! dropped removes its staging file; an accepted one is moved into place (a rename, so the
//! file store never holds half a file under a document's key).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::{App, AppError};

/// Bytes kept from the start of a file, for type detection.
const HEAD_BYTES: usize = 8192;

/// Why a chunk could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("the file is larger than the {limit}-byte upload limit")]
    TooLarge { limit: u64 },
    #[error("could not write the upload: {0}")]
    Io(#[from] std::io::Error),
}

/// A file being received.
pub struct StagedUpload {
    file: Option<tokio::fs::File>,
    staged: StagedFile,
    hasher: Sha256,
    limit: u64,
}

/// A received file waiting in the staging area, with its size, SHA-256 and first bytes. It
/// is removed when dropped unless it was moved into the file store.
#[derive(Debug)]
pub struct StagedFile {
    path: PathBuf,
    pub size: u64,
    /// SHA-256 (hex) of the bytes received.
    pub sha256: String,
    /// The first bytes, for type detection.
    pub head: Vec<u8>,
    kept: bool,
}

/// One received file.
pub struct Upload {
    pub filename: String,
    pub content_type: Option<String>,
    pub file: StagedFile,
}

impl StagedUpload {
    /// Appends a chunk; refuses (and the upload is to be dropped) past the size limit.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), StageError> {
        let size = self.staged.size + chunk.len() as u64;
        if size > self.limit {
            return Err(StageError::TooLarge { limit: self.limit });
        }
        let Some(file) = self.file.as_mut() else {
            return Err(StageError::Io(std::io::Error::other("the upload is closed")));
        };
        file.write_all(chunk).await?;
        self.hasher.update(chunk);
        if self.staged.head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - self.staged.head.len()).min(chunk.len());
            self.staged.head.extend_from_slice(&chunk[..take]);
        }
        self.staged.size = size;
        Ok(())
    }

    /// Flushes the file and returns it with its hash.
    pub async fn finish(mut self) -> Result<StagedFile, StageError> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
            file.sync_all().await?;
        }
        let hasher = std::mem::take(&mut self.hasher);
        let mut staged = std::mem::replace(
            &mut self.staged,
            StagedFile {
                path: PathBuf::new(),
                size: 0,
                sha256: String::new(),
                head: Vec::new(),
                kept: true,
            },
        );
        staged.sha256 = hex::encode(hasher.finalize());
        Ok(staged)
    }
}

impl StagedFile {
    /// Moves the file to `dest` (creating its folder); it is then no longer removed on drop.
    pub(crate) async fn keep_as(mut self, dest: &Path) -> std::io::Result<()> {
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::rename(&self.path, dest).await?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.kept && !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl App {
    /// Starts receiving a file into the staging area, refused past `limit` bytes.
    pub async fn begin_upload(&self, limit: u64) -> Result<StagedUpload, AppError> {
        let k = self.knowledge_services()?;
        let dir = k.files_dir.join(".staging");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| AppError::Internal(format!("could not create the staging area: {e}")))?;
        let path = dir.join(uuid::Uuid::now_v7().simple().to_string());
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| AppError::Internal(format!("could not stage the upload: {e}")))?;
        Ok(StagedUpload {
            file: Some(file),
            staged: StagedFile {
                path,
                size: 0,
                sha256: String::new(),
                head: Vec::new(),
                kept: false,
            },
            hasher: Sha256::new(),
            limit,
        })
    }

    /// Stages a local file (the command line's uploads), under the same limit as HTTP.
    pub async fn stage_local_file(&self, path: &Path, limit: u64) -> Result<StagedFile, String> {
        use tokio::io::AsyncReadExt;
        let mut src = tokio::fs::File::open(path).await.map_err(|e| e.to_string())?;
        let mut up = self.begin_upload(limit).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = src.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            up.write(&buf[..n]).await.map_err(|e| e.to_string())?;
        }
        up.finish().await.map_err(|e| e.to_string())
    }
}
