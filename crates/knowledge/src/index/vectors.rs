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

/// Vectors from which one search scans on two threads.
const PARALLEL_SCAN_MIN: usize = 32_768;

/// A score and the chunk it belongs to, ordered by score (for the top-n heap).
struct Scored(f32, ChunkId);

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0).is_eq()
    }
}

impl Eq for Scored {}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The `n` best of the given rows, unordered: a bounded min-heap, so a scan of 100k vectors
/// allocates `n` entries rather than 100k.
fn top_n(
    q: &Quantized,
    dim: usize,
    slices: &[(&Partition, std::ops::Range<usize>)],
    n: usize,
) -> Vec<(ChunkId, f32)> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut heap: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(n + 1);
    for (p, rows) in slices {
        let codes = &p.codes[rows.start * dim..rows.end * dim];
        for (r, v) in rows.clone().zip(codes.chunks_exact(dim)) {
            let s = dot(&q.codes, v) as f32 * q.scale * p.scales[r];
            if heap.len() < n {
                heap.push(Reverse(Scored(s, p.chunks[r])));
            } else if heap.peek().is_some_and(|worst| s > worst.0.0) {
                heap.pop();
                heap.push(Reverse(Scored(s, p.chunks[r])));
            }
        }
    }
    heap.into_iter().map(|Reverse(Scored(s, c))| (c, s)).collect()
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
        let parts: Vec<&Partition> =
            kbs.iter().filter_map(|kb| self.mem.parts.get(&(ws, *kb))).collect();
        let total: usize = parts.iter().map(|p| p.chunks.len()).sum();
        let mut best = if total >= PARALLEL_SCAN_MIN {
            // Large enough that a second thread pays for itself: each takes half of every
            // partition.
            let first: Vec<_> = parts.iter().map(|p| (*p, 0..p.chunks.len() / 2)).collect();
            let second: Vec<_> =
                parts.iter().map(|p| (*p, p.chunks.len() / 2..p.chunks.len())).collect();
            std::thread::scope(|scope| {
                let other = scope.spawn(|| top_n(&q, dim, &second, n));
                let mut mine = top_n(&q, dim, &first, n);
                mine.extend(other.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
                mine
            })
        } else {
            let whole: Vec<_> = parts.iter().map(|p| (*p, 0..p.chunks.len())).collect();
            top_n(&q, dim, &whole, n)
        };
        best.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        best.truncate(n);
        best
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

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(seed: &mut u64, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        crate::embed::normalize(&mut v);
        v
    }

    /// Large enough to take the two-thread path, across two knowledge bases (and a third
    /// that must not be searched), against a plain sort of every score.
    #[test]
    fn the_split_scan_finds_the_same_top_n_as_a_full_sort() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = VectorStore::open(dir.path()).unwrap();
        let (ws, kbs) = (WorkspaceId::new(), [KnowledgeBaseId::new(), KnowledgeBaseId::new()]);
        let other = KnowledgeBaseId::new();
        let mut seed = 0x2545_F491_4F6C_DD1D;
        let dim = 16;
        let mut ops = Vec::new();
        let mut expected = Vec::new();
        for i in 0..(PARALLEL_SCAN_MIN + 5_000) {
            let kb = if i % 3 == 0 { other } else { kbs[i % 2] };
            let chunk = ChunkId::new();
            let vector = Quantized::from_f32(&unit(&mut seed, dim));
            if kb != other {
                expected.push((chunk, vector.clone()));
            }
            ops.push(VectorOp::Put { ws, kb, doc: DocumentId::new(), chunk, vector });
        }
        store.apply_all(ops).unwrap();
        let query = unit(&mut seed, dim);
        let q = Quantized::from_f32(&query);
        let mut all: Vec<(ChunkId, f32)> = expected
            .iter()
            .map(|(c, v)| (*c, dot(&q.codes, &v.codes) as f32 * q.scale * v.scale))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        let found = store.search(ws, &kbs, &query, 50);
        assert_eq!(found.len(), 50);
        for (got, want) in found.iter().zip(&all) {
            assert_eq!(got.1, want.1, "scores in order");
        }
        let found: std::collections::HashSet<ChunkId> = found.iter().map(|h| h.0).collect();
        let ties = all[49].1;
        for (c, s) in all.iter().take_while(|(_, s)| *s > ties) {
            assert!(found.contains(c), "missing a hit of score {s}");
        }
    }
}
