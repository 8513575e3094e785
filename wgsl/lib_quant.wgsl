{{/*
lib_quant: decoding the GGUF block types on the GPU, in one place.

Device layout (Go side: kernels.PackBlocks, gpu/kernels/quant.go): a row of
a quantized matrix is cols / QBS blocks; each block is the format's own
bytes, in its own order, padded to whole u32 words (QBW words a block),
except Q4_K, whose scales are unpacked at load (below). Blocks that are not
whole words get 2 zero bytes after their f16 scale d:

  type  QBS  QBW  words of a block
  Q4_0   32    5  0: d (low half)   1-4: qs, value j in the low nibble of byte j, j+16 in the high
  Q4_1   32    5  0: d | m << 16    1-4: qs as Q4_0
  Q5_0   32    6  0: d              1: qh (bit j: the fifth bit of value j)   2-5: qs as Q4_0
  Q5_1   32    6  0: d | m << 16    1: qh   2-5: qs
  Q8_0   32    9  0: d              1-8: 32 int8 quants
  Q4_K  256   40  0, 4: d (f32)   1, 5: dmin (f32)   2, 3, 6, 7: the scales of units 2g, 2g+1
                  (g = 0, 1, 2, 3) as bytes sc(2g), m(2g), sc(2g+1), m(2g+1)   8-39: 128 bytes qs
  Q5_K  256   44  0: d | dmin << 16   1-3: scales   4-11: 32 bytes qh   12-43: qs
  Q6_K  256   53  0-31: 128 bytes ql   32-47: 64 bytes qh   48-51: 16 int8 scales   52: d (low half)

Q4_K's header (16 bytes in the file: d and dmin as f16, then 8 scales and
8 minimums of 6 bits packed in 12 bytes) becomes 32 bytes on the device: d
and dmin widened to f32 (exact) and the 6-bit values one to a byte, in two
vec4s of the same shape, (d, dmin, word of g, word of g + 1), so that the 32
values of units 2g and 2g+1 take one vec4 of header whose decoding is four
byte extractions (on the H200 in run 19, the 8B's tg128 was 12% faster with
the scales not decoded at all, a probe; the file's packing took ~90 of a
quad's ~200 instructions). 11% more bytes than the file.

Values are decoded as ggml defines them (weights/dequant.go is the CPU
twin): every value is a product of the f16 scale(s) and small integers,
exact in f32, or one such product minus another, rounded once; so the GPU's
weights equal the CPU reference's bit for bit, whatever the order or FMA.

Interface, for a storage array<u32> named A holding blocks of one format
({{template "quant" (kernels.QuantFn{Fmt, Arr: "A"})}}, after
{{template "quant_common" .}} once per shader):

  qhead_A(blk, unit) -> QHead      blk: the block's first word in A; unit: which
                                   32 consecutive values of the block (0 … QBS/32-1)
  qvals_A(blk, unit, i, h) -> vec4 values 32·unit + 4i … +3 of the block (i 0 … 7)
  qload_A(blk, unit, i) -> vec4    both in one call

A kernel that reads all 32 values of a unit calls qhead once and qvals eight
times; one that reads 4 values calls qload.
*/}}

{{define "quant_common"}}
// QHead is what a 32-value unit of a block shares: its scale(s), minimum
// and high bits (lib_quant.wgsl says which format keeps what where).
struct QHead {
    a: f32,
    b: f32,
    c: u32,
}

// qf16 widens the IEEE half in the low 16 bits of h exactly (subnormals
// included, which unpack2x16float may flush): a normal half is rebiased by
// shifting its exponent and mantissa into place, a subnormal is m · 2⁻²⁴.
fn qf16(h: u32) -> f32 {
    let a = h & 0x7fffu;
    var v = bitcast<f32>((a << 13u) + 0x38000000u);                    // exponent + 127 - 15
    v = select(v, f32(a) * 5.9604644775390625e-8, a < 0x400u);        // zero, subnormal
    v = select(v, bitcast<f32>((a << 13u) | 0x7f800000u), a >= 0x7c00u); // inf, NaN
    return bitcast<f32>(bitcast<u32>(v) | ((h & 0x8000u) << 16u));
}

// qbytes: the 4 bytes of w as unsigned values, byte 0 first. Each byte goes
// into the mantissa of 2²³ (whose last bit is worth 1), and 2²³ comes off:
// exact, and cheaper than an integer-to-float conversion (a quarter-rate
// instruction on NVIDIA).
fn qbytes(w: u32) -> vec4<f32> {
    return qb(w, 0.0);
}

// qb: the 4 bytes of w, byte 0 first, minus bias (an integer below 2²³), exactly.
fn qb(w: u32, bias: f32) -> vec4<f32> {
    let m = ((vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu)) | vec4<u32>(0x4b000000u);
    return bitcast<vec4<f32>>(m) - (8388608.0 + bias);
}

// qsbytes: the 4 bytes of w as int8 values, byte 0 first (the sign bit
// flipped makes them unsigned, 128 more).
fn qsbytes(w: u32) -> vec4<f32> {
    return qb(w ^ 0x80808080u, 128.0);
}

// q8half: the 4 int8 values of w, byte k times 2^pos (pos 0, 8, 0, 8: its
// place in its 16-bit half), exactly: each byte, its sign bit flipped (128
// more), is masked in place into the mantissa of 2²³, and 2²³ + 128·2^pos
// comes off. No shift a value: the matvec's Q8Sum scales x by 2^-pos.
fn q8half(w: u32) -> vec4<f32> {
    let v = w ^ 0x80808080u;
    let f = (vec4<u32>(v, v, v >> 16u, v >> 16u) & vec4<u32>(0xffu, 0xff00u, 0xffu, 0xff00u)) | vec4<u32>(0x4b000000u);
    return bitcast<vec4<f32>>(f) - vec4<f32>(8388736.0, 8421376.0, 8388736.0, 8421376.0);
}

// qbits: bits 0-3 of b, one to a lane, shifted up to bit 4 (a fifth quant bit).
fn qbits(b: u32) -> vec4<u32> {
    return ((vec4<u32>(b) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)) << vec4<u32>(4u);
}

// q4kscales: d·sc and dmin·m of units 2g and 2g+1 of a Q4_K block from its
// device header (above): d and dmin (f32 bits) and group g's word of bytes
// sc(2g), m(2g), sc(2g+1), m(2g+1); exact products.
fn q4kscales(d: u32, dmin: u32, sw: u32) -> vec4<f32> {
    return qbytes(sw) * vec4<f32>(bitcast<f32>(d), bitcast<f32>(dmin), bitcast<f32>(d), bitcast<f32>(dmin));
}

// qkscale: the 6-bit scale and min of sub-block j (0-7) of a Q5_K block
// (Q4_K's are unpacked at load) from its 12 scale bytes in words s0, s1, s2: sub-blocks 0-3 keep
// theirs in the low 6 bits of bytes j and j+4; 4-7 their low 4 bits in byte
// j+4 and their top 2 bits in the spare top bits of bytes j-4 and j.
// Without a branch, so that neighbouring threads with sub-blocks on either
// side of 4 do not diverge and a kernel's loads around it stay in one block.
fn qkscale(s0: u32, s1: u32, s2: u32, j: u32) -> vec2<f32> {
    let sh = 8u * (j & 3u);
    let b0 = (s0 >> sh) & 0xffu;
    let b1 = (s1 >> sh) & 0xffu;
    let b2 = (s2 >> sh) & 0xffu;
    let lo = vec2<u32>(b0 & 63u, b1 & 63u);
    let hi = vec2<u32>((b2 & 0xfu) | ((b0 >> 6u) << 4u), (b2 >> 4u) | ((b1 >> 6u) << 4u));
    return vec2<f32>(select(hi, lo, j < 4u));
}
{{end}}

{{define "quant"}}
{{- $a := .Arr}}
// qhead_{{$a}}: what unit `unit` of the {{.Fmt}} block at word blk of {{$a}} shares.
fn qhead_{{$a}}(blk: u32, unit: u32) -> QHead {
{{- if or (eq .Fmt "Q8_0") (eq .Fmt "Q4_0")}}
    return QHead(qf16({{$a}}[blk]), 0.0, 0u);
{{- else if eq .Fmt "Q4_1"}}
    let dm = {{$a}}[blk];
    return QHead(qf16(dm), qf16(dm >> 16u), 0u);
{{- else if eq .Fmt "Q5_0"}}
    return QHead(qf16({{$a}}[blk]), 0.0, {{$a}}[blk + 1u]);
{{- else if eq .Fmt "Q5_1"}}
    let dm = {{$a}}[blk];
    return QHead(qf16(dm), qf16(dm >> 16u), {{$a}}[blk + 1u]);
{{- else if eq .Fmt "Q4_K"}}
    // value = d·sc · q - dmin·m; both products exact (unpacked header, above)
    let hb = blk + 4u * (unit >> 2u);
    let s = q4kscales({{$a}}[hb], {{$a}}[hb + 1u], {{$a}}[hb + 2u + ((unit >> 1u) & 1u)]);
    let sm = select(s.xy, s.zw, (unit & 1u) == 1u);
    return QHead(sm.x, sm.y, 0u);
{{- else if eq .Fmt "Q5_K"}}
    // value = d·sc · q - dmin·m; both products exact
    let dm = {{$a}}[blk];
    let sm = qkscale({{$a}}[blk + 1u], {{$a}}[blk + 2u], {{$a}}[blk + 3u], unit);
    return QHead(qf16(dm) * sm.x, qf16(dm >> 16u) * sm.y, 0u);
{{- else if eq .Fmt "Q6_K"}}
    // unit = 4h + k of half h: int8 scales 8h + 2k (values 0-15) and +1 (16-31)
    let d = qf16({{$a}}[blk + 52u]);
    let k = unit & 3u;
    let sw = {{$a}}[blk + 48u + 2u * (unit >> 2u) + (k >> 1u)] >> (16u * (k & 1u));
    let sc = bitcast<vec2<i32>>(vec2<u32>(sw << 24u, sw << 16u)) >> vec2<u32>(24u);
    return QHead(d * f32(sc.x), d * f32(sc.y), 0u);
{{- end}}
}

// qvals_{{$a}}: values 32·unit + 4i … +3 of the {{.Fmt}} block at word blk of {{$a}}.
fn qvals_{{$a}}(blk: u32, unit: u32, i: u32, h: QHead) -> vec4<f32> {
{{- if eq .Fmt "Q8_0"}}
    return qsbytes({{$a}}[blk + 1u + i]) * h.a;
{{- else if eq .Fmt "Q4_0"}}
    let q = ({{$a}}[blk + 1u + (i & 3u)] >> (4u * (i >> 2u))) & 0x0f0f0f0fu;
    return (qbytes(q) - 8.0) * h.a;
{{- else if eq .Fmt "Q4_1"}}
    let q = ({{$a}}[blk + 1u + (i & 3u)] >> (4u * (i >> 2u))) & 0x0f0f0f0fu;
    return qbytes(q) * h.a + h.b;
{{- else if eq .Fmt "Q5_0"}}
    let q = ({{$a}}[blk + 2u + (i & 3u)] >> (4u * (i >> 2u))) & 0x0f0f0f0fu;
    return (qbytes(q) + vec4<f32>(qbits(h.c >> (4u * i))) - 16.0) * h.a;
{{- else if eq .Fmt "Q5_1"}}
    let q = ({{$a}}[blk + 2u + (i & 3u)] >> (4u * (i >> 2u))) & 0x0f0f0f0fu;
    return (qbytes(q) + vec4<f32>(qbits(h.c >> (4u * i)))) * h.a + h.b;
{{- else if eq .Fmt "Q4_K"}}
    // unit s: nibble s % 2 of qs bytes 32·(s/2) …
    let q = ({{$a}}[blk + 8u + 8u * (unit >> 1u) + i] >> (4u * (unit & 1u))) & 0x0f0f0f0fu;
    return qbytes(q) * h.a - h.b;
{{- else if eq .Fmt "Q5_K"}}
    // unit s: nibble s % 2 of qs bytes 32·(s/2) …, fifth bit: bit s of qh bytes 0-31
    let lo = ({{$a}}[blk + 12u + 8u * (unit >> 1u) + i] >> (4u * (unit & 1u))) & 0x0f0f0f0fu;
    let hi = (({{$a}}[blk + 4u + i] >> unit) & 0x01010101u) << 4u;
    return qbytes(lo | hi) * h.a - h.b;
{{- else if eq .Fmt "Q6_K"}}
    // unit 4h + k: nibble k/2 of ql bytes 64h + 32(k%2) …, bits 2k, 2k+1 of qh bytes 32h …
    let hh = unit >> 2u;
    let k = unit & 3u;
    let lo = ({{$a}}[blk + 16u * hh + 8u * (k & 1u) + i] >> (4u * (k >> 1u))) & 0x0f0f0f0fu;
    let hi = (({{$a}}[blk + 32u + 8u * hh + i] >> (2u * k)) & 0x03030303u) << 4u;
    return (qbytes(lo | hi) - 32.0) * select(h.b, h.a, i < 4u);
{{- end}}
}

// qload_{{$a}}: qvals_{{$a}} with its own qhead_{{$a}}.
fn qload_{{$a}}(blk: u32, unit: u32, i: u32) -> vec4<f32> {
    return qvals_{{$a}}(blk, unit, i, qhead_{{$a}}(blk, unit));
}
{{end}}

{{/*
Chunks, for kernels where consecutive threads take consecutive words of a
row (the matvec): chunk c of a block (0 … QBS/8-1) is one word of its quants
(two of Q8_0), 8 values, so the words a warp reads lie side by side. Its
values are two runs of 4, at x vec4 offsets qxoff(c) from the block's first
value; their scales are decoded by the thread that reads them.

  {{template "quant_chunk_common" (kernels.QuantFn{Fmt})}}  once: QChunk, QCHead, qxoff
  {{template "quant_chunk" (kernels.QuantFn{Fmt, Arr: "A"})}}
      qchead_A(blk, c) -> QCHead        the chunk's scales (the same for c and c + 1, c even)
      qcbody_A(blk, c, h) -> QChunk     its values
*/}}

{{define "quant_chunk_common"}}
// QChunk is 8 values of a block: a at x vec4 offset qxoff(c).x of the
// block, b at qxoff(c).y.
struct QChunk {
    a: vec4<f32>,
    b: vec4<f32>,
}

// QCHead is what a chunk's values are scaled with (lib_quant's qchead says
// which format keeps what where).
struct QCHead {
    a: f32,
    b: f32,
    c: f32,
    d: f32,
    h: u32,
}

// qxoff: the x vec4 offsets (from the block's first value) of chunk c's two runs of values.
fn qxoff(c: u32) -> vec2<u32> {
{{- if eq .Fmt "Q8_0"}}
    return vec2<u32>(2u * c, 2u * c + 1u);             // values 8c … 8c+7
{{- else if or (eq .Fmt "Q4_K") (eq .Fmt "Q5_K")}}
    let g = c >> 3u;                                   // quant word 8g + i: units 2g and 2g+1
    return vec2<u32>(16u * g + (c & 7u), 16u * g + 8u + (c & 7u));
{{- else if eq .Fmt "Q6_K"}}
    let base = 32u * (c >> 4u) + 8u * ((c >> 3u) & 1u) + (c & 7u); // half h, unit m, word i
    return vec2<u32>(base, base + 16u);                // units m and m + 2 of the half
{{- else}}
    return vec2<u32>(c, c + 4u);                       // values 4c … and 16 + 4c …
{{- end}}
}

// q5hi: bits 0-3 of b, one to a byte, as bit 4 of each (the fifth quant bit of Q5_0 and Q5_1).
fn q5hi(b: u32) -> u32 {
    return (((b & 0xfu) * 0x00204081u) & 0x01010101u) << 4u;
}
{{end}}

{{define "quant_chunk"}}
{{- $a := .Arr}}
// qchead_{{$a}}: the scales of chunk c of the {{.Fmt}} block at word blk of
// {{$a}}, which chunk c + 1 shares when c is even.
fn qchead_{{$a}}(blk: u32, c: u32) -> QCHead {
{{- if or (eq .Fmt "Q8_0") (eq .Fmt "Q4_0")}}
    return QCHead(qf16({{$a}}[blk]), 0.0, 0.0, 0.0, 0u);
{{- else if eq .Fmt "Q4_1"}}
    let dm = {{$a}}[blk];
    return QCHead(qf16(dm), qf16(dm >> 16u), 0.0, 0.0, 0u);
{{- else if eq .Fmt "Q5_0"}}
    return QCHead(qf16({{$a}}[blk]), 0.0, 0.0, 0.0, {{$a}}[blk + 1u]);
{{- else if eq .Fmt "Q5_1"}}
    let dm = {{$a}}[blk];
    return QCHead(qf16(dm), qf16(dm >> 16u), 0.0, 0.0, {{$a}}[blk + 1u]);
{{- else if eq .Fmt "Q4_K"}}
    // units 2g and 2g+1 (g = c / 8): d·sc and dmin·m of each, exact products
    let g = c >> 3u;
    let hb = blk + 4u * (g >> 1u);
    let s = q4kscales({{$a}}[hb], {{$a}}[hb + 1u], {{$a}}[hb + 2u + (g & 1u)]);
    return QCHead(s.x, s.y, s.z, s.w, 0u);
{{- else if eq .Fmt "Q5_K"}}
    // units 2g and 2g+1 (g = c / 8): d·sc and dmin·m of each, exact products
    let dm = {{$a}}[blk];
    let d = qf16(dm);
    let dmin = qf16(dm >> 16u);
    let g = c >> 3u;
    let s0 = {{$a}}[blk + 1u];
    let s1 = {{$a}}[blk + 2u];
    let s2 = {{$a}}[blk + 3u];
    let sa = qkscale(s0, s1, s2, 2u * g);
    let sb = qkscale(s0, s1, s2, 2u * g + 1u);
    return QCHead(d * sa.x, dmin * sa.y, d * sb.x, dmin * sb.y, 0u);
{{- else if eq .Fmt "Q6_K"}}
    // ql word c = 16h + 8m + i holds units m (low nibbles) and m + 2 (high)
    // of half h; 16-value scale n = 8h + 2·unit + (i ≥ 4): d·scale of each
    let n = 8u * (c >> 4u) + 2u * ((c >> 3u) & 1u) + select(0u, 1u, (c & 7u) >= 4u);
    let sw = vec2<u32>({{$a}}[blk + 48u + (n >> 2u)], {{$a}}[blk + 49u + (n >> 2u)]); // bytes n, n + 4
    let sc = vec2<f32>(bitcast<vec2<i32>>(sw << vec2<u32>(24u - 8u * (n & 3u))) >> vec2<u32>(24u));
    let d = qf16({{$a}}[blk + 52u]);
    return QCHead(d * sc.x, d * sc.y, 0.0, 0.0, 0u);
{{- end}}
}

// qcbody_{{$a}}: chunk c of the {{.Fmt}} block at word blk of {{$a}}, with its scales h.
fn qcbody_{{$a}}(blk: u32, c: u32, h: QCHead) -> QChunk {
{{- if eq .Fmt "Q8_0"}}
    return QChunk(qsbytes({{$a}}[blk + 1u + 2u * c]) * h.a, qsbytes({{$a}}[blk + 2u + 2u * c]) * h.a);
{{- else if eq .Fmt "Q4_0"}}
    let q = {{$a}}[blk + 1u + c];
    return QChunk(qb(q & 0x0f0f0f0fu, 8.0) * h.a, qb((q >> 4u) & 0x0f0f0f0fu, 8.0) * h.a);
{{- else if eq .Fmt "Q4_1"}}
    let q = {{$a}}[blk + 1u + c];
    return QChunk(qbytes(q & 0x0f0f0f0fu) * h.a + h.b, qbytes((q >> 4u) & 0x0f0f0f0fu) * h.a + h.b);
{{- else if eq .Fmt "Q5_0"}}
    let q = {{$a}}[blk + 2u + c];
    return QChunk(qb((q & 0x0f0f0f0fu) | q5hi(h.h >> (4u * c)), 16.0) * h.a,
                  qb(((q >> 4u) & 0x0f0f0f0fu) | q5hi(h.h >> (16u + 4u * c)), 16.0) * h.a);
{{- else if eq .Fmt "Q5_1"}}
    let q = {{$a}}[blk + 2u + c];
    return QChunk(qbytes((q & 0x0f0f0f0fu) | q5hi(h.h >> (4u * c))) * h.a + h.b,
                  qbytes(((q >> 4u) & 0x0f0f0f0fu) | q5hi(h.h >> (16u + 4u * c))) * h.a + h.b);
{{- else if eq .Fmt "Q4_K"}}
    let q = {{$a}}[blk + 8u + c];
    return QChunk(qbytes(q & 0x0f0f0f0fu) * h.a - h.b, qbytes((q >> 4u) & 0x0f0f0f0fu) * h.c - h.d);
{{- else if eq .Fmt "Q5_K"}}
    // fifth bits: bit 2g (unit 2g) and 2g+1 of qh word c % 8
    let q = {{$a}}[blk + 12u + c];
    let qh = {{$a}}[blk + 4u + (c & 7u)] >> (2u * (c >> 3u));
    let lo = (q & 0x0f0f0f0fu) | ((qh & 0x01010101u) << 4u);
    let hi = ((q >> 4u) & 0x0f0f0f0fu) | (((qh >> 1u) & 0x01010101u) << 4u);
    return QChunk(qbytes(lo) * h.a - h.b, qbytes(hi) * h.c - h.d);
{{- else if eq .Fmt "Q6_K"}}
    // top bits: bits 2m, 2m+1 (unit m) and 2m+4, 2m+5 (unit m + 2) of qh word 8h + i
    let ql = {{$a}}[blk + c];
    let qh = {{$a}}[blk + 32u + 8u * (c >> 4u) + (c & 7u)] >> (2u * ((c >> 3u) & 1u));
    let lo = (ql & 0x0f0f0f0fu) | ((qh & 0x03030303u) << 4u);
    let hi = ((ql >> 4u) & 0x0f0f0f0fu) | (((qh >> 4u) & 0x03030303u) << 4u);
    return QChunk(qb(lo, 32.0) * h.a, qb(hi, 32.0) * h.b);
{{- end}}
}
{{end}}

{{/*
Quads, for the matvec's 16-byte loads of Q4_K and Q5_K, whose blocks are
whole vec4<u32>s (160 and 176 bytes) with their quants 16-byte aligned:

  vec4  Q4_K                                   Q5_K
  0     d, dmin (f32), scales of g = 0, 1      d | dmin << 16, scales s0 s1 s2
  1     d, dmin (f32), scales of g = 2, 3      qh (qh word i: fifth bits of qs word 8g + i, bit 2g and 2g+1)
  2     qs                                     qh
  3-9   qs                                     qs
  10                                           qs

The header vec4 of group g is vec4 qqhoff(g) of the block. Quad j (0-7) of
a block is its qs vec4 j (QOFF: 2 for Q4_K, 3 for Q5_K):
qs words 8g + i, g = j / 2, i = 4(j % 2) + k for its words k = 0-3. Word k's
low nibbles are values 4i … 4i+3 of unit 2g (x vec4 16g + i from the
block's first value), its high nibbles those of unit 2g + 1 (x vec4 16g + 8 + i);
the fifth bits (Q5_K) are in qh vec4 j % 2, word k.

  {{template "quant_quad" (kernels.QuantFn{Fmt})}}  once, after quant_common:
      qqhoff(g) -> u32                   the block's vec4 holding group g's scales
      qqscales(h, g) -> vec4<f32>        d·sc, dmin·m of unit 2g, then of 2g+1 (h: that vec4)
      qquad(q, qh, g, s) -> QQuad        the 32 values of quad q (qh: 0 for Q4_K)
      qword(q, qh, g, s) -> QWord        the 8 values of one of its words
      qnib(q) -> QWord                   a Q4_K word's nibbles in place, unscaled
*/}}

{{define "quant_quad"}}
// QQuad is the 32 values of a quad: ak at x vec4 16g + 4(j % 2) + k of
// the block (k = 0-3), bk 8 vec4s on. (Named fields: naga indexes a let
// array by constants only.)
struct QQuad {
    a0: vec4<f32>,
    a1: vec4<f32>,
    a2: vec4<f32>,
    a3: vec4<f32>,
    b0: vec4<f32>,
    b1: vec4<f32>,
    b2: vec4<f32>,
    b3: vec4<f32>,
}

// qqhoff: the vec4 of a {{.Fmt}} block that holds the scales of group g.
fn qqhoff(g: u32) -> u32 {
    return {{if eq .Fmt "Q4_K"}}g >> 1u{{else}}0u{{end}};
}

// qqscales: d·sc and dmin·m of units 2g and 2g + 1 of the {{.Fmt}} block
// whose vec4 qqhoff(g) is h; exact products.
fn qqscales(h: vec4<u32>, g: u32) -> vec4<f32> {
{{- if eq .Fmt "Q4_K"}}
    return q4kscales(h.x, h.y, select(h.z, h.w, (g & 1u) == 1u));
{{- else}}
    let d = qf16(h.x);
    let dmin = qf16(h.x >> 16u);
    let sa = qkscale(h.y, h.z, h.w, 2u * g);
    let sb = qkscale(h.y, h.z, h.w, 2u * g + 1u);
    return vec4<f32>(d * sa.x, dmin * sa.y, d * sb.x, dmin * sb.y);
{{- end}}
}

// QWord is the 8 values of one quant word of a quad: a (low nibbles, unit
// 2g) and b (high nibbles, unit 2g + 1), as QQuad's ak and bk.
struct QWord {
    a: vec4<f32>,
    b: vec4<f32>,
}

// qword: word q of a quad of group g, scaled by s (qqscales), with its
// fifth-bit word qh (Q5_K; 0 for Q4_K).
fn qword(q: u32, qh: u32, g: u32, s: vec4<f32>) -> QWord {
    let lo = (q & 0x0f0f0f0fu) | (((qh >> (2u * g)) & 0x01010101u) << 4u);
    let hi = ((q >> 4u) & 0x0f0f0f0fu) | (((qh >> (2u * g + 1u)) & 0x01010101u) << 4u);
    return QWord(qbytes(lo) * s.x - s.y, qbytes(hi) * s.z - s.w);
}

// qnib: the 8 nibbles of Q4_K quant word q in their places, unscaled and
// without shifts: a (low nibbles, unit 2g) times (1, 256, 1, 256), b (high
// nibbles, unit 2g + 1) times (16, 4096, 16, 4096). Each is masked in place
// into the mantissa of 2²³, and 2²³ comes off: exact. The matvec's XFold
// scales x by the inverse places, also exactly.
fn qnib(q: u32) -> QWord {
    let v = vec4<u32>(q, q, q >> 16u, q >> 16u);
    let a = (v & vec4<u32>(0xfu, 0xf00u, 0xfu, 0xf00u)) | vec4<u32>(0x4b000000u);
    let b = (v & vec4<u32>(0xf0u, 0xf000u, 0xf0u, 0xf000u)) | vec4<u32>(0x4b000000u);
    return QWord(bitcast<vec4<f32>>(a) - 8388608.0, bitcast<vec4<f32>>(b) - 8388608.0);
}

// qquad: the values of quad words q of group g, scaled by s (qqscales);
// qh is the quad's fifth-bit words (Q5_K), zero for Q4_K. Word k's values
// are qword's: ak its low nibbles, bk its high ones.
fn qquad(q: vec4<u32>, qh: vec4<u32>, g: u32, s: vec4<f32>) -> QQuad {
    let w0 = qword(q.x, qh.x, g, s);
    let w1 = qword(q.y, qh.y, g, s);
    let w2 = qword(q.z, qh.z, g, s);
    let w3 = qword(q.w, qh.w, g, s);
    return QQuad(w0.a, w1.a, w2.a, w3.a, w0.b, w1.b, w2.b, w3.b);
}
{{end}}
