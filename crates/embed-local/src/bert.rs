//! A BERT encoder (the architecture of all-MiniLM-L6-v2 and its kin), one sequence at a time.
//!
//! One sequence per forward pass means no padding and no attention mask: every row is a real
//! token. Batches run their sequences in parallel instead (see `model.rs`). The arithmetic is
//! f32 throughout, in the order of the reference implementation (post-norm layers, exact GELU).

use std::path::Path;

use rayon::prelude::*;
use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;

use crate::LocalEmbedError;
use crate::kernels::{self, Packed, erf, from_bf16, linear, to_bf16};

/// The fields of a Hugging Face `config.json` this encoder uses.
#[derive(Debug, Deserialize)]
pub(crate) struct BertConfig {
    pub hidden_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_eps() -> f64 {
    1e-12
}

fn default_act() -> String {
    "gelu".into()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Activation {
    /// `x · Φ(x)` with the exact normal CDF (PyTorch's default `gelu`).
    Gelu,
    /// The tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    Relu,
}

impl Activation {
    fn apply(self, xs: &mut [f32]) {
        match self {
            Self::Gelu => xs.iter_mut().for_each(|x| {
                *x = 0.5 * *x * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
            }),
            Self::GeluTanh => xs.iter_mut().for_each(|x| {
                let inner = 0.797_884_6 * (*x + 0.044_715 * *x * *x * *x);
                *x = 0.5 * *x * (1.0 + inner.tanh());
            }),
            Self::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
        }
    }
}

/// A dense layer, its `[out, in]` weights packed in bfloat16.
struct Dense {
    w: Packed,
    b: Vec<f32>,
}

impl Dense {
    fn outputs(&self) -> usize {
        self.b.len()
    }

    /// `y = act(x · Wᵀ + b)`; with `split`, the outputs are shared between two threads, each
    /// reading half of the weights.
    fn forward(&self, x: &[f32], y: &mut [f32], split: bool, act: Option<Activation>) {
        let (k, p, n) = (self.w.inputs(), self.w.padded(), self.outputs());
        let rows = x.len() / k;
        let padded;
        let x = if p == k {
            x
        } else {
            let mut buf = vec![0f32; rows * p];
            for (dst, src) in buf.chunks_exact_mut(p).zip(x.chunks_exact(k)) {
                dst[..k].copy_from_slice(src);
            }
            padded = buf;
            &padded
        };
        let part = |start: usize, end: usize, out: &mut [f32]| {
            linear(x, self.w.rows(start, end), &self.b[start..end], out);
            if let Some(act) = act {
                act.apply(out);
            }
        };
        // Below ~1M multiply-adds the hand-off costs more than it saves.
        if split && rows * n * k >= 1 << 20 {
            split_columns(y, n, n / 2, |lo| part(0, n / 2, lo), |hi| part(n / 2, n, hi));
        } else {
            part(0, n, y);
        }
    }
}

/// Fills the `width`-column rows of `y` on two threads: `left` the first `at` columns, `right`
/// the rest, each into a buffer of its own, copied into place afterwards.
fn split_columns(
    y: &mut [f32],
    width: usize,
    at: usize,
    left: impl FnOnce(&mut [f32]) + Send,
    right: impl FnOnce(&mut [f32]) + Send,
) {
    let rows = y.len() / width;
    let (mut lo, mut hi) = (vec![0.0; rows * at], vec![0.0; rows * (width - at)]);
    rayon::join(|| left(&mut lo), || right(&mut hi));
    for ((row, l), h) in
        y.chunks_exact_mut(width).zip(lo.chunks_exact(at)).zip(hi.chunks_exact(width - at))
    {
        row[..at].copy_from_slice(l);
        row[at..].copy_from_slice(h);
    }
}

struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    fn apply(&self, rows: &mut [f32], eps: f32) {
        let h = self.gamma.len();
        for row in rows.chunks_exact_mut(h) {
            let mean = row.iter().sum::<f32>() / h as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h as f32;
            let inv = 1.0 / (var + eps).sqrt();
            for ((v, g), b) in row.iter_mut().zip(&self.gamma).zip(&self.beta) {
                *v = (*v - mean) * inv * g + b;
            }
        }
    }
}

struct Layer {
    /// Query, key and value in one `[3h, h]` matrix.
    qkv: Dense,
    attn_out: Dense,
    attn_norm: Norm,
    up: Dense,
    down: Dense,
    out_norm: Norm,
}

/// The encoder's weights.
pub(crate) struct Bert {
    hidden: usize,
    heads: usize,
    eps: f32,
    act: Activation,
    max_positions: usize,
    /// bfloat16, like the dense weights (half the memory; only looked up).
    word: Vec<u16>,
    position: Vec<f32>,
    /// Token type 0 (single-segment inputs only).
    segment: Vec<f32>,
    embed_norm: Norm,
    layers: Vec<Layer>,
}

fn config_error(path: &Path, reason: impl Into<String>) -> LocalEmbedError {
    LocalEmbedError::Config { path: path.to_owned(), reason: reason.into() }
}

/// Reads one tensor as f32, checking its shape.
fn tensor(st: &SafeTensors<'_>, name: &str, shape: &[usize]) -> Result<Vec<f32>, LocalEmbedError> {
    let view =
        st.tensor(name).map_err(|_| LocalEmbedError::Weights(format!("no tensor {name}")))?;
    if view.shape() != shape {
        return Err(LocalEmbedError::Weights(format!(
            "{name} has shape {:?}, expected {shape:?}",
            view.shape()
        )));
    }
    let data = view.data();
    let out: Vec<f32> = match view.dtype() {
        Dtype::F32 => {
            data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        }
        Dtype::BF16 => {
            data.chunks_exact(2).map(|b| from_bf16(u16::from_le_bytes([b[0], b[1]]))).collect()
        }
        Dtype::F16 => {
            data.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()
        }
        other => {
            return Err(LocalEmbedError::Weights(format!(
                "{name} is {other:?}; only F32, F16 and BF16 weights are supported"
            )));
        }
    };
    Ok(out)
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = frac · 2⁻²⁴.
            let v = frac as f32 / (1u32 << 24) as f32;
            return if sign != 0 { -v } else { v };
        }
        (0x1f, _) => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

impl Bert {
    /// Loads `model.safetensors` (with or without a `bert.` prefix on the names).
    pub(crate) fn load(
        config_path: &Path,
        config: &BertConfig,
        weights: &[u8],
    ) -> Result<Self, LocalEmbedError> {
        let act = match config.hidden_act.as_str() {
            "gelu" => Activation::Gelu,
            "gelu_new" | "gelu_pytorch_tanh" => Activation::GeluTanh,
            "relu" => Activation::Relu,
            other => {
                return Err(config_error(config_path, format!("unsupported hidden_act {other}")));
            }
        };
        if let Some(kind) = config.position_embedding_type.as_deref().filter(|k| *k != "absolute") {
            return Err(config_error(
                config_path,
                format!("unsupported position_embedding_type {kind}"),
            ));
        }
        let (h, heads) = (config.hidden_size, config.num_attention_heads);
        if h == 0 || heads == 0 || h % heads != 0 {
            return Err(config_error(
                config_path,
                "hidden_size must be a multiple of num_attention_heads",
            ));
        }
        let st = SafeTensors::deserialize(weights)
            .map_err(|e| LocalEmbedError::Weights(format!("model.safetensors: {e}")))?;
        let prefix =
            if st.tensor("embeddings.word_embeddings.weight").is_ok() { "" } else { "bert." };
        let t = |name: &str, shape: &[usize]| tensor(&st, &format!("{prefix}{name}"), shape);
        let word_shape = st
            .tensor(&format!("{prefix}embeddings.word_embeddings.weight"))
            .map_err(|_| LocalEmbedError::Weights("no embeddings.word_embeddings.weight".into()))?
            .shape()
            .to_vec();
        if word_shape.len() != 2 || word_shape[1] != h {
            return Err(LocalEmbedError::Weights(format!(
                "word embeddings have shape {word_shape:?}"
            )));
        }
        let norm = |name: &str| -> Result<Norm, LocalEmbedError> {
            Ok(Norm {
                gamma: t(&format!("{name}.weight"), &[h])?,
                beta: t(&format!("{name}.bias"), &[h])?,
            })
        };
        let dense =
            |names: &[String], out: usize, inputs: usize| -> Result<Dense, LocalEmbedError> {
                let mut w = Vec::with_capacity(names.len() * out * inputs);
                let mut b = Vec::with_capacity(names.len() * out);
                for name in names {
                    w.extend(t(&format!("{name}.weight"), &[out, inputs])?);
                    b.extend(t(&format!("{name}.bias"), &[out])?);
                }
                Ok(Dense { w: Packed::new(&w, inputs), b })
            };
        let inter = config.intermediate_size;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let qkv = ["query", "key", "value"].map(|n| format!("{p}.attention.self.{n}"));
            layers.push(Layer {
                qkv: dense(&qkv, h, h)?,
                attn_out: dense(&[format!("{p}.attention.output.dense")], h, h)?,
                attn_norm: norm(&format!("{p}.attention.output.LayerNorm"))?,
                up: dense(&[format!("{p}.intermediate.dense")], inter, h)?,
                down: dense(&[format!("{p}.output.dense")], h, inter)?,
                out_norm: norm(&format!("{p}.output.LayerNorm"))?,
            });
        }
        let max_positions = config.max_position_embeddings;
        let segments = t("embeddings.token_type_embeddings.weight", &[2, h])
            .or_else(|_| t("embeddings.token_type_embeddings.weight", &[1, h]))?;
        Ok(Self {
            hidden: h,
            heads,
            eps: config.layer_norm_eps as f32,
            act,
            max_positions,
            word: t("embeddings.word_embeddings.weight", &word_shape)?
                .into_iter()
                .map(to_bf16)
                .collect(),
            position: t("embeddings.position_embeddings.weight", &[max_positions, h])?,
            segment: segments[..h].to_vec(),
            embed_norm: norm("embeddings.LayerNorm")?,
            layers,
        })
    }

    /// Width of the hidden states (and of the pooled vector).
    pub(crate) fn hidden(&self) -> usize {
        self.hidden
    }

    /// Longest input the position table allows.
    pub(crate) fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Mean-pooled, L2-normalised embedding of one tokenised sequence. With `split`, large
    /// products use both halves of the machine (for a lone query; batches parallelise across
    /// sequences instead).
    pub(crate) fn embed(&self, ids: &[u32], split: bool) -> Result<Vec<f32>, LocalEmbedError> {
        let h = self.hidden;
        let vocab = self.word.len() / h;
        let m = ids.len().min(self.max_positions);
        if m == 0 {
            return Err(LocalEmbedError::Tokenizer("the text produced no tokens".into()));
        }
        let mut x = vec![0f32; m * h];
        for (pos, (row, id)) in x.chunks_exact_mut(h).zip(ids).enumerate() {
            let id = *id as usize;
            if id >= vocab {
                return Err(LocalEmbedError::Tokenizer(format!(
                    "token id {id} is outside the vocabulary of {vocab}"
                )));
            }
            let word = &self.word[id * h..(id + 1) * h];
            let position = &self.position[pos * h..(pos + 1) * h];
            for (j, v) in row.iter_mut().enumerate() {
                *v = from_bf16(word[j]) + position[j] + self.segment[j];
            }
        }
        self.embed_norm.apply(&mut x, self.eps);

        let inter = self.layers.first().map_or(0, |l| l.up.outputs());
        let mut qkv = vec![0f32; m * 3 * h];
        let mut ctx = vec![0f32; m * h];
        let mut tmp = vec![0f32; m * h];
        let mut up = vec![0f32; m * inter];
        for layer in &self.layers {
            layer.qkv.forward(&x, &mut qkv, split, None);
            if split {
                let (half, d) = (self.heads / 2, h / self.heads);
                split_columns(
                    &mut ctx,
                    h,
                    half * d,
                    |lo| self.attention(&qkv, m, 0..half, lo),
                    |hi| self.attention(&qkv, m, half..self.heads, hi),
                );
            } else {
                self.attention(&qkv, m, 0..self.heads, &mut ctx);
            }
            layer.attn_out.forward(&ctx, &mut tmp, split, None);
            residual_norm(&mut x, &tmp, &layer.attn_norm, self.eps);
            layer.up.forward(&x, &mut up, split, Some(self.act));
            layer.down.forward(&up, &mut tmp, split, None);
            residual_norm(&mut x, &tmp, &layer.out_norm, self.eps);
        }

        let mut mean = vec![0f32; h];
        for row in x.chunks_exact(h) {
            for (acc, v) in mean.iter_mut().zip(row) {
                *acc += v;
            }
        }
        let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        // (Σ/m)/‖Σ/m‖ = Σ/‖Σ‖: the division by m cancels.
        mean.iter_mut().for_each(|v| *v /= norm);
        Ok(mean)
    }

    /// Scaled dot-product self-attention for `heads`; `qkv` rows are `[q | k | v]`, `ctx` rows
    /// hold the context of those heads side by side.
    fn attention(&self, qkv: &[f32], m: usize, heads: std::ops::Range<usize>, ctx: &mut [f32]) {
        kernels::attention(qkv, m, self.hidden, self.hidden / self.heads, heads, ctx);
    }

    /// Embeds several sequences. A lone one (a search query) splits its larger products in
    /// two on `query_pool`; several are encoded side by side on `batch_pool`. Separate pools
    /// keep a query from queueing behind an ingestion batch: the OS shares the cores instead.
    pub(crate) fn embed_many(
        &self,
        seqs: &[Vec<u32>],
        query_pool: &rayon::ThreadPool,
        batch_pool: &rayon::ThreadPool,
    ) -> Result<Vec<Vec<f32>>, LocalEmbedError> {
        // Run inside the pool, so that a split product's joins happen on its workers rather
        // than being handed over from an outside thread each time.
        if let [one] = seqs {
            return query_pool.install(|| Ok(vec![self.embed(one, true)?]));
        }
        batch_pool.install(|| seqs.par_iter().map(|ids| self.embed(ids, false)).collect())
    }
}

/// `x = norm(x + delta)`.
fn residual_norm(x: &mut [f32], delta: &[f32], norm: &Norm, eps: f32) {
    for (v, d) in x.iter_mut().zip(delta) {
        *v += d;
    }
    norm.apply(x, eps);
}

#[cfg(test)]
mod tests {
    use super::f16_to_f32;

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
    }
}
