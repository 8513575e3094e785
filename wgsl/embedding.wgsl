// embedding: out[t, c] = E[ids[t], c] for the rows t < step.rows of a step,
// gathering token rows of the embedding matrix (Qwen3's embed_tokens) into
// float32 activations.
//
// Bindings:
//   0 p     uniform Params
//   1 step  uniform Step (lib_step)
//   2 e     [≥ buf_row0 + rows, cols] DType: one part of the embedding matrix; f32
//           as f32, bf16 and f16 packed two per u32 (element 2k in the low half),
//           block types as rows of blocks in lib_quant.wgsl's layout (Quant)
//   3 ids   [MaxRows] u32 token ids
//   4 out   [MaxRows, cols] f32
// Params: cols, row0 and rows (the matrix rows this part holds), buf_row0
// (row0's row inside the e binding), vocab (rows of the whole matrix), zero_oov
// (1 in one dispatch per matrix: ids ≥ vocab get a zero row there).
//
// One dispatch per part; a thread writes out[t, c] only when ids[t] falls in
// its part, so the parts together write every row exactly once. Grid: x covers
// cols in 256-wide blocks, y is the token.
//
// Template (kernels.EmbeddingVars): DType (F32, BF16, F16 or a block type), ET
// (f32 or u32), MaxRows; with Quant, Q (lib_quant's array e), QBS and QBW.

struct Params {
    cols: u32,
    row0: u32,
    rows: u32,
    buf_row0: u32,
    vocab: u32,
    zero_oov: u32,
    _pad0: u32,
    _pad1: u32,
}
{{template "step" .}}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> e: array<{{.ET}}>;
@group(0) @binding(3) var<storage, read> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

{{- if .Quant}}
{{template "quant_common" .}}
{{- template "quant" .Q}}
{{- end}}

// load returns element c of row `row` of the e binding.
fn load(row: u32, c: u32) -> f32 {
{{- if .Quant}}
    let blk = (row * (p.cols / {{.QBS}}u) + c / {{.QBS}}u) * {{.QBW}}u;
    return qload_e(blk, (c % {{.QBS}}u) / 32u, (c % 32u) / 4u)[c % 4u];
{{- else}}
    let g = row * p.cols + c;
{{- if eq .DType "F32"}}
    return e[g];
{{- else if eq .DType "BF16"}}
    let word = e[g >> 1u];
    return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (g & 1u) == 1u));
{{- else}}
    let v = unpack2x16float(e[g >> 1u]);
    return select(v.x, v.y, (g & 1u) == 1u);
{{- end}}
{{- end}}
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = wid.x * 256u + lid;
    let t = wid.y;
    if (c >= p.cols || t >= step.rows) {
        return;
    }
    let id = ids[t];
    let o = t * p.cols + c;
    if (id >= p.row0 && id < p.row0 + p.rows) {
        out[o] = load(p.buf_row0 + id - p.row0, c);
    } else if (p.zero_oov == 1u && id >= p.vocab) {
        out[o] = 0.0;
    }
}
