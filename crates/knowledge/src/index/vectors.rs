//! Dense vectors beside the tantivy index: i8-quantised, searched by brute force, partitioned
//! by (workspace, knowledge base) so a search only ever touches the caller's own vectors.
//!
//! Persistence is an append-only log (`vectors.log`) of puts and deletes, replayed at open and
//! compacted when mostly dead. Quantisation keeps one scale per vector (max |x| / 127), which
//! costs well under 1% of cosine accuracy and reads a quarter of the memory of f32 per query.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use domain::{ChunkId, DocumentId, KnowledgeBaseId, WorkspaceId};
use uuid::Uuid;

use crate::KnowledgeError;

const MAGIC: &[u8; 8] = b"EFVEC01\n";
const PUT: u8 = 1;
const DELETE_DOC: u8 = 2;
const DELETE_KB: u8 = 3;

/// A change to the vector store, as logged.
#[derive(Debug, Clone)]
pub(crate) enum VectorOp {
    Put { ws: WorkspaceId, kb: KnowledgeBaseId, doc: DocumentId, chunk: ChunkId, vector: Quantized },
    DeleteDoc { ws: WorkspaceId, kb: KnowledgeBaseId, doc: DocumentId },
    DeleteKb { ws: WorkspaceId, kb: KnowledgeBaseId },
}

/// A quantised unit vector.
#[derive(Debug, Clone)]
pub(crate) struct Quantized {
    pub scale: f32,
    pub codes: Vec<i8>,
}

impl Quantized {
    pub(crate) fn from_f32(v: &[f32]) -> Self {
        let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        let codes = v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect();
        Self { scale, codes }
    }
}

#[derive(Default)]
struct Partition {
    chunks: Vec<ChunkId>,
    docs: Vec<DocumentId>,
    scales: Vec<f32>,
    codes: Vec<i8>,
}

impl Partition {
    fn retain(&mut self, dim: usize, keep: impl Fn(DocumentId) -> bool) {
        let mut w = 0;
        for r in 0..self.chunks.len() {
            if keep(self.docs[r]) {
                if w != r {
                    self.chunks[w] = self.chunks[r];
                    self.docs[w] = self.docs[r];
                    self.scales[w] = self.scales[r];
                    self.codes.copy_within(r * dim..(r + 1) * dim, w * dim);
                }
                w += 1;
            }
        }
        self.chunks.truncate(w);
        self.docs.truncate(w);
        self.scales.truncate(w);
        self.codes.truncate(w * dim);
    }
}

/// The in-memory store plus its log.
pub(crate) struct VectorStore {
    path: PathBuf,
    mem: Mem,
    log: BufWriter<File>,
    log_records: usize,
}

/// The live vectors.
#[derive(Default)]
struct Mem {
    dim: Option<usize>,
    parts: HashMap<(WorkspaceId, KnowledgeBaseId), Partition>,
}

impl Mem {
    fn apply(&mut self, op: VectorOp) {
        match op {
            VectorOp::Put { ws, kb, doc, chunk, vector } => {
                let dim = *self.dim.get_or_insert(vector.codes.len());
                if vector.codes.len() != dim {
                    return;
                }
                let p = self.parts.entry((ws, kb)).or_default();
                p.chunks.push(chunk);
                p.docs.push(doc);
                p.scales.push(vector.scale);
                p.codes.extend_from_slice(&vector.codes);
            }
            VectorOp::DeleteDoc { ws, kb, doc } => {
                if let (Some(p), Some(dim)) = (self.parts.get_mut(&(ws, kb)), self.dim) {
                    p.retain(dim, |d| d != doc);
                }
            }
            VectorOp::DeleteKb { ws, kb } => {
                self.parts.remove(&(ws, kb));
            }
        }
    }
}

/// Integer dot product of two code vectors.
///
/// Kept out of line with fixed-size lanes: inlined into the scan loop, LLVM spilled the
/// accumulators to the stack and ran it scalar, five times slower.
#[inline(never)]
fn dot(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: i32 =
        ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| i32::from(*x) * i32::from(*y)).sum();
    for (x, y) in ca.zip(cb) {
        let (Ok(x), Ok(y)) = (<&[i8; 16]>::try_from(x), <&[i8; 16]>::try_from(y)) else {
            continue;
        };
        for i in 0..16 {
            acc[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    acc.iter().sum::<i32>() + tail
}

impl VectorStore {
    /// Opens (or creates) `dir/vectors.log` and replays it.
    pub(crate) fn open(dir: &Path) -> Result<Self, KnowledgeError> {
        let path = dir.join("vectors.log");
        let io = || KnowledgeError::io(&path);
        let mut mem = Mem::default();
        let mut log_records = 0;
        let mut valid_len = MAGIC.len() as u64;
        let existing = std::fs::metadata(&path).map(|m| m.len() > 0).unwrap_or(false);
        if existing {
            let mut r = BufReader::new(File::open(&path).map_err(io())?);
            let mut magic = [0u8; 8];
            r.read_exact(&mut magic).map_err(io())?;
            if &magic != MAGIC {
                return Err(KnowledgeError::Corrupt { path, reason: "bad magic".into() });
            }
            // A torn last record (crash mid-append) is dropped; everything before it stands.
            while let Some((op, len)) = read_op(&mut r) {
                mem.apply(op);
                log_records += 1;
                valid_len += len;
            }
        }
        let mut file =
            OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io())?;
        if existing {
            file.set_len(valid_len).map_err(io())?;
        } else {
            file.write_all(MAGIC).map_err(io())?;
        }
        file.seek(SeekFrom::End(0)).map_err(io())?;
        let mut store = Self { path: path.clone(), mem, log: BufWriter::new(file), log_records };
        if store.log_records > 2 * store.len() + 10_000 {
            store.compact()?;
        }
        Ok(store)
    }

    /// Number of live vectors.
    pub(crate) fn len(&self) -> usize {
        self.mem.parts.values().map(|p| p.chunks.len()).sum()
    }

    /// The dimension, once the first vector has arrived.
    pub(crate) fn dim(&self) -> Option<usize> {
        self.mem.dim
    }

    /// Appends ops to the log and syncs it (call before the tantivy commit).
    pub(crate) fn log(&mut self, ops: &[VectorOp]) -> Result<(), KnowledgeError> {
        let path = self.path.clone();
        for op in ops {
            write_op(&mut self.log, op).map_err(KnowledgeError::io(&path))?;
        }
        self.log.flush().map_err(KnowledgeError::io(&path))?;
        self.log.get_ref().sync_data().map_err(KnowledgeError::io(&path))?;
        self.log_records += ops.len();
        Ok(())
    }

    /// Applies ops in memory (after they are logged).
    pub(crate) fn apply_all(&mut self, ops: Vec<VectorOp>) -> Result<(), KnowledgeError> {
        for op in ops {
            self.mem.apply(op);
        }
        if self.log_records > 2 * self.len() + 10_000 {
            self.compact()?;
        }
        Ok(())
    }

    /// Checks a vector's dimension against the store's.
    pub(crate) fn check_dim(&self, dim: usize) -> Result<(), KnowledgeError> {
        match self.mem.dim {
            Some(d) if d != dim => Err(KnowledgeError::Embedding(format!(
                "vector has {dim} dimensions but the index holds {d}-dimensional vectors"
            ))),
            _ => Ok(()),
        }
    }

    /// The `n` nearest chunks of the given knowledge bases by cosine, best first.
    pub(crate) fn search(
        &self,
        ws: WorkspaceId,
        kbs: &[KnowledgeBaseId],
        query: &[f32],
        n: usize,
    ) -> Vec<(ChunkId, f32)> {
        let Some(dim) = self.mem.dim else { return Vec::new() };
        if query.len() != dim || n == 0 {
            return Vec::new();
        }
        let q = Quantized::from_f32(query);
        let capacity = kbs
            .iter()
            .filter_map(|kb| self.mem.parts.get(&(ws, *kb)))
            .map(|p| p.chunks.len())
            .sum();
        let mut scored: Vec<(ChunkId, f32)> = Vec::with_capacity(capacity);
        for kb in kbs {
            let Some(p) = self.mem.parts.get(&(ws, *kb)) else { continue };
            for (i, codes) in p.codes.chunks_exact(dim).enumerate() {
                let s = dot(&q.codes, codes) as f32 * q.scale * p.scales[i];
                scored.push((p.chunks[i], s));
            }
        }
        let by_score = |a: &(ChunkId, f32), b: &(ChunkId, f32)| b.1.total_cmp(&a.1);
        if scored.len() > n {
            scored.select_nth_unstable_by(n - 1, by_score);
            scored.truncate(n);
        }
        scored.sort_unstable_by(by_score);
        scored
    }

    /// Rewrites the log with only the live vectors.
    fn compact(&mut self) -> Result<(), KnowledgeError> {
        let tmp = self.path.with_extension("log.tmp");
        let file = File::create(&tmp).map_err(KnowledgeError::io(&tmp))?;
        let mut w = BufWriter::new(file);
        w.write_all(MAGIC).map_err(KnowledgeError::io(&tmp))?;
        let mut records = 0;
        if let Some(dim) = self.mem.dim {
            for ((ws, kb), p) in &self.mem.parts {
                for i in 0..p.chunks.len() {
                    let op = VectorOp::Put {
                        ws: *ws,
                        kb: *kb,
                        doc: p.docs[i],
                        chunk: p.chunks[i],
                        vector: Quantized {
                            scale: p.scales[i],
                            codes: p.codes[i * dim..(i + 1) * dim].to_vec(),
                        },
                    };
                    write_op(&mut w, &op).map_err(KnowledgeError::io(&tmp))?;
                    records += 1;
                }
            }
        }
        w.flush().map_err(KnowledgeError::io(&tmp))?;
        w.get_ref().sync_all().map_err(KnowledgeError::io(&tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(KnowledgeError::io(&self.path))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(KnowledgeError::io(&self.path))?;
        self.log = BufWriter::new(file);
        self.log_records = records;
        Ok(())
    }
}

fn write_op(w: &mut impl Write, op: &VectorOp) -> std::io::Result<()> {
    match op {
        VectorOp::Put { ws, kb, doc, chunk, vector } => {
            w.write_all(&[PUT])?;
            for id in [ws.uuid(), kb.uuid(), doc.uuid(), chunk.uuid()] {
                w.write_all(id.as_bytes())?;
            }
            w.write_all(&(vector.codes.len() as u32).to_le_bytes())?;
            w.write_all(&vector.scale.to_le_bytes())?;
            let bytes: Vec<u8> = vector.codes.iter().map(|c| *c as u8).collect();
            w.write_all(&bytes)
        }
        VectorOp::DeleteDoc { ws, kb, doc } => {
            w.write_all(&[DELETE_DOC])?;
            for id in [ws.uuid(), kb.uuid(), doc.uuid()] {
                w.write_all(id.as_bytes())?;
            }
            Ok(())
        }
        VectorOp::DeleteKb { ws, kb } => {
            w.write_all(&[DELETE_KB])?;
            w.write_all(ws.uuid().as_bytes())?;
            w.write_all(kb.uuid().as_bytes())
        }
    }
}

fn read_uuid(r: &mut impl Read) -> Option<Uuid> {
    let mut b = [0u8; 16];
    r.read_exact(&mut b).ok()?;
    Some(Uuid::from_bytes(b))
}

/// Reads one op and its length in bytes; `None` at the end or at a torn record.
fn read_op(r: &mut impl Read) -> Option<(VectorOp, u64)> {
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag).ok()?;
    match tag[0] {
        PUT => {
            let (ws, kb, doc, chunk) = (read_uuid(r)?, read_uuid(r)?, read_uuid(r)?, read_uuid(r)?);
            let mut head = [0u8; 8];
            r.read_exact(&mut head).ok()?;
            let dim = u32::from_le_bytes(head[..4].try_into().ok()?) as usize;
            let scale = f32::from_le_bytes(head[4..].try_into().ok()?);
            let mut bytes = vec![0u8; dim];
            r.read_exact(&mut bytes).ok()?;
            let op = VectorOp::Put {
                ws: WorkspaceId::from_uuid(ws),
                kb: KnowledgeBaseId::from_uuid(kb),
                doc: DocumentId::from_uuid(doc),
                chunk: ChunkId::from_uuid(chunk),
                vector: Quantized { scale, codes: bytes.into_iter().map(|b| b as i8).collect() },
            };
            Some((op, 1 + 64 + 8 + dim as u64))
        }
        DELETE_DOC => {
            let (ws, kb, doc) = (read_uuid(r)?, read_uuid(r)?, read_uuid(r)?);
            let op = VectorOp::DeleteDoc {
                ws: WorkspaceId::from_uuid(ws),
                kb: KnowledgeBaseId::from_uuid(kb),
                doc: DocumentId::from_uuid(doc),
            };
            Some((op, 1 + 48))
        }
        DELETE_KB => {
            let (ws, kb) = (read_uuid(r)?, read_uuid(r)?);
            let op = VectorOp::DeleteKb {
                ws: WorkspaceId::from_uuid(ws),
                kb: KnowledgeBaseId::from_uuid(kb),
            };
            Some((op, 1 + 32))
        }
        _ => None,
    }
}
