//! The dedicated writer thread: the only owner of tantivy's `IndexWriter`.
//!
//! It takes everything queued, applies it, logs the vector changes, commits once, reloads the
//! reader, updates the in-memory vectors, and only then acknowledges each request. Many tasks
//! ingesting at once therefore share commits (group commit), and a caller whose write returned
//! can search and see it.

use std::sync::Arc;
use std::sync::mpsc;

use domain::{DocumentId, KnowledgeBaseId, WorkspaceId};
use tantivy::IndexWriter;
use tokio::sync::oneshot;

use super::Shared;
use super::schema::{doc_key, kb_key};
use super::vectors::VectorOp;
use crate::{Chunk, KnowledgeError};

/// Most requests folded into one commit.
const MAX_BATCH: usize = 512;

/// One change to the index.
pub(crate) enum WriteOp {
    Replace {
        ws: WorkspaceId,
        kb: KnowledgeBaseId,
        doc: DocumentId,
        chunks: Vec<Chunk>,
        vector_ops: Vec<VectorOp>,
    },
    DeleteDocument {
        ws: WorkspaceId,
        kb: KnowledgeBaseId,
        doc: DocumentId,
    },
    DeleteKnowledgeBase {
        ws: WorkspaceId,
        kb: KnowledgeBaseId,
    },
}

enum Request {
    Write {
        ops: Vec<WriteOp>,
        ack: oneshot::Sender<Result<(), String>>,
    },
    /// Finish merges, release the index lock, stop.
    Close {
        ack: oneshot::Sender<()>,
    },
}

/// The sending side; dropping every clone stops the thread.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Request>,
}

impl WriterHandle {
    /// Queues `ops` and waits until they are committed and searchable.
    pub(crate) async fn submit(&self, ops: Vec<WriteOp>) -> Result<(), KnowledgeError> {
        let (ack, done) = oneshot::channel();
        self.tx.send(Request::Write { ops, ack }).map_err(|_| KnowledgeError::WriterGone)?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(KnowledgeError::Write(message)),
            Err(_) => Err(KnowledgeError::WriterGone),
        }
    }

    /// Stops the writer thread once the writes queued before are done.
    pub(crate) async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Request::Close { ack }).is_ok() {
            let _ = done.await;
        }
    }
}

pub(crate) fn spawn(shared: Arc<Shared>, writer: IndexWriter) -> WriterHandle {
    let (tx, rx) = mpsc::channel::<Request>();
    std::thread::Builder::new()
        .name("knowledge-writer".into())
        .spawn(move || run(shared, writer, rx))
        .expect("spawning the index writer thread");
    WriterHandle { tx }
}

fn run(shared: Arc<Shared>, mut writer: IndexWriter, rx: mpsc::Receiver<Request>) {
    let mut closing = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut ops = Vec::new();
        let mut acks = Vec::new();
        for request in batch {
            match request {
                Request::Write { ops: o, ack } => {
                    ops.extend(o);
                    acks.push(ack);
                }
                Request::Close { ack } => closing = Some(ack),
            }
        }
        if !acks.is_empty() {
            let result = apply(&shared, &mut writer, ops).map_err(|e| {
                tracing::error!(error = %e, "knowledge index write failed");
                if let Err(e) = writer.rollback() {
                    tracing::error!(error = %e, "knowledge index rollback failed");
                }
                e.to_string()
            });
            for ack in acks {
                let _ = ack.send(result.clone());
            }
        }
        if closing.is_some() {
            break;
        }
    }
    if let Err(e) = writer.wait_merging_threads() {
        tracing::warn!(error = %e, "knowledge index merge threads ended badly");
    }
    if let Some(ack) = closing {
        let _ = ack.send(());
    }
}

fn apply(
    shared: &Shared,
    writer: &mut IndexWriter,
    ops: Vec<WriteOp>,
) -> Result<(), KnowledgeError> {
    let f = shared.fields;
    let mut vector_ops = Vec::new();
    for op in ops {
        match op {
            WriteOp::Replace { ws, kb, doc, chunks, vector_ops: v } => {
                writer.delete_term(f.term(f.doc_key, &doc_key(ws, kb, doc)));
                for c in &chunks {
                    writer.add_document(f.chunk_document(ws, kb, c))?;
                }
                vector_ops.extend(v);
            }
            WriteOp::DeleteDocument { ws, kb, doc } => {
                writer.delete_term(f.term(f.doc_key, &doc_key(ws, kb, doc)));
                vector_ops.push(VectorOp::DeleteDoc { ws, kb, doc });
            }
            WriteOp::DeleteKnowledgeBase { ws, kb } => {
                writer.delete_term(f.term(f.kb_key, &kb_key(ws, kb)));
                vector_ops.push(VectorOp::DeleteKb { ws, kb });
            }
        }
    }
    // Vectors are logged first: after a crash between the two steps, vectors without chunks
    // are never returned (hits are read back from tantivy), while the opposite order could
    // leave searchable chunks whose vectors were lost.
    // Deletes are logged even without a model if an earlier run stored vectors.
    let has_vectors = !vector_ops.is_empty()
        && (shared.embedder.is_enabled()
            || shared.vectors.read().map_err(|_| KnowledgeError::WriterGone)?.dim().is_some());
    if has_vectors {
        shared.vectors.write().map_err(|_| KnowledgeError::WriterGone)?.log(&vector_ops)?;
    }
    writer.commit()?;
    shared.reader.reload()?;
    if has_vectors {
        shared.vectors.write().map_err(|_| KnowledgeError::WriterGone)?.apply_all(vector_ops)?;
    }
    Ok(())
}
