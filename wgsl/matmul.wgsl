// matmul: Y[t, r] = Σ_c X[t, c] · W[r, c] over T tokens (prefill), with an epilogue.
//
// Epilogues (EPI), o = t * out_stride + out0 + r:
//   store       out[o] = Y[t, r]
//   add         out[o] = res[o] + Y[t, r]        (residual, separate buffers)
//   addinplace  out[o] = out[o] + Y[t, r]        (h += X · W_oᵀ on the residual itself)
//   swiglu      out[o] = SiLU(X·Gᵀ)[t, r] · (X·Uᵀ)[t, r]   (Qwen3 MLP gate/up)
//
// Bindings (store, addinplace):          (add):              (swiglu):
//   0 p    uniform Params                  0 p                 0 p
//   1 w    weights, see below              1 w                 1 w   gate weights
//   2 x    [T, cols] f32                   2 x                 2 wu  up weights
//   3 out  [T, out_stride] f32             3 res [T, out_stride] 3 x
//                                          4 out               4 out
// Weights: [≥ w_row0 + rows, cols] of DTYPE, row-major; f32 as f32, bf16 and f16
// packed two per u32 (element 2k in the low half). Any cols: element loads.
//
// Params: T, rows (rows of W in this dispatch: one matrix part), cols, w_row0 and
// u_row0 (first row of the dispatch inside the w and wu bindings), out0 (first
// output column, the part's first row), out_stride (output row length: all rows
// of the whole matrix).
//
// Tiling: each workgroup computes a BT × BR = 64 × 64 tile of Y (workgroup
// (wid.x, wid.y) covers rows wid.x·64… and tokens wid.y·64…). Its 256 threads
// stage BK columns of X and W at a time in workgroup memory (k-major), then
// each thread accumulates a 4 × 4 block in f32 registers. Out-of-range tokens,
// rows and columns load as zero, so any T, rows and cols work.
//
// Template: DTYPE (f32, bf16, f16), EPI, WT (f32 or u32), BK (a multiple of 8;
// 8 by default, see gpu/matmul.go).

struct Params {
    T: u32,
    rows: u32,
    cols: u32,
    w_row0: u32,
    u_row0: u32,
    out0: u32,
    out_stride: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<{{.WT}}>;
{{- if eq .EPI "swiglu"}}
@group(0) @binding(2) var<storage, read> wu: array<{{.WT}}>;
@group(0) @binding(3) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
{{- else if eq .EPI "add"}}
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
{{- else}}
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
{{- end}}

const BT = 64u;
const BR = 64u;
const BK = {{.BK}}u; // columns staged per step (a multiple of 8)

// Tiles, k-major, four tokens or four rows to a vec4: xs[kk * 16 + q] holds
// X[t0 + 4q + 0..3, k0 + kk]. vec4 elements keep the arrays short, which
// matters on GL: naga zero-fills workgroup memory there with one array
// constructor per variable, and Mesa's GLSL compiler takes seconds on long ones.
var<workgroup> xs: array<vec4<f32>, {{mul .BK 16}}>;
var<workgroup> ws: array<vec4<f32>, {{mul .BK 16}}>;
{{- if eq .EPI "swiglu"}}
var<workgroup> us: array<vec4<f32>, {{mul .BK 16}}>;
{{- end}}

// Element g (row-major index) of the gate/plain and up weights.
{{- if eq .DTYPE "f32"}}
fn load_w(g: u32) -> f32 {
    return w[g];
}
{{- if eq .EPI "swiglu"}}
fn load_u(g: u32) -> f32 {
    return wu[g];
}
{{- end}}
{{- else}}
fn unpack_half(word: u32, half: u32) -> f32 {
{{- if eq .DTYPE "bf16"}}
    return bitcast<f32>(select(word << 16u, word & 0xffff0000u, half == 1u));
{{- else}}
    let v = unpack2x16float(word);
    return select(v.x, v.y, half == 1u);
{{- end}}
}
fn load_w(g: u32) -> f32 {
    return unpack_half(w[g >> 1u], g & 1u);
}
{{- if eq .EPI "swiglu"}}
fn load_u(g: u32) -> f32 {
    return unpack_half(wu[g >> 1u], g & 1u);
}
{{- end}}
{{- end}}
{{- if eq .EPI "swiglu"}}

fn silu(v: f32) -> f32 {
    return v / (1.0 + exp(-v));
}
{{- end}}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r0 = wid.x * BR;
    let t0 = wid.y * BT;
    let tx = lid % 16u; // this thread's rows r0 + 4·tx …
    let ty = lid / 16u; // and tokens t0 + 4·ty …
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
{{- if eq .EPI "swiglu"}}
    var up0 = vec4<f32>(0.0);
    var up1 = vec4<f32>(0.0);
    var up2 = vec4<f32>(0.0);
    var up3 = vec4<f32>(0.0);
{{- end}}

    // Threads 0-127 stage X, threads 128-255 stage W (and U): BK/8 vec4s
    // each, 8 neighbouring threads reading 8 neighbouring columns.
    let kk_s = lid % 8u;
    let q_s = (lid % 128u) / 8u;
    for (var k0 = 0u; k0 < p.cols; k0 += BK) {
      // Each thread stages BK/8 columns: kk_s, kk_s + 8, ...
      for (var sub = 0u; sub < BK; sub += 8u) {
        let kk = kk_s + sub;
        let k = k0 + kk;
        let in_k = k < p.cols;
        if (lid < 128u) {
            let t = t0 + 4u * q_s;
            var v = vec4<f32>(0.0);
            if (in_k && t < p.T) {
                v.x = x[t * p.cols + k];
            }
            if (in_k && t + 1u < p.T) {
                v.y = x[(t + 1u) * p.cols + k];
            }
            if (in_k && t + 2u < p.T) {
                v.z = x[(t + 2u) * p.cols + k];
            }
            if (in_k && t + 3u < p.T) {
                v.w = x[(t + 3u) * p.cols + k];
            }
            xs[kk * 16u + q_s] = v;
        } else {
            let r = r0 + 4u * q_s;
            var v = vec4<f32>(0.0);
{{- if eq .EPI "swiglu"}}
            var u = vec4<f32>(0.0);
{{- end}}
            if (in_k && r < p.rows) {
                v.x = load_w((p.w_row0 + r) * p.cols + k);
{{- if eq .EPI "swiglu"}}
                u.x = load_u((p.u_row0 + r) * p.cols + k);
{{- end}}
            }
            if (in_k && r + 1u < p.rows) {
                v.y = load_w((p.w_row0 + r + 1u) * p.cols + k);
{{- if eq .EPI "swiglu"}}
                u.y = load_u((p.u_row0 + r + 1u) * p.cols + k);
{{- end}}
            }
            if (in_k && r + 2u < p.rows) {
                v.z = load_w((p.w_row0 + r + 2u) * p.cols + k);
{{- if eq .EPI "swiglu"}}
                u.z = load_u((p.u_row0 + r + 2u) * p.cols + k);
{{- end}}
            }
            if (in_k && r + 3u < p.rows) {
                v.w = load_w((p.w_row0 + r + 3u) * p.cols + k);
{{- if eq .EPI "swiglu"}}
                u.w = load_u((p.u_row0 + r + 3u) * p.cols + k);
{{- end}}
            }
            ws[kk * 16u + q_s] = v;
{{- if eq .EPI "swiglu"}}
            us[kk * 16u + q_s] = u;
{{- end}}
        }
      }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let a = xs[kk * 16u + ty];
            let b = ws[kk * 16u + tx];
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
{{- if eq .EPI "swiglu"}}
            let u = us[kk * 16u + tx];
            up0 += a.x * u;
            up1 += a.y * u;
            up2 += a.z * u;
            up3 += a.w * u;
{{- end}}
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < 4u; i++) {
        let t = t0 + 4u * ty + i;
        if (t >= p.T) {
            break;
        }
        var y = acc0;
{{- if eq .EPI "swiglu"}}
        var u = up0;
{{- end}}
        switch i {
            case 1u: {
                y = acc1;
{{- if eq .EPI "swiglu"}}
                u = up1;
{{- end}}
            }
            case 2u: {
                y = acc2;
{{- if eq .EPI "swiglu"}}
                u = up2;
{{- end}}
            }
            case 3u: {
                y = acc3;
{{- if eq .EPI "swiglu"}}
                u = up3;
{{- end}}
            }
            default: {}
        }
        for (var j = 0u; j < 4u; j++) {
            let r = r0 + 4u * tx + j;
            if (r < p.rows) {
                let o = t * p.out_stride + p.out0 + r;
{{- if eq .EPI "store"}}
                out[o] = y[j];
{{- else if eq .EPI "add"}}
                out[o] = res[o] + y[j];
{{- else if eq .EPI "addinplace"}}
                out[o] = out[o] + y[j];
{{- else if eq .EPI "swiglu"}}
                out[o] = silu(y[j]) * u[j];
{{- end}}
            }
        }
    }
}
