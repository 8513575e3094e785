// matvec: y[r] = Σ_c W[r, c] · x[c] for one token (decode), with an epilogue.
//
// Epilogues (EPI):
//   store       out[out0 + r] = y[r]
//   add         out[out0 + r] = res[out0 + r] + y[r]     (residual, separate buffers)
//   addinplace  out[out0 + r] = out[out0 + r] + y[r]     (x += W_o · attn on the residual itself)
//   swiglu      out[out0 + r] = SiLU(gate_r · x) · (up_r · x)   (Qwen3 MLP gate/up)
//
// With NORM, x is first RMS-normalised with weight nw (Qwen3RMSNorm), in
// the same dispatch: every workgroup sums x² itself (x is one token, a few
// KiB, read from cache), then y = scale · Σ_c W[r, c] · x[c] · nw[c] with
// scale = 1 / sqrt(mean(x²) + eps). That saves the standalone rmsnorm
// dispatch in front of the projection, which costs more in dispatch
// latency than the repeated sum does.
//
// Bindings (store, addinplace):          (add):              (swiglu):
//   0 p    uniform Params                  0 p                 0 p
//   1 w    weights, see below              1 w                 1 w   gate weights
//   2 x    [cols] f32                      2 x                 2 wu  up weights
//  (3 nw   [cols] f32 with NORM)          (3 nw)              3 x
//   3 out  [≥ out0 + rows] f32             3 res [≥ out0+rows] (4 nw)
//                                          4 out               4 out
// With NORM, every binding after x moves up by one (B_* in the template).
// Weights: [≥ w_row0 + rows, cols] of DTYPE, row-major. f32 as f32; bf16 and f16
// packed two per u32, element 2k in the low half (bf16 → f32 is exact:
// bitcast(u << 16) and bitcast(u & 0xffff0000); f16 via unpack2x16float).
// With VEC the loads are 16 bytes wide (vec4<u32> = 8 halves, vec4<f32> = 4 f32)
// and need cols % 8 == 0 (halves) or cols % 4 == 0 (f32); otherwise every
// element is loaded on its own, which handles any cols, odd ones included
// (a row of odd length then starts in the middle of a u32).
//
// Params: rows (rows in this dispatch: one matrix part), cols, w_row0 and u_row0
// (the first row of the dispatch inside the w and wu bindings), out0 (the
// first output element), eps (NORM only).
//
// Layout: ROWS rows per workgroup, TPR threads per row (power of two). The TPR
// threads of a row read consecutive 16-byte chunks, sum in f32, and reduce
// through a tree in workgroup memory (naga 0.13 has no subgroup operations).
// Workgroup id = wid.x + wid.y * num_workgroups.x (2-D past 65535 groups).
//
// Template: DTYPE (f32, bf16, f16), VEC (bool), EPI, NORM (bool), ROWS, TPR
// (ROWS·TPR a power of two), WT and XT (the element types of the weight and
// x arrays), XW (f32 values per XT), B_X, B_NW, B_RES, B_OUT (binding numbers).

struct Params {
    rows: u32,
    cols: u32,
    w_row0: u32,
    u_row0: u32,
    out0: u32,
    eps: f32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<{{.WT}}>;
{{- if eq .EPI "swiglu"}}
@group(0) @binding(2) var<storage, read> wu: array<{{.WT}}>;
{{- end}}
@group(0) @binding({{.B_X}}) var<storage, read> x: array<{{.XT}}>;
{{- if .NORM}}
@group(0) @binding({{.B_NW}}) var<storage, read> nw: array<{{.XT}}>;
{{- end}}
{{- if eq .EPI "add"}}
@group(0) @binding({{.B_RES}}) var<storage, read> res: array<f32>;
{{- end}}
@group(0) @binding({{.B_OUT}}) var<storage, read_write> out: array<f32>;

const ROWS = {{.ROWS}}u;
const TPR = {{.TPR}}u;

var<workgroup> red: array<f32, {{mul .ROWS .TPR}}>;
{{- if eq .EPI "swiglu"}}
var<workgroup> red2: array<f32, {{mul .ROWS .TPR}}>;
{{- end}}

{{if .VEC}}{{if eq .DTYPE "bf16"}}
// dot8 multiplies 8 packed bf16 weights by x values xa (elements 0-3) and xb (4-7).
fn dot8(v: vec4<u32>, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
    let lo = bitcast<vec4<f32>>(v << vec4<u32>(16u));           // elements 0, 2, 4, 6
    let hi = bitcast<vec4<f32>>(v & vec4<u32>(0xffff0000u));    // elements 1, 3, 5, 7
    return dot(lo, vec4<f32>(xa.x, xa.z, xb.x, xb.z)) + dot(hi, vec4<f32>(xa.y, xa.w, xb.y, xb.w));
}
{{else if eq .DTYPE "f16"}}
// dot8 multiplies 8 packed f16 weights by x values xa (elements 0-3) and xb (4-7).
fn dot8(v: vec4<u32>, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
    let a = vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
    let b = vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w));
    return dot(a, xa) + dot(b, xb);
}
{{end}}{{else if eq .DTYPE "bf16"}}
// at returns element (word, half) of a packed bf16 array.
fn at(word: u32, half: u32) -> f32 {
    return bitcast<f32>(select(word << 16u, word & 0xffff0000u, half == 1u));
}
{{else if eq .DTYPE "f16"}}
// at returns element (word, half) of a packed f16 array.
fn at(word: u32, half: u32) -> f32 {
    let v = unpack2x16float(word);
    return select(v.x, v.y, half == 1u);
}
{{end}}
{{- if eq .EPI "swiglu"}}
fn silu(v: f32) -> f32 {
    return v / (1.0 + exp(-v));
}
{{end}}
@compute @workgroup_size({{mul .ROWS .TPR}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let lane = lid % TPR;
    let r = (wid.x + wid.y * nwg.x) * ROWS + lid / TPR;
    let valid = r < p.rows;
{{- if .NORM}}
    // scale = 1 / sqrt(mean(x²) + eps), summed by the whole workgroup.
    var ss = 0.0;
    for (var j = lid; j < p.cols / {{.XW}}u; j += ROWS * TPR) {
        let v = x[j];
        ss += {{if eq .XW 4}}dot(v, v){{else}}v * v{{end}};
    }
    red[lid] = ss;
    workgroupBarrier();
    for (var s = ROWS * TPR / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            red[lid] += red[lid + s];
        }
        workgroupBarrier();
    }
    let scale = inverseSqrt(red[0] / f32(p.cols) + p.eps);
    workgroupBarrier(); // every thread has read red[0] before it is reused
{{- end}}
    var acc = 0.0;
{{- if eq .EPI "swiglu"}}
    var acc2 = 0.0;
{{- end}}
    if (valid) {
{{- if .VEC}}
{{- if eq .DTYPE "f32"}}
        let nc = p.cols / 4u;
        let wb = (p.w_row0 + r) * nc;
{{- if eq .EPI "swiglu"}}
        let ub = (p.u_row0 + r) * nc;
{{- end}}
        for (var j = lane; j < nc; j += TPR) {
            let xv = x[j]{{if .NORM}} * nw[j]{{end}};
            acc += dot(w[wb + j], xv);
{{- if eq .EPI "swiglu"}}
            acc2 += dot(wu[ub + j], xv);
{{- end}}
        }
{{- else}}
        let nc = p.cols / 8u;
        let wb = (p.w_row0 + r) * nc;
{{- if eq .EPI "swiglu"}}
        let ub = (p.u_row0 + r) * nc;
{{- end}}
        for (var j = lane; j < nc; j += TPR) {
            let xa = x[2u * j]{{if .NORM}} * nw[2u * j]{{end}};
            let xb = x[2u * j + 1u]{{if .NORM}} * nw[2u * j + 1u]{{end}};
            acc += dot8(w[wb + j], xa, xb);
{{- if eq .EPI "swiglu"}}
            acc2 += dot8(wu[ub + j], xa, xb);
{{- end}}
        }
{{- end}}
{{- else}}
        let wb = (p.w_row0 + r) * p.cols;
{{- if eq .EPI "swiglu"}}
        let ub = (p.u_row0 + r) * p.cols;
{{- end}}
        for (var c = lane; c < p.cols; c += TPR) {
            let xv = x[c]{{if .NORM}} * nw[c]{{end}};
{{- if eq .DTYPE "f32"}}
            acc += w[wb + c] * xv;
{{- if eq .EPI "swiglu"}}
            acc2 += wu[ub + c] * xv;
{{- end}}
{{- else}}
            let g = wb + c;
            acc += at(w[g >> 1u], g & 1u) * xv;
{{- if eq .EPI "swiglu"}}
            let gu = ub + c;
            acc2 += at(wu[gu >> 1u], gu & 1u) * xv;
{{- end}}
{{- end}}
        }
{{- end}}
    }
    red[lid] = acc;
{{- if eq .EPI "swiglu"}}
    red2[lid] = acc2;
{{- end}}
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            red[lid] += red[lid + s];
{{- if eq .EPI "swiglu"}}
            red2[lid] += red2[lid + s];
{{- end}}
        }
        workgroupBarrier();
    }
    if (valid && lane == 0u) {
        let o = p.out0 + r;
        let y = red[lid]{{if .NORM}} * scale{{end}};
{{- if eq .EPI "store"}}
        out[o] = y;
{{- else if eq .EPI "add"}}
        out[o] = res[o] + y;
{{- else if eq .EPI "addinplace"}}
        out[o] = out[o] + y;
{{- else if eq .EPI "swiglu"}}
        out[o] = silu(y) * red2[lid]{{if .NORM}} * scale{{end}};
{{- end}}
    }
}
