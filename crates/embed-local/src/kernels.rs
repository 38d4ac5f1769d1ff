//! The encoder's hot loops: `y = x · Wᵀ + b` for a few rows of `x` with `W` in bfloat16,
//! self-attention, and the branch-free `erf` and `exp` they need.
//!
//! A query is 10–60 word pieces, so `x` has few rows while `W` is large: the cost is reading
//! `W`, not multiplying. General GEMM libraries repack `W` on every call, which for so few
//! rows costs as much as the arithmetic. Here `W` is packed once, at load, in bfloat16 (half
//! the bytes of f32; all-MiniLM-L6-v2's layers then fit in a server's L3 cache), laid out so
//! that one 32-bit lane holds two weights `SIMD width` apart: a shift and a mask turn a loaded
//! vector into two f32 vectors. Each output is then a dot product of two contiguous rows,
//! computed in 2 × 4 register blocks with fused multiply-adds. `pulp` picks AVX2/FMA or
//! AVX-512 at run time through a safe interface; other CPUs get the portable loop.
//!
//! Rounding the weights to bfloat16 moves all-MiniLM-L6-v2's embeddings by a cosine of about
//! 3·10⁻⁵ (the reference test in `tests/local_model.rs` holds them to 10⁻³).

use pulp::{Arch, Simd, WithSimd};

/// Rows of `x` per block.
const XR: usize = 2;
/// Rows of `W` (outputs) per block.
const WR: usize = 4;

/// The f32 SIMD width `pulp` picks on this CPU (1 when it falls back to scalar code).
fn lanes() -> usize {
    struct Lanes;
    impl WithSimd for Lanes {
        type Output = usize;
        #[inline(always)]
        fn with_simd<S: Simd>(self, _: S) -> usize {
            S::F32_LANES
        }
    }
    Arch::new().dispatch(Lanes)
}

/// Rounds to the nearest bfloat16 (ties to even), as its 16 bits.
pub(crate) fn to_bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    if v.is_nan() {
        return 0x7fc0;
    }
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

/// bfloat16 bits back to f32 (exact).
pub(crate) fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// A weight matrix `[outputs, inputs]` packed for [`linear`].
pub(crate) struct Packed {
    /// Per row, `padded / 2` lanes: lane `g·L + i` holds input `g·2L + i` in its low half and
    /// input `g·2L + L + i` in its high half (`L` = [`lanes`]).
    words: Vec<u32>,
    lanes: usize,
    inputs: usize,
    /// `inputs` rounded up to a multiple of `2L`; the padding weights are zero.
    padded: usize,
}

impl Packed {
    /// Packs row-major f32 weights of `inputs` columns for this CPU's SIMD width.
    pub(crate) fn new(w: &[f32], inputs: usize) -> Self {
        let lanes = lanes();
        let group = 2 * lanes;
        let padded = inputs.div_ceil(group) * group;
        let rows = w.len() / inputs.max(1);
        let mut words = Vec::with_capacity(rows * padded / 2);
        for row in w.chunks_exact(inputs.max(1)) {
            let at = |i: usize| row.get(i).copied().map_or(0, to_bf16);
            for g in 0..padded / group {
                for i in 0..lanes {
                    let lo = at(g * group + i);
                    let hi = at(g * group + lanes + i);
                    words.push(u32::from(lo) | (u32::from(hi) << 16));
                }
            }
        }
        Self { words, lanes, inputs, padded }
    }

    /// Rows `start..end` only (for splitting work between threads).
    pub(crate) fn rows(&self, start: usize, end: usize) -> PackedRows<'_> {
        let w = self.padded / 2;
        PackedRows {
            words: &self.words[start * w..end * w],
            lanes: self.lanes,
            padded: self.padded,
        }
    }

    pub(crate) fn inputs(&self) -> usize {
        self.inputs
    }

    pub(crate) fn padded(&self) -> usize {
        self.padded
    }

    /// Weight `(row, col)`, unpacked (for tests and the scalar path).
    #[cfg(test)]
    fn get(&self, row: usize, col: usize) -> f32 {
        self.rows(0, self.words.len() / (self.padded / 2)).get(row, col)
    }
}

/// A run of rows of a [`Packed`] matrix.
#[derive(Clone, Copy)]
pub(crate) struct PackedRows<'a> {
    words: &'a [u32],
    lanes: usize,
    padded: usize,
}

impl PackedRows<'_> {
    fn row(&self, r: usize) -> &[u32] {
        let w = self.padded / 2;
        &self.words[r * w..(r + 1) * w]
    }

    fn get(&self, row: usize, col: usize) -> f32 {
        let group = 2 * self.lanes;
        let (g, i) = (col / group, col % group);
        let word = self.row(row)[g * self.lanes + i % self.lanes];
        from_bf16(if i < self.lanes { word as u16 } else { (word >> 16) as u16 })
    }
}

/// `y[i][o] = b[o] + Σₖ x[i][k] · w[o][k]` for the rows `o` of `w`.
///
/// `x` is `m × padded` row-major (zero past the real inputs); `y` is `m × b.len()`.
pub(crate) fn linear(x: &[f32], w: PackedRows<'_>, b: &[f32], y: &mut [f32]) {
    debug_assert_eq!(w.words.len(), b.len() * w.padded / 2);
    debug_assert_eq!(x.len() / w.padded * b.len(), y.len());
    Arch::new().dispatch(Linear { x, w, b, y });
}

struct Linear<'a> {
    x: &'a [f32],
    w: PackedRows<'a>,
    b: &'a [f32],
    y: &'a mut [f32],
}

impl WithSimd for Linear<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { x, w, b, y } = self;
        let (n, k) = (b.len(), w.padded);
        if k == 0 || n == 0 {
            return;
        }
        let m = x.len() / k;
        if S::F32_LANES != w.lanes {
            // Packed for another width (cannot happen on one machine): the plain loop.
            for i in 0..m {
                for o in 0..n {
                    let dot: f32 = (0..k).map(|c| x[i * k + c] * w.get(o, c)).sum();
                    y[i * n + o] = dot + b[o];
                }
            }
            return;
        }
        let mut o = 0;
        while o < n {
            let nb = (n - o).min(WR);
            // A short last block repeats its last row; the extra results are dropped.
            let wr: [&[u32]; WR] = std::array::from_fn(|j| w.row(o + j.min(nb - 1)));
            let mut i = 0;
            while i < m {
                let mb = (m - i).min(XR);
                let xr: [&[f32]; XR] = std::array::from_fn(|r| {
                    &x[(i + r.min(mb - 1)) * k..(i + r.min(mb - 1) + 1) * k]
                });
                let acc = block(simd, xr, wr);
                for (r, sums) in acc.iter().enumerate().take(mb) {
                    let out = &mut y[(i + r) * n + o..(i + r) * n + o + nb];
                    for ((slot, sum), bias) in out.iter_mut().zip(sums).zip(&b[o..o + nb]) {
                        *slot = sum + bias;
                    }
                }
                i += mb;
            }
            o += nb;
        }
    }
}

/// The dot products of `XR` rows of `x` with `WR` packed rows of `W`.
#[inline(always)]
fn block<S: Simd>(simd: S, x: [&[f32]; XR], w: [&[u32]; WR]) -> [[f32; WR]; XR] {
    let (x0, _) = S::as_simd_f32s(x[0]);
    let (x1, _) = S::as_simd_f32s(x[1]);
    let (w0, _) = S::as_simd_u32s(w[0]);
    let (w1, _) = S::as_simd_u32s(w[1]);
    let (w2, _) = S::as_simd_u32s(w[2]);
    let (w3, _) = S::as_simd_u32s(w[3]);
    let groups = w0.len();
    assert!(
        x0.len() == 2 * groups
            && x1.len() == 2 * groups
            && w1.len() == groups
            && w2.len() == groups
            && w3.len() == groups
    );
    let zero = simd.splat_f32s(0.0);
    let high = simd.splat_u32s(0xffff_0000);
    let sixteen = simd.splat_u32s(16);
    let mut a = [[zero; WR]; XR];
    for g in 0..groups {
        let xa = [x0[2 * g], x1[2 * g]];
        let xb = [x0[2 * g + 1], x1[2 * g + 1]];
        for (j, wj) in [w0[g], w1[g], w2[g], w3[g]].into_iter().enumerate() {
            let lo: S::f32s = pulp::bytemuck::cast(simd.wrapping_dyn_shl_u32s(wj, sixteen));
            let hi: S::f32s = pulp::bytemuck::cast(simd.and_u32s(wj, high));
            for r in 0..XR {
                a[r][j] = simd.mul_add_f32s(xa[r], lo, a[r][j]);
                a[r][j] = simd.mul_add_f32s(xb[r], hi, a[r][j]);
            }
        }
    }
    let mut out = [[0f32; WR]; XR];
    for r in 0..XR {
        for j in 0..WR {
            out[r][j] = simd.reduce_sum_f32s(a[r][j]);
        }
    }
    out
}

/// The error function as a rational polynomial on [-4, 4] (Eigen's `generic_fast_erf_float`,
/// within a few ulp of the exact value): no branches or calls, so the GELU loop vectorises,
/// where libm's `erff` took a sixth of a query's time.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_473_9e-2;
    x * p / q
}

/// `e^x` for `x` in about [-87, 88] (Cephes' `expf` polynomial, within 2 ulp): no calls or
/// branches, so softmax loops vectorise.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 · 2²³: adding and subtracting it rounds to an integer.
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut y = 1.987_569_1e-4;
    y = y * r + 1.398_199_9e-3;
    y = y * r + 8.333_452e-3;
    y = y * r + 4.166_579_6e-2;
    y = y * r + 1.666_666_5e-1;
    y = y * r + 0.5;
    y = y * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// Scaled dot-product self-attention for the heads `heads` of a `m`-token sequence.
///
/// `qkv` rows are `[q | k | v]` (`3 · hidden` wide, heads of `d` columns each); row `i` of `ctx`
/// receives the context of those heads side by side (`heads.len() · d` wide).
pub(crate) fn attention(
    qkv: &[f32],
    m: usize,
    hidden: usize,
    d: usize,
    heads: std::ops::Range<usize>,
    ctx: &mut [f32],
) {
    Arch::new().dispatch(Attention { qkv, m, hidden, d, heads, ctx });
}

struct Attention<'a> {
    qkv: &'a [f32],
    m: usize,
    hidden: usize,
    d: usize,
    heads: std::ops::Range<usize>,
    ctx: &'a mut [f32],
}

impl WithSimd for Attention<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let Self { qkv, m, hidden: h, d, heads, ctx } = self;
        let width = heads.len() * d;
        let scale = 1.0 / (d as f32).sqrt();
        let row = |i: usize, part: usize, head: usize| -> &[f32] {
            let start = i * 3 * h + part * h + head * d;
            &qkv[start..start + d]
        };
        let mut scores = vec![0f32; m];
        ctx.fill(0.0);
        for (slot, head) in heads.enumerate() {
            for i in 0..m {
                let (q, qt) = S::as_simd_f32s(row(i, 0, head));
                let mut max = f32::NEG_INFINITY;
                for (j, s) in scores.iter_mut().enumerate() {
                    let (k, kt) = S::as_simd_f32s(row(j, 1, head));
                    let mut acc = simd.splat_f32s(0.0);
                    for (a, b) in q.iter().zip(k) {
                        acc = simd.mul_add_f32s(*a, *b, acc);
                    }
                    let tail: f32 = qt.iter().zip(kt).map(|(a, b)| a * b).sum();
                    *s = (simd.reduce_sum_f32s(acc) + tail) * scale;
                    max = max.max(*s);
                }
                scores.iter_mut().for_each(|s| *s = exp(*s - max));
                let total: f32 = scores.iter().sum();
                let out = &mut ctx[i * width + slot * d..i * width + (slot + 1) * d];
                let (out, out_tail) = S::as_mut_simd_f32s(out);
                for (j, s) in scores.iter().enumerate() {
                    let p = s / total;
                    let pv = simd.splat_f32s(p);
                    let (v, vt) = S::as_simd_f32s(row(j, 2, head));
                    for (o, x) in out.iter_mut().zip(v) {
                        *o = simd.mul_add_f32s(pv, *x, *o);
                    }
                    for (o, x) in out_tail.iter_mut().zip(vt) {
                        *o += p * x;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest error of `fast` against `exact` on `from..=to` in steps of 0.001, absolute
    /// or relative to the exact value.
    fn worst_error(
        from: i32,
        to: i32,
        relative: bool,
        fast: fn(f32) -> f32,
        exact: fn(f32) -> f32,
    ) -> f32 {
        (from..=to)
            .map(|i| {
                let x = i as f32 / 1000.0;
                let (got, want) = (fast(x), exact(x));
                if relative { ((got - want) / want).abs() } else { (got - want).abs() }
            })
            .fold(0.0, f32::max)
    }

    #[test]
    fn fast_exp_matches_the_standard_one() {
        let worst = worst_error(-87_000, 10_000, true, exp, f32::exp);
        assert!(worst < 1e-6, "largest relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) >= 0.0 && exp(-1000.0) < 1e-37);
    }

    #[test]
    fn fast_erf_matches_libm() {
        let worst = worst_error(-6000, 6000, false, erf, libm::erff);
        assert!(worst < 2e-6, "largest difference {worst}");
        assert_eq!(erf(0.0), 0.0);
        assert!((erf(1.0) - 0.842_700_8).abs() < 1e-6);
        assert!((erf(-10.0) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn attention_matches_a_plain_softmax() {
        let (m, heads, d) = (5, 3, 12);
        let h = heads * d;
        let qkv: Vec<f32> = (0..m * 3 * h).map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0).collect();
        let mut ctx = vec![f32::NAN; m * 2 * d];
        attention(&qkv, m, h, d, 1..3, &mut ctx);
        for (slot, head) in (1..3).enumerate() {
            for i in 0..m {
                let at = |r: usize, part: usize, c: usize| qkv[r * 3 * h + part * h + head * d + c];
                let logits: Vec<f32> = (0..m)
                    .map(|j| {
                        (0..d).map(|c| at(i, 0, c) * at(j, 1, c)).sum::<f32>() / (d as f32).sqrt()
                    })
                    .collect();
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let weights: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
                let total: f32 = weights.iter().sum();
                for c in 0..d {
                    let want: f32 = (0..m).map(|j| weights[j] / total * at(j, 2, c)).sum();
                    let got = ctx[i * 2 * d + slot * d + c];
                    assert!(
                        (got - want).abs() < 1e-5,
                        "head {head} row {i} col {c}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn bfloat16_rounds_to_nearest() {
        assert_eq!(from_bf16(to_bf16(1.0)), 1.0);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even mantissa (1).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
    }

    #[test]
    fn matches_the_plain_product_for_odd_shapes() {
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        // Odd row counts, outputs not a multiple of 4, inputs that need padding.
        for (m, k, n) in
            [(1, 1, 1), (3, 7, 5), (5, 33, 9), (2, 64, 4), (7, 389, 13), (20, 384, 1536)]
        {
            let x: Vec<f32> = (0..m * k).map(|_| next()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| next()).collect();
            let b: Vec<f32> = (0..n).map(|_| next()).collect();
            let packed = Packed::new(&w, k);
            assert_eq!(packed.get(n - 1, k - 1), from_bf16(to_bf16(w[n * k - 1])));
            let p = packed.padded();
            let mut xp = vec![0.0; m * p];
            for (dst, src) in xp.chunks_exact_mut(p).zip(x.chunks_exact(k)) {
                dst[..k].copy_from_slice(src);
            }
            let mut y = vec![f32::NAN; m * n];
            linear(&xp, packed.rows(0, n), &b, &mut y);
            for i in 0..m {
                for o in 0..n {
                    let want: f32 = (0..k)
                        .map(|c| x[i * k + c] * from_bf16(to_bf16(w[o * k + c])))
                        .sum::<f32>()
                        + b[o];
                    let got = y[i * n + o];
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{m}x{k}x{n}: {got} vs {want}"
                    );
                }
            }
        }
    }
}
