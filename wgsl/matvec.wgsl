// matvec: y[b, r] = Σ_c W[r, c] · x[b, c] for the B tokens of a decode step
// (B = 1 for one sequence, up to 8 for a batch of sequences), each weight
// row read once for all B tokens, with an epilogue.
//
// Epilogues (EPI), o = b · out_stride + out0 + r:
//   store   out[o] = y[b, r]
//   add     out[o] = out[o] + y[b, r]                      (x += W_o · attn on the residual)
//   swiglu  out[o] = SiLU(gate_r · x_b) · (up_r · x_b)      (Qwen3 MLP gate/up)
//
// With NORM, each x_b is first RMS-normalised with weight nw (Qwen3RMSNorm),
// in the same dispatch: every workgroup sums x_b² itself (x is B tokens, a
// few KiB, read from cache), then y = scale_b · Σ_c W[r, c] · x[b, c] · nw[c]
// with scale_b = 1 / sqrt(mean(x_b²) + eps). That saves the standalone
// rmsnorm dispatch in front of the projection, which costs more in dispatch
// latency than the repeated sum does.
//
// Bindings (store, add):                  (swiglu):
//   0 p    uniform Params                   0 p
//   1 w    weights, see below               1 w   gate weights
//   2 x    [B, cols] f32                    2 wu  up weights
//  (3 nw   [cols] f32 with NORM)            3 x
//   3 out  [B, out_stride] f32             (4 nw)
//                                           4 out
// With NORM, out moves up by one (B_* in the template).
// Weights: [≥ w_row0 + rows, cols] of DType, row-major. f32 as f32; bf16 and f16
// packed two per u32, element 2k in the low half (bf16 → f32 is exact:
// bitcast(u << 16) and bitcast(u & 0xffff0000); f16 via unpack2x16float).
// With Vec the loads are 16 bytes wide (vec4<u32> = 8 halves, vec4<f32> = 4 f32)
// and need cols % 8 == 0 (halves) or cols % 4 == 0 (f32); otherwise every
// element is loaded on its own, which handles any cols, odd ones included
// (a row of odd length then starts in the middle of a u32).
//
// Quantized weights (Quant: DType one of the GGUF block types) are rows of
// blocks in lib_quant.wgsl's layout, read as u32 words: a thread takes whole
// 32-value units of a block (decoded in registers, x read as vec4s; cols is a
// multiple of 32), QBS values and QBW words a block.
//
// Params: rows (rows in this dispatch: one matrix part), cols, w_row0 and u_row0
// (the first row of the dispatch inside the w and wu bindings), out0 (the
// first output element of token 0), out_stride (elements between tokens of
// out), eps (NORM only).
//
// Layout: Rows rows per workgroup, TPR threads per row (power of two). The TPR
// threads of a row read consecutive 16-byte chunks, sum in f32, and reduce
// through a tree in workgroup memory (naga 0.13 has no subgroup operations).
// Workgroup id = wid.x + wid.y * num_workgroups.x (2-D past 65535 groups).
//
// Template (kernels.MatVecVars): DType, Vec, Epi, Norm, B, Rows, TPR, WT and XT
// (the element types of the weight and x arrays), XW (f32 values per XT),
// BX, BNW, BOut (binding numbers); Quant, QW and QU (lib_quant's arrays w and
// wu), QBS, QBW.

struct Params {
    rows: u32,
    cols: u32,
    w_row0: u32,
    u_row0: u32,
    out0: u32,
    out_stride: u32,
    eps: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<{{.WT}}>;
{{- if eq .Epi "swiglu"}}
@group(0) @binding(2) var<storage, read> wu: array<{{.WT}}>;
{{- end}}
@group(0) @binding({{.BX}}) var<storage, read> x: array<{{.XT}}>;
{{- if .Norm}}
@group(0) @binding({{.BNW}}) var<storage, read> nw: array<{{.XT}}>;
{{- end}}
@group(0) @binding({{.BOut}}) var<storage, read_write> out: array<f32>;

const ROWS = {{.Rows}}u;
const TPR = {{.TPR}}u;
const WG = {{mul .Rows .TPR}}u;
const B = {{.B}}u;

var<workgroup> red: array<f32, {{mul .B (mul .Rows .TPR)}}>;   // [B, WG]
{{- if eq .Epi "swiglu"}}
var<workgroup> red2: array<f32, {{mul .B (mul .Rows .TPR)}}>;
{{- end}}

{{if .Quant}}
{{- template "quant_common" .}}
{{- template "quant" .QW}}
{{- if eq .Epi "swiglu"}}{{template "quant" .QU}}{{end}}
{{end}}
{{if .Vec}}{{if eq .DType "BF16"}}
// dot8 multiplies 8 packed bf16 weights by x values xa (elements 0-3) and xb (4-7).
fn dot8(v: vec4<u32>, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
    let lo = bitcast<vec4<f32>>(v << vec4<u32>(16u));           // elements 0, 2, 4, 6
    let hi = bitcast<vec4<f32>>(v & vec4<u32>(0xffff0000u));    // elements 1, 3, 5, 7
    return dot(lo, vec4<f32>(xa.x, xa.z, xb.x, xb.z)) + dot(hi, vec4<f32>(xa.y, xa.w, xb.y, xb.w));
}
{{else if eq .DType "F16"}}
// dot8 multiplies 8 packed f16 weights by x values xa (elements 0-3) and xb (4-7).
fn dot8(v: vec4<u32>, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
    let a = vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
    let b = vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w));
    return dot(a, xa) + dot(b, xb);
}
{{end}}{{else if eq .DType "BF16"}}
// at returns element (word, half) of a packed bf16 array.
fn at(word: u32, half: u32) -> f32 {
    return bitcast<f32>(select(word << 16u, word & 0xffff0000u, half == 1u));
}
{{else if eq .DType "F16"}}
// at returns element (word, half) of a packed f16 array.
fn at(word: u32, half: u32) -> f32 {
    let v = unpack2x16float(word);
    return select(v.x, v.y, half == 1u);
}
{{end}}
{{- if eq .Epi "swiglu"}}
fn silu(v: f32) -> f32 {
    return v / (1.0 + exp(-v));
}
{{end}}
@compute @workgroup_size({{mul .Rows .TPR}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let lane = lid % TPR;
    let r = (wid.x + wid.y * nwg.x) * ROWS + lid / TPR;
    let valid = r < p.rows;
    let xrow = p.cols / {{.XW}}u;   // x elements (of XT) per token
{{- if .Norm}}
    // scale_b = 1 / sqrt(mean(x_b²) + eps), summed by the whole workgroup.
    for (var b = 0u; b < B; b++) {
        var ss = 0.0;
        for (var j = lid; j < xrow; j += WG) {
            let v = x[b * xrow + j];
            ss += {{if eq .XW 4}}dot(v, v){{else}}v * v{{end}};
        }
        red[b * WG + lid] = ss;
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            for (var b = 0u; b < B; b++) {
                red[b * WG + lid] += red[b * WG + lid + s];
            }
        }
        workgroupBarrier();
    }
    var scale: array<f32, B>;
    for (var b = 0u; b < B; b++) {
        scale[b] = inverseSqrt(red[b * WG] / f32(p.cols) + p.eps);
    }
    workgroupBarrier(); // every thread has read red before it is reused
{{- end}}
    var acc: array<f32, B>;
{{- if eq .Epi "swiglu"}}
    var acc2: array<f32, B>;
{{- end}}
    if (valid) {
{{- if .Quant}}
        let nu = p.cols / 32u;            // 32-value units per row
        let bpr = p.cols / {{.QBS}}u;     // blocks per row
        let wb = (p.w_row0 + r) * bpr;
{{- if eq .Epi "swiglu"}}
        let ub = (p.u_row0 + r) * bpr;
{{- end}}
        for (var u = lane; u < nu; u += TPR) {
            let unit = u % {{div .QBS 32}}u;
            let blk = (wb + u / {{div .QBS 32}}u) * {{.QBW}}u;
            let hw = qhead_w(blk, unit);
{{- if eq .Epi "swiglu"}}
            let ublk = (ub + u / {{div .QBS 32}}u) * {{.QBW}}u;
            let hu = qhead_wu(ublk, unit);
{{- end}}
            for (var i = 0u; i < 8u; i++) {
                let wv = qvals_w(blk, unit, i, hw);
{{- if eq .Epi "swiglu"}}
                let uv = qvals_wu(ublk, unit, i, hu);
{{- end}}
                let c = 8u * u + i;
                for (var b = 0u; b < B; b++) {
                    let xv = x[b * xrow + c]{{if .Norm}} * nw[c]{{end}};
                    acc[b] += dot(wv, xv);
{{- if eq .Epi "swiglu"}}
                    acc2[b] += dot(uv, xv);
{{- end}}
                }
            }
        }
{{- else if .Vec}}
{{- if eq .DType "F32"}}
        let nc = p.cols / 4u;
        let wb = (p.w_row0 + r) * nc;
{{- if eq .Epi "swiglu"}}
        let ub = (p.u_row0 + r) * nc;
{{- end}}
        for (var j = lane; j < nc; j += TPR) {
            let wv = w[wb + j];
{{- if eq .Epi "swiglu"}}
            let uv = wu[ub + j];
{{- end}}
            for (var b = 0u; b < B; b++) {
                let xv = x[b * xrow + j]{{if .Norm}} * nw[j]{{end}};
                acc[b] += dot(wv, xv);
{{- if eq .Epi "swiglu"}}
                acc2[b] += dot(uv, xv);
{{- end}}
            }
        }
{{- else}}
        let nc = p.cols / 8u;
        let wb = (p.w_row0 + r) * nc;
{{- if eq .Epi "swiglu"}}
        let ub = (p.u_row0 + r) * nc;
{{- end}}
        for (var j = lane; j < nc; j += TPR) {
            let wv = w[wb + j];
{{- if eq .Epi "swiglu"}}
            let uv = wu[ub + j];
{{- end}}
            for (var b = 0u; b < B; b++) {
                let xa = x[b * xrow + 2u * j]{{if .Norm}} * nw[2u * j]{{end}};
                let xb = x[b * xrow + 2u * j + 1u]{{if .Norm}} * nw[2u * j + 1u]{{end}};
                acc[b] += dot8(wv, xa, xb);
{{- if eq .Epi "swiglu"}}
                acc2[b] += dot8(uv, xa, xb);
{{- end}}
            }
        }
{{- end}}
{{- else}}
        let wb = (p.w_row0 + r) * p.cols;
{{- if eq .Epi "swiglu"}}
        let ub = (p.u_row0 + r) * p.cols;
{{- end}}
        for (var c = lane; c < p.cols; c += TPR) {
{{- if eq .DType "F32"}}
            let wv = w[wb + c];
{{- if eq .Epi "swiglu"}}
            let uv = wu[ub + c];
{{- end}}
{{- else}}
            let g = wb + c;
            let wv = at(w[g >> 1u], g & 1u);
{{- if eq .Epi "swiglu"}}
            let gu = ub + c;
            let uv = at(wu[gu >> 1u], gu & 1u);
{{- end}}
{{- end}}
            for (var b = 0u; b < B; b++) {
                let xv = x[b * xrow + c]{{if .Norm}} * nw[c]{{end}};
                acc[b] += wv * xv;
{{- if eq .Epi "swiglu"}}
                acc2[b] += uv * xv;
{{- end}}
            }
        }
{{- end}}
    }
    for (var b = 0u; b < B; b++) {
        red[b * WG + lid] = acc[b];
{{- if eq .Epi "swiglu"}}
        red2[b * WG + lid] = acc2[b];
{{- end}}
    }
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            for (var b = 0u; b < B; b++) {
                red[b * WG + lid] += red[b * WG + lid + s];
{{- if eq .Epi "swiglu"}}
                red2[b * WG + lid] += red2[b * WG + lid + s];
{{- end}}
            }
        }
        workgroupBarrier();
    }
    if (valid && lane == 0u) {
        for (var b = 0u; b < B; b++) {
            let o = b * p.out_stride + p.out0 + r;
            let y = red[b * WG + lid]{{if .Norm}} * scale[b]{{end}};
{{- if eq .Epi "store"}}
            out[o] = y;
{{- else if eq .Epi "add"}}
            out[o] = out[o] + y;
{{- else if eq .Epi "swiglu"}}
            out[o] = silu(y) * red2[b * WG + lid]{{if .Norm}} * scale[b]{{end}};
{{- end}}
        }
    }
}
