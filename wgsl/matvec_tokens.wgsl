// matvec_tokens: y[b, r] = Σ_c W[r, c] · x[b, c] for the B tokens (2-32) of
// a batched decode step, with the same epilogues, norm, bindings and
// Params as matvec.wgsl, in another layout: a thread is one token and one
// slice of the row (S slices, WG = B · S threads), and sums R rows for it.
//
// Why (PERFORMANCE.md, run 14): matvec.wgsl's layout gives each thread all
// B tokens of R rows, R · B partial sums (64 with SwiGLU at B = 16), plus
// the x of every token in flight; the batched step ran far below both the
// float32 rate and the bandwidth, as latency-bound kernels with few threads
// resident do. Here a thread keeps R (2R) sums and one token's x, so many
// more threads stay resident. The price: each thread unpacks the weights
// it reads itself (B threads read each weight, through L1), and a token's
// sums over its S slices meet once, in workgroup memory, after one
// barrier, summed in slice order by one thread an output.
//
// Layout: thread lid is slice s = lid % S of token b = lid / S (a warp
// covers consecutive slices, so its loads of x and of weights lie side by
// side); slice s takes the row's load units s, s + S, … (16 bytes: 8
// halves or 4 f32). Workgroup w takes rows w·R … w·R + R − 1; rows past
// the end are read as the last row and not written.
// With NORM each thread also sums its slice of x_b² (the same loads) and
// scale_b = 1 / sqrt(mean(x_b²) + eps) is formed from the S sums.
// Needs cols % 8 == 0 (halves) or cols % 4 == 0 (f32), as matvec's Vec.
//
// Template (kernels.MatVecTokensVars): DType (F32, BF16, F16), WT, Epi,
// Norm, B, S, WG, R, BX, BNW, BOut.

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
{{- $swiglu := eq .Epi "swiglu"}}
{{- if $swiglu}}
@group(0) @binding(2) var<storage, read> wu: array<{{.WT}}>;
{{- end}}
@group(0) @binding({{.BX}}) var<storage, read> x: array<vec4<f32>>;
{{- if .Norm}}
@group(0) @binding({{.BNW}}) var<storage, read> nw: array<vec4<f32>>;
{{- end}}
@group(0) @binding({{.BOut}}) var<storage, read_write> out: array<f32>;

const B = {{.B}}u;
const S = {{.S}}u;   // slices a row: threads a token
const WG = {{.WG}}u; // B · S
const R = {{.R}}u;   // rows a workgroup

var<workgroup> red: array<f32, {{mul .R .WG}}>;   // [R, B, S]
{{- if $swiglu}}
var<workgroup> red2: array<f32, {{mul .R .WG}}>;
{{- end}}
{{- if .Norm}}
var<workgroup> rss: array<f32, {{.WG}}>;          // [B, S]: x_b² by slice
{{- end}}

{{if eq .DType "BF16"}}
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
{{end}}
{{- if $swiglu}}
fn silu(v: f32) -> f32 {
    return v / (1.0 + exp(-v));
}
{{- end}}

@compute @workgroup_size({{.WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let s = lid % S;
    let b = lid / S;
    let r0 = (wid.x + wid.y * nwg.x) * R;  // the workgroup's first row
{{- if eq .DType "F32"}}
    let nc = p.cols / 4u;                  // load units a row: 4 f32
{{- else}}
    let nc = p.cols / 8u;                  // load units a row: 8 halves
{{- end}}
    let xrow = p.cols / 4u;                // x vec4s a token
    var wr: array<u32, R>;
{{- if $swiglu}}
    var ur: array<u32, R>;
{{- end}}
    for (var rr = 0u; rr < R; rr++) {
        wr[rr] = (p.w_row0 + min(r0 + rr, p.rows - 1u)) * nc;
{{- if $swiglu}}
        ur[rr] = (p.u_row0 + min(r0 + rr, p.rows - 1u)) * nc;
{{- end}}
    }
    var acc: array<f32, R>;
{{- if $swiglu}}
    var acc2: array<f32, R>;
{{- end}}
{{- if .Norm}}
    var ss = 0.0;
{{- end}}
    for (var j = s; j < nc; j += S) {
        var wv: array<{{.WT}}, R>;
{{- if $swiglu}}
        var uv: array<{{.WT}}, R>;
{{- end}}
        for (var rr = 0u; rr < R; rr++) {
            wv[rr] = w[wr[rr] + j];
{{- if $swiglu}}
            uv[rr] = wu[ur[rr] + j];
{{- end}}
        }
{{- if eq .DType "F32"}}
        var xa = x[b * xrow + j];
{{- if .Norm}}
        ss += dot(xa, xa);
        xa *= nw[j];
{{- end}}
        for (var rr = 0u; rr < R; rr++) {
            acc[rr] += dot(wv[rr], xa);
{{- if $swiglu}}
            acc2[rr] += dot(uv[rr], xa);
{{- end}}
        }
{{- else}}
        var xa = x[b * xrow + 2u * j];
        var xb = x[b * xrow + 2u * j + 1u];
{{- if .Norm}}
        ss += dot(xa, xa) + dot(xb, xb);
        xa *= nw[2u * j];
        xb *= nw[2u * j + 1u];
{{- end}}
        for (var rr = 0u; rr < R; rr++) {
            acc[rr] += dot8(wv[rr], xa, xb);
{{- if $swiglu}}
            acc2[rr] += dot8(uv[rr], xa, xb);
{{- end}}
        }
{{- end}}
    }
    // Every sum to workgroup memory at [rr, b, s], then one thread an
    // output sums its S slices in order.
    for (var rr = 0u; rr < R; rr++) {
        red[(rr * B + b) * S + s] = acc[rr];
{{- if $swiglu}}
        red2[(rr * B + b) * S + s] = acc2[rr];
{{- end}}
    }
{{- if .Norm}}
    rss[b * S + s] = ss;
{{- end}}
    workgroupBarrier();
    for (var o = lid; o < R * B; o += WG) {
        let rr = o / B;
        let bo = o % B;
        let r = r0 + rr;
        if (r < p.rows) {
            var y = 0.0;
{{- if $swiglu}}
            var yu = 0.0;
{{- end}}
            for (var i = 0u; i < S; i++) {
                y += red[o * S + i];
{{- if $swiglu}}
                yu += red2[o * S + i];
{{- end}}
            }
{{- if .Norm}}
            var sx = 0.0;
            for (var i = 0u; i < S; i++) {
                sx += rss[bo * S + i];
            }
            let scale = inverseSqrt(sx / f32(p.cols) + p.eps);
            y *= scale;
{{- if $swiglu}}
            yu *= scale;
{{- end}}
{{- end}}
            let oi = bo * p.out_stride + p.out0 + r;
{{- if eq .Epi "store"}}
            out[oi] = y;
{{- else if eq .Epi "add"}}
            out[oi] = out[oi] + y;
{{- else}}
            out[oi] = silu(y) * yu;
{{- end}}
        }
    }
}
