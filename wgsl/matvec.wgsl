// matvec: y[b, r] = Σ_c W[r, c] · x[b, c] for the B tokens of a decode step
// (B = 1 for one sequence, up to 32 for a batch of sequences), each weight
// read once for all B tokens, with an epilogue.
//
// Epilogues (EPI), o = b · out_stride + out0 + r:
//   store   out[o] = y[b, r]
//   add     out[o] = out[o] + y[b, r]                      (x += W_o · attn on the residual)
//   swiglu  out[o] = SiLU(gate_r · x_b) · (up_r · x_b)      (Qwen3 MLP gate/up)
//
// With NORM, each x_b is first RMS-normalised with weight nw (Qwen3RMSNorm),
// in the same dispatch: every workgroup sums x_b² itself (x is B tokens,
// read from cache), then y = scale_b · Σ_c W[r, c] · x[b, c] · nw[c]
// with scale_b = 1 / sqrt(mean(x_b²) + eps). That saves the standalone
// rmsnorm dispatch in front of the projection, which costs more in dispatch
// latency than the repeated sum does (for up to 8 tokens; one token of
// the x-in-registers layout, XReg, sums x² from the loads its loop makes
// anyway, and takes a standalone norm by default: kernels.MatVecFusedNorm).
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
// blocks in lib_quant.wgsl's layout, read as u32 words in chunks (lib_quant's
// qchead and qcbody: one word of quants, 8 values, decoded with its scales
// in registers): the TPR threads of a row take consecutive runs of CPT chunks
// (1 or 2, the scales decoded once a run), so a warp's loads of quants, and
// of x (vec4s at qxoff), lie side by side in memory (CPT 1) or in runs of
// two (CPT 2, fewer instructions a value). cols is a multiple of the block
// size. Up to 8 tokens (kernels.matvecWideBatch), Q4_K and Q5_K (Wide) are read in quads instead (lib_quant's
// quant_quad): one vec4<u32> of quants, 32 values, a thread and load, the
// block's scales decoded once for them, so that a thread has 16 bytes of
// quants and 16 of scales in flight a row instead of 4 and 4.
//
// Params: rows (rows in this dispatch: one matrix part), cols, w_row0 and u_row0
// (the first row of the dispatch inside the w and wu bindings), out0 (the
// first output element of token 0), out_stride (elements between tokens of
// out), eps (NORM only).
//
// Layout: WG threads, TPR threads per row group (a power of two), R rows per
// group (consecutive), so ROWS = R · WG / TPR rows per workgroup. The TPR
// threads of a group stride along the row (16-byte chunks of halves or f32,
// one quant chunk), read x once for all R rows and B tokens, and sum in
// f32; the R · B partial sums of each thread are then reduced over the
// group through workgroup memory (naga 0.13 has no subgroup operations), RC
// of them a round, so that the reduction array stays RC · WG floats however
// large B is: each output summed by one thread (Red1, the default) or
// through a tree (matvec_red1=-1). Rows past the end are read as the last row
// (no branch in the loop) and not written.
// Workgroup id = wid.x + wid.y * num_workgroups.x (2-D past 65535 groups).
//
// x is read through the caches by every row group, not staged in
// workgroup memory: staging put its loads and a barrier in front of each
// workgroup's first weight load and lost at every batch (PERFORMANCE.md,
// runs 12 and 20; git history: MatVecVars.XStage, removed after run 20).
//
// Template (kernels.MatVecVars): DType, Vec, Epi, Norm, B, Rows, R, TPR, WG,
// RC, Rounds and NormRounds (the first partial sum, token, of each round),
// CPT, Wide, Q5 and QOff (quads: Q5_K; the quants' first vec4 in a block),
// Q8Sum (one-token Q8_0, its blocks' d applied to sums),
// Red1, PreAdd, WT and XT (the element types
// of the weight and x arrays), XW (f32 values per XT), BX, BNW, BOut
// (binding numbers); Quant, QW and QU (lib_quant's arrays w and wu), QBS,
// QBW.

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

const ROWS = {{.Rows}}u;  // rows per workgroup
const R = {{.R}}u;        // rows per thread group
const TPR = {{.TPR}}u;    // threads per group
const WG = {{.WG}}u;
const B = {{.B}}u;
const NA = {{mul .R .B}}u; // partial sums per thread: [R, B]
const RC = {{.RC}}u;      // partial sums reduced per round
const NRC = {{.NRC}}u;    // tokens whose x² sums are reduced per round (NORM)
const GROUPS = {{div .WG .TPR}}u; // row groups per workgroup
{{- if .Quant}}
const CPT = {{.CPT}}u;    // consecutive chunks a thread takes (sharing scales)
{{- end}}
{{- if .XReg}}
const XG = {{.XG}}u;      // rows whose loads are issued together (XReg)
const XS = {{div .WG .R}}u; // threads that sum one row's partials (XReg)
{{- end}}
{{- if .Q8Sum}}
const SL = vec4<f32>(1.0, 0.00390625, 1.0, 0.00390625); // x's scaling for q8half's bytes
{{- end}}

var<workgroup> red: array<f32, {{mul .RC .WG}}>;   // [RC, WG]
{{- if eq .Epi "swiglu"}}
var<workgroup> red2: array<f32, {{mul .RC .WG}}>;
{{- end}}
{{- if and .XReg .Norm}}
var<workgroup> rss: array<f32, {{.WG}}>;  // the threads' sums of x² (XReg's norm)
{{- end}}

{{if .Wide}}
{{- template "quant_common" .}}
{{- template "quant_quad" .QW}}
{{else if .Quant}}
{{- template "quant_common" .}}
{{- template "quant_chunk_common" .QW}}
{{- template "quant_chunk" .QW}}
{{- if eq .Epi "swiglu"}}{{template "quant_chunk" .QU}}{{end}}
{{- if and .XReg (not .Q8Sum)}}
{{- template "quant" .QW}}
{{- if eq .Epi "swiglu"}}{{template "quant" .QU}}{{end}}
{{- end}}
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
{{- if .XFold}}
// qfold: a Q4_K quad's part of a row's sum, its words q read unscaled
// (qnib) against x scaled to their places (xv), its scales s (qqscales)
// applied to the two units' sums, the minimums to the quad's sums of x
// (xsa, xsb).
fn qfold(q: vec4<u32>, s: vec4<f32>, xv: array<vec4<f32>, 8>, xsa: f32, xsb: f32) -> f32 {
    let n0 = qnib(q.x);
    let n1 = qnib(q.y);
    let n2 = qnib(q.z);
    let n3 = qnib(q.w);
    let sa = (dot(n0.a, xv[0]) + dot(n1.a, xv[1])) + (dot(n2.a, xv[2]) + dot(n3.a, xv[3]));
    let sb = (dot(n0.b, xv[4]) + dot(n1.b, xv[5])) + (dot(n2.b, xv[6]) + dot(n3.b, xv[7]));
    return (s.x * sa - s.y * xsa) + (s.z * sb - s.w * xsb);
}
{{end}}
// emit writes output element o of a row whose sum is y (yu: the up row's
// sum with SwiGLU), both scaled by the norm's factor.
fn emit(o: u32, y: f32, yu: f32) {
{{- if eq .Epi "store"}}
    out[o] = y;
{{- else if eq .Epi "add"}}
    out[o] = out[o] + y;
{{- else}}
    out[o] = silu(y) * yu;
{{- end}}
}

{{- $swiglu := eq .Epi "swiglu"}}
@compute @workgroup_size({{.WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let lane = lid % TPR;
    let r0 = ((wid.x + wid.y * nwg.x) * (WG / TPR) + lid / TPR) * R; // the group's first row
    let xrow = p.cols / {{.XW}}u;   // x elements (of XT) per token
{{- if not .XReg}}
    // The rows the group reads, inside the bindings (past the end: the last
    // row). XReg clamps them in its written-out loads instead, so that no
    // array is indexed by a loop variable.
    var wr: array<u32, R>;
{{- if $swiglu}}
    var ur: array<u32, R>;
{{- end}}
    for (var rr = 0u; rr < R; rr++) {
        wr[rr] = p.w_row0 + min(r0 + rr, p.rows - 1u);
{{- if $swiglu}}
        ur[rr] = p.u_row0 + min(r0 + rr, p.rows - 1u);
{{- end}}
    }
{{- end}}
{{- if .PreAdd}}
    // The residual this thread will add its output to, loaded now rather
    // than after the reduction (its latency would follow the whole sum).
    var resid = 0.0;
{{- if .XReg}}
    if (lid < R && r0 + lid < p.rows) {
        resid = out[p.out0 + r0 + lid];
    }
{{- else}}
    {
        let a = lid / GROUPS;      // as the reduction's round: rr · B + b
        let r = ((wid.x + wid.y * nwg.x) * GROUPS + lid % GROUPS) * R + a / B;
        if (lid < RC * GROUPS && a < NA && r < p.rows) {
            resid = out[(a % B) * p.out_stride + p.out0 + r];
        }
    }
{{- end}}
{{- end}}
    var acc: array<f32, NA>;   // acc[rr * B + b]
{{- if $swiglu}}
    var acc2: array<f32, NA>;
{{- end}}
{{- if .XReg}}
    // x in registers (XReg, one token): the WG threads of the workgroup
    // share its R rows, thread lid taking units lid, lid + WG, … of every
    // row (32 values: a quad with Wide, a Q8_0 block, lib_quant's unit
    // otherwise), so that it loads a unit's x (times the norm weights) once
    // for all R rows and then only weights, XG rows' loads issued before any
    // is used. (The other layouts load x again for every R rows: with Q4_K,
    // whose 32 values a load are 16 bytes, the loads of x outnumber those of
    // weights four to one, and their number bounds the step: PERFORMANCE.md,
    // run 17.) Every loop over rows and over a unit's vec4s is written out by
    // the template, so that each index into xv and acc is a constant and they
    // stay in registers: the first build, with loops, lost 27–36% (run 18).
    // With the norm, the threads' units cover the row once, so the sum of
    // x² comes from the same loads: each thread sums its units' squares
    // before the norm weights multiply them, and the workgroup's total
    // scales the rows' sums at the end (no pass over x before the loop).
    let nu = p.cols / 32u;             // units per row
    let bpr = p.cols / {{.QBS}}u;      // blocks per row
{{- if .Norm}}
    var ss = 0.0;
{{- end}}
    for (var u = lid; u < nu; u += WG) {
        let bi = u / {{div .QBS 32}}u;             // block of the row
        let j = u % {{div .QBS 32}}u;              // unit of the block
        var xv: array<vec4<f32>, 8>;
{{- if .Wide}}
        let g = j >> 1u;
        let xo = bi * {{div .QBS 4}}u + 16u * g + 4u * (j & 1u); // x vec4 of the quad's a0
{{- range $k := seq 4}}
        xv[{{$k}}] = x[xo + {{$k}}u];
        xv[{{add $k 4}}] = x[xo + {{add $k 8}}u];
{{- end}}
{{- if .Norm}}
        ss += ((dot(xv[0], xv[0]) + dot(xv[1], xv[1])) + (dot(xv[2], xv[2]) + dot(xv[3], xv[3])))
            + ((dot(xv[4], xv[4]) + dot(xv[5], xv[5])) + (dot(xv[6], xv[6]) + dot(xv[7], xv[7])));
{{- range $k := seq 4}}
        xv[{{$k}}] *= nw[xo + {{$k}}u];
        xv[{{add $k 4}}] *= nw[xo + {{add $k 8}}u];
{{- end}}
{{- end}}
{{- if .XFold}}
        // XFold (Q4_K): the quad's sums of x for the minimums, then x scaled
        // to the places of lib_quant's qnib, so that a row's quants are
        // summed unscaled and its scales applied once a unit
        let xsa = (dot(xv[0], vec4<f32>(1.0)) + dot(xv[1], vec4<f32>(1.0))) + (dot(xv[2], vec4<f32>(1.0)) + dot(xv[3], vec4<f32>(1.0)));
        let xsb = (dot(xv[4], vec4<f32>(1.0)) + dot(xv[5], vec4<f32>(1.0))) + (dot(xv[6], vec4<f32>(1.0)) + dot(xv[7], vec4<f32>(1.0)));
{{- range $k := seq 4}}
        xv[{{$k}}] *= vec4<f32>(1.0, 0.00390625, 1.0, 0.00390625);
        xv[{{add $k 4}}] *= vec4<f32>(0.0625, 0.000244140625, 0.0625, 0.000244140625);
{{- end}}
{{- end}}
{{- else}}
{{- range $k := seq 8}}
        xv[{{$k}}] = x[8u * u + {{$k}}u];
{{- end}}
{{- if .Norm}}
        ss += ((dot(xv[0], xv[0]) + dot(xv[1], xv[1])) + (dot(xv[2], xv[2]) + dot(xv[3], xv[3])))
            + ((dot(xv[4], xv[4]) + dot(xv[5], xv[5])) + (dot(xv[6], xv[6]) + dot(xv[7], xv[7])));
{{- end}}
{{- if or .Norm .Q8Sum}}
{{- range $k := seq 8}}
        xv[{{$k}}] *= {{if $.Norm}}nw[8u * u + {{$k}}u]{{end}}{{if and $.Norm $.Q8Sum}} * {{end}}{{if $.Q8Sum}}SL{{end}};
{{- end}}
{{- end}}
{{- end}}
{{- range $g := seq (div .R .XG)}}
        { // rows {{mul $g $.XG}} … {{add (mul $g $.XG) (add $.XG -1)}}: their loads, then their sums
{{- range $k := seq $.XG}}{{$r := add (mul $g $.XG) $k}}
{{- if $.Wide}}
            let wb{{$k}} = ((p.w_row0 + min(r0 + {{$r}}u, p.rows - 1u)) * bpr + bi) * {{div $.QBW 4}}u;
            let wh{{$k}} = w[wb{{$k}} + qqhoff(g)];
            let wq{{$k}} = w[wb{{$k}} + {{$.QOff}}u + j];
{{- if $.Q5}}
            let wqh{{$k}} = w[wb{{$k}} + 1u + (j & 1u)];
{{- end}}
{{- if $swiglu}}
            let ub{{$k}} = ((p.u_row0 + min(r0 + {{$r}}u, p.rows - 1u)) * bpr + bi) * {{div $.QBW 4}}u;
            let uh{{$k}} = wu[ub{{$k}} + qqhoff(g)];
            let uq{{$k}} = wu[ub{{$k}} + {{$.QOff}}u + j];
{{- if $.Q5}}
            let uqh{{$k}} = wu[ub{{$k}} + 1u + (j & 1u)];
{{- end}}
{{- end}}
{{- else if $.Q8Sum}}
            // Q8_0 as Q8Sum reads it: d applied to the block's sum of q·x
            let wb{{$k}} = ((p.w_row0 + min(r0 + {{$r}}u, p.rows - 1u)) * bpr + bi) * 9u;
            let wd{{$k}} = w[wb{{$k}}];
{{- range $i := seq 8}}
            let wv{{$k}}_{{$i}} = w[wb{{$k}} + {{add $i 1}}u];
{{- end}}
{{- if $swiglu}}
            let ub{{$k}} = ((p.u_row0 + min(r0 + {{$r}}u, p.rows - 1u)) * bpr + bi) * 9u;
            let ud{{$k}} = wu[ub{{$k}}];
{{- range $i := seq 8}}
            let uv{{$k}}_{{$i}} = wu[ub{{$k}} + {{add $i 1}}u];
{{- end}}
{{- end}}
{{- else}}
            let wb{{$k}} = ((p.w_row0 + min(r0 + {{$r}}u, p.rows - 1u)) * bpr + bi) * {{$.QBW}}u;
            let wh{{$k}} = qhead_w(wb{{$k}}, j);
{{- if $swiglu}}
            let ub{{$k}} = ((p.u_row0 + min(r0 + {{$r}}u, p.rows - 1u)) * bpr + bi) * {{$.QBW}}u;
            let uh{{$k}} = qhead_wu(ub{{$k}}, j);
{{- end}}
{{- end}}
{{- end}}
{{- range $k := seq $.XG}}{{$r := add (mul $g $.XG) $k}}
{{- if $.XFold}}
            acc[{{$r}}] += qfold(wq{{$k}}, qqscales(wh{{$k}}, g), xv, xsa, xsb);
{{- if $swiglu}}
            acc2[{{$r}}] += qfold(uq{{$k}}, qqscales(uh{{$k}}, g), xv, xsa, xsb);
{{- end}}
{{- else if $.Wide}}
            {
                let wv = qquad(wq{{$k}}, {{if $.Q5}}wqh{{$k}}{{else}}vec4<u32>(0u){{end}}, g, qqscales(wh{{$k}}, g));
                acc[{{$r}}] += (dot(wv.a0, xv[0]) + dot(wv.a1, xv[1])) + (dot(wv.a2, xv[2]) + dot(wv.a3, xv[3]))
                             + ((dot(wv.b0, xv[4]) + dot(wv.b1, xv[5])) + (dot(wv.b2, xv[6]) + dot(wv.b3, xv[7])));
{{- if $swiglu}}
                let uv = qquad(uq{{$k}}, {{if $.Q5}}uqh{{$k}}{{else}}vec4<u32>(0u){{end}}, g, qqscales(uh{{$k}}, g));
                acc2[{{$r}}] += (dot(uv.a0, xv[0]) + dot(uv.a1, xv[1])) + (dot(uv.a2, xv[2]) + dot(uv.a3, xv[3]))
                              + ((dot(uv.b0, xv[4]) + dot(uv.b1, xv[5])) + (dot(uv.b2, xv[6]) + dot(uv.b3, xv[7])));
{{- end}}
            }
{{- else if $.Q8Sum}}
            acc[{{$r}}] += qf16(wd{{$k}}) * (((dot(q8half(wv{{$k}}_0), xv[0]) + dot(q8half(wv{{$k}}_1), xv[1])) + (dot(q8half(wv{{$k}}_2), xv[2]) + dot(q8half(wv{{$k}}_3), xv[3])))
                + ((dot(q8half(wv{{$k}}_4), xv[4]) + dot(q8half(wv{{$k}}_5), xv[5])) + (dot(q8half(wv{{$k}}_6), xv[6]) + dot(q8half(wv{{$k}}_7), xv[7]))));
{{- if $swiglu}}
            acc2[{{$r}}] += qf16(ud{{$k}}) * (((dot(q8half(uv{{$k}}_0), xv[0]) + dot(q8half(uv{{$k}}_1), xv[1])) + (dot(q8half(uv{{$k}}_2), xv[2]) + dot(q8half(uv{{$k}}_3), xv[3])))
                + ((dot(q8half(uv{{$k}}_4), xv[4]) + dot(q8half(uv{{$k}}_5), xv[5])) + (dot(q8half(uv{{$k}}_6), xv[6]) + dot(q8half(uv{{$k}}_7), xv[7]))));
{{- end}}
{{- else}}
            acc[{{$r}}] += ((dot(qvals_w(wb{{$k}}, j, 0u, wh{{$k}}), xv[0]) + dot(qvals_w(wb{{$k}}, j, 1u, wh{{$k}}), xv[1]))
                + (dot(qvals_w(wb{{$k}}, j, 2u, wh{{$k}}), xv[2]) + dot(qvals_w(wb{{$k}}, j, 3u, wh{{$k}}), xv[3])))
                + ((dot(qvals_w(wb{{$k}}, j, 4u, wh{{$k}}), xv[4]) + dot(qvals_w(wb{{$k}}, j, 5u, wh{{$k}}), xv[5]))
                + (dot(qvals_w(wb{{$k}}, j, 6u, wh{{$k}}), xv[6]) + dot(qvals_w(wb{{$k}}, j, 7u, wh{{$k}}), xv[7])));
{{- if $swiglu}}
            acc2[{{$r}}] += ((dot(qvals_wu(ub{{$k}}, j, 0u, uh{{$k}}), xv[0]) + dot(qvals_wu(ub{{$k}}, j, 1u, uh{{$k}}), xv[1]))
                + (dot(qvals_wu(ub{{$k}}, j, 2u, uh{{$k}}), xv[2]) + dot(qvals_wu(ub{{$k}}, j, 3u, uh{{$k}}), xv[3])))
                + ((dot(qvals_wu(ub{{$k}}, j, 4u, uh{{$k}}), xv[4]) + dot(qvals_wu(ub{{$k}}, j, 5u, uh{{$k}}), xv[5]))
                + (dot(qvals_wu(ub{{$k}}, j, 6u, uh{{$k}}), xv[6]) + dot(qvals_wu(ub{{$k}}, j, 7u, uh{{$k}}), xv[7])));
{{- end}}
{{- end}}
{{- end}}
        }
{{- end}}
    }
{{- else if .Wide}}
    // Quads (lib_quant's quant_quad): 16-byte loads of quants, consecutive
    // threads on consecutive vec4s of a row; every load of the R rows
    // (scales, quants, fifth bits) issued before any is used.
    let bpr = p.cols / {{.QBS}}u;      // blocks per row
    let nq = bpr * 8u;                 // quads per row
    for (var q = lane; q < nq; q += TPR) {
        let bi = q >> 3u;              // block of the row
        let j = q & 7u;                // quad of the block
        let g = j >> 1u;
        let xo = bi * {{div .QBS 4}}u + 16u * g + 4u * (j & 1u); // x vec4 of a[0]
        var wh: array<vec4<u32>, R>;
        var wq: array<vec4<u32>, R>;
{{- if .Q5}}
        var wqh: array<vec4<u32>, R>;
{{- end}}
{{- if $swiglu}}
        var uh: array<vec4<u32>, R>;
        var uq: array<vec4<u32>, R>;
{{- if .Q5}}
        var uqh: array<vec4<u32>, R>;
{{- end}}
{{- end}}
        for (var rr = 0u; rr < R; rr++) {
            let wb = (wr[rr] * bpr + bi) * {{div .QBW 4}}u;
            wh[rr] = w[wb + qqhoff(g)];
            wq[rr] = w[wb + {{.QOff}}u + j];
{{- if .Q5}}
            wqh[rr] = w[wb + 1u + (j & 1u)];
{{- end}}
{{- if $swiglu}}
            let ub = (ur[rr] * bpr + bi) * {{div .QBW 4}}u;
            uh[rr] = wu[ub + qqhoff(g)];
            uq[rr] = wu[ub + {{.QOff}}u + j];
{{- if .Q5}}
            uqh[rr] = wu[ub + 1u + (j & 1u)];
{{- end}}
{{- end}}
        }
{{- if .Norm}}
        var na: array<vec4<f32>, 4>;
        var nb: array<vec4<f32>, 4>;
        for (var k = 0u; k < 4u; k++) {
            na[k] = nw[xo + k];
            nb[k] = nw[xo + 8u + k];
        }
{{- end}}
        // One row at a time, decoded once for the B tokens.
        for (var rr = 0u; rr < R; rr++) {
            let wv = qquad(wq[rr], {{if .Q5}}wqh[rr]{{else}}vec4<u32>(0u){{end}}, g, qqscales(wh[rr], g));
{{- if $swiglu}}
            let uv = qquad(uq[rr], {{if .Q5}}uqh[rr]{{else}}vec4<u32>(0u){{end}}, g, qqscales(uh[rr], g));
{{- end}}
            for (var b = 0u; b < B; b++) {
                let xb = b * xrow + xo;
{{- template "quadx" .}}
                let sw = (dot(wv.a0, x0) + dot(wv.a1, x1)) + (dot(wv.a2, x2) + dot(wv.a3, x3))
                       + ((dot(wv.b0, x4) + dot(wv.b1, x5)) + (dot(wv.b2, x6) + dot(wv.b3, x7)));
{{- if $swiglu}}
                let su = (dot(uv.a0, x0) + dot(uv.a1, x1)) + (dot(uv.a2, x2) + dot(uv.a3, x3))
                       + ((dot(uv.b0, x4) + dot(uv.b1, x5)) + (dot(uv.b2, x6) + dot(uv.b3, x7)));
{{- end}}
                acc[rr * B + b] += sw;
{{- if $swiglu}}
                acc2[rr * B + b] += su;
{{- end}}
            }
        }
    }
{{- else if .Q8Sum}}
    // Q8_0, one token (B = 1): runs of CPT chunks of 8 values (1 or 2),
    // each block's d applied once to its run's sum of q·x, and
    // the int8 quants read without shifts (lib_quant's q8half; x carries
    // the 2^-pos, SL). x and its norm are formed once a run for all R rows
    // (and both matrices with SwiGLU).
    let bpr = p.cols / 32u;            // blocks per row
    let nq = p.cols / {{mul 8 .CPT}}u; // runs per row
    for (var q = lane; q < nq; q += TPR) {
        let bi = q / {{div 4 .CPT}}u;  // block of the row
        let c0 = (q % {{div 4 .CPT}}u) * CPT; // first chunk of the run
        var wd: array<u32, R>;
        var wv: array<array<u32, {{mul 2 .CPT}}>, R>;
{{- if $swiglu}}
        var ud: array<u32, R>;
        var uv: array<array<u32, {{mul 2 .CPT}}>, R>;
{{- end}}
        for (var rr = 0u; rr < R; rr++) {
            let wb = (wr[rr] * bpr + bi) * 9u;
            wd[rr] = w[wb];
{{- if $swiglu}}
            let ub = (ur[rr] * bpr + bi) * 9u;
            ud[rr] = wu[ub];
{{- end}}
            for (var i = 0u; i < 2u * CPT; i++) {
                wv[rr][i] = w[wb + 1u + 2u * c0 + i];
{{- if $swiglu}}
                uv[rr][i] = wu[ub + 1u + 2u * c0 + i];
{{- end}}
            }
        }
        var xs: array<vec4<f32>, {{mul 2 .CPT}}>;
        for (var i = 0u; i < 2u * CPT; i++) {
            let xo = bi * 8u + 2u * c0 + i;
            xs[i] = x[xo]{{if .Norm}} * nw[xo]{{end}} * SL;
        }
        for (var rr = 0u; rr < R; rr++) {
            var sw = 0.0;
{{- if $swiglu}}
            var su = 0.0;
{{- end}}
            for (var i = 0u; i < 2u * CPT; i++) {
                sw += dot(q8half(wv[rr][i]), xs[i]);
{{- if $swiglu}}
                su += dot(q8half(uv[rr][i]), xs[i]);
{{- end}}
            }
            acc[rr] += qf16(wd[rr]) * sw;
{{- if $swiglu}}
            acc2[rr] += qf16(ud[rr]) * su;
{{- end}}
        }
    }
{{- else if .Quant}}
    let bpr = p.cols / {{.QBS}}u;      // blocks per row
    let nq = p.cols / {{mul 8 .CPT}}u;      // runs of CPT chunks per row
    for (var q = lane; q < nq; q += TPR) {
        let bi = q / {{div .QBS (mul 8 .CPT)}}u;          // block of the row
        let c0 = (q % {{div .QBS (mul 8 .CPT)}}u) * CPT;  // first chunk of the run
        var wblk: array<u32, R>;
        var wh: array<QCHead, R>;
{{- if $swiglu}}
        var ublk: array<u32, R>;
        var uh: array<QCHead, R>;
{{- end}}
        for (var rr = 0u; rr < R; rr++) {
            wblk[rr] = (wr[rr] * bpr + bi) * {{.QBW}}u;
            wh[rr] = qchead_w(wblk[rr], c0);
{{- if $swiglu}}
            ublk[rr] = (ur[rr] * bpr + bi) * {{.QBW}}u;
            uh[rr] = qchead_wu(ublk[rr], c0);
{{- end}}
        }
        for (var k = 0u; k < CPT; k++) {
            let c = c0 + k;
            let xo = vec2<u32>(bi * {{div .QBS 4}}u) + qxoff(c);
            var wa: array<vec4<f32>, R>;
            var wb: array<vec4<f32>, R>;
{{- if $swiglu}}
            var ua: array<vec4<f32>, R>;
            var ub: array<vec4<f32>, R>;
{{- end}}
            for (var rr = 0u; rr < R; rr++) {
                let v = qcbody_w(wblk[rr], c, wh[rr]);
                wa[rr] = v.a;
                wb[rr] = v.b;
{{- if $swiglu}}
                let vu = qcbody_wu(ublk[rr], c, uh[rr]);
                ua[rr] = vu.a;
                ub[rr] = vu.b;
{{- end}}
            }
{{- if .Norm}}
            let na = nw[xo.x];
            let nb = nw[xo.y];
{{- end}}
            for (var b = 0u; b < B; b++) {
                let xa = x[b * xrow + xo.x]{{if .Norm}} * na{{end}};
                let xb = x[b * xrow + xo.y]{{if .Norm}} * nb{{end}};
                for (var rr = 0u; rr < R; rr++) {
                    acc[rr * B + b] += dot(wa[rr], xa) + dot(wb[rr], xb);
{{- if $swiglu}}
                    acc2[rr * B + b] += dot(ua[rr], xa) + dot(ub[rr], xb);
{{- end}}
                }
            }
        }
    }
{{- else if .Vec}}
{{- $n := "8u"}}{{if eq .DType "F32"}}{{$n = "4u"}}{{end}}
    let nc = p.cols / {{$n}};
    for (var j = lane; j < nc; j += TPR) {
        var wv: array<{{.WT}}, R>;
{{- if $swiglu}}
        var uv: array<{{.WT}}, R>;
{{- end}}
        for (var rr = 0u; rr < R; rr++) {
            wv[rr] = w[wr[rr] * nc + j];
{{- if $swiglu}}
            uv[rr] = wu[ur[rr] * nc + j];
{{- end}}
        }
{{- if .Norm}}
{{- if eq .DType "F32"}}
        let nj = nw[j];
{{- else}}
        let na = nw[2u * j];
        let nb = nw[2u * j + 1u];
{{- end}}
{{- end}}
        for (var b = 0u; b < B; b++) {
{{- if eq .DType "F32"}}
            let xv = x[b * xrow + j]{{if .Norm}} * nj{{end}};
            for (var rr = 0u; rr < R; rr++) {
                acc[rr * B + b] += dot(wv[rr], xv);
{{- if $swiglu}}
                acc2[rr * B + b] += dot(uv[rr], xv);
{{- end}}
            }
{{- else}}
            let xa = x[b * xrow + 2u * j]{{if .Norm}} * na{{end}};
            let xb = x[b * xrow + 2u * j + 1u]{{if .Norm}} * nb{{end}};
            for (var rr = 0u; rr < R; rr++) {
                acc[rr * B + b] += dot8(wv[rr], xa, xb);
{{- if $swiglu}}
                acc2[rr * B + b] += dot8(uv[rr], xa, xb);
{{- end}}
            }
{{- end}}
        }
    }
{{- else}}
    for (var c = lane; c < p.cols; c += TPR) {
        var wv: array<f32, R>;
{{- if $swiglu}}
        var uv: array<f32, R>;
{{- end}}
        for (var rr = 0u; rr < R; rr++) {
{{- if eq .DType "F32"}}
            wv[rr] = w[wr[rr] * p.cols + c];
{{- if $swiglu}}
            uv[rr] = wu[ur[rr] * p.cols + c];
{{- end}}
{{- else}}
            let g = wr[rr] * p.cols + c;
            wv[rr] = at(w[g >> 1u], g & 1u);
{{- if $swiglu}}
            let gu = ur[rr] * p.cols + c;
            uv[rr] = at(wu[gu >> 1u], gu & 1u);
{{- end}}
{{- end}}
        }
{{- if .Norm}}
        let nc = nw[c];
{{- end}}
        for (var b = 0u; b < B; b++) {
            let xv = x[b * xrow + c]{{if .Norm}} * nc{{end}};
            for (var rr = 0u; rr < R; rr++) {
                acc[rr * B + b] += wv[rr] * xv;
{{- if $swiglu}}
                acc2[rr * B + b] += uv[rr] * xv;
{{- end}}
            }
        }
    }
{{- end}}
{{- if and .Norm (not .XReg)}}
    // scale_b = 1 / sqrt(mean(x_b²) + eps), summed by the whole workgroup,
    // RC tokens a round (the rounds written out). After the loop, which
    // does not need it (the scale multiplies the rows' sums), so that the
    // weights' loads are issued at once, not after this sum's loads of x
    // and its barriers (a one-token matvec is mostly latency).
    var scale: array<f32, B>;
{{- range .NormRounds}}
    {
        let b0 = {{.}}u;
        for (var i = 0u; i < NRC; i++) {
            var ss = 0.0;
            if (b0 + i < B) {
                for (var j = lid; j < xrow; j += WG) {
                    let v = x[(b0 + i) * xrow + j];
                    ss += {{if eq $.XW 4}}dot(v, v){{else}}v * v{{end}};
                }
            }
            red[i * WG + lid] = ss;
        }
        workgroupBarrier();
        for (var s = WG / 2u; s > 0u; s >>= 1u) {
            if (lid < s) {
                for (var i = 0u; i < NRC; i++) {
                    red[i * WG + lid] += red[i * WG + lid + s];
                }
            }
            workgroupBarrier();
        }
        for (var i = 0u; i < NRC; i++) {
            if (b0 + i < B) {
                scale[b0 + i] = inverseSqrt(red[i * WG] / f32(p.cols) + p.eps);
            }
        }
        workgroupBarrier(); // every thread has read red before it is reused
    }
{{- end}}
{{- end}}
{{- if .XReg}}
    // Each row's partials, one a thread: the XS threads of row lid / XS sum
    // a strided share each (WG / XS = R of them, so that a warp's reads of
    // red fall on different banks but for rows WG floats apart), then thread
    // r < R sums row r's XS shares and writes the output.
{{- range $r := seq .R}}
    red[{{$r}}u * WG + lid] = acc[{{$r}}];
{{- if $swiglu}}
    red2[{{$r}}u * WG + lid] = acc2[{{$r}}];
{{- end}}
{{- end}}
{{- if .Norm}}
    rss[lid] = ss;
{{- end}}
    workgroupBarrier();
    let row = lid / XS;
    var part = 0.0;
{{- if $swiglu}}
    var part2 = 0.0;
{{- end}}
    for (var i = 0u; i < R; i++) {
        part += red[row * WG + i * XS + lid % XS];
{{- if $swiglu}}
        part2 += red2[row * WG + i * XS + lid % XS];
{{- end}}
    }
{{- if .Norm}}
    // x²: the first XS threads sum a strided share of the WG sums each
    var pss = 0.0;
    if (lid < XS) {
        for (var i = 0u; i < R; i++) {
            pss += rss[i * XS + lid];
        }
    }
{{- end}}
    workgroupBarrier(); // every partial is read before red is reused
    red[lid] = part;
{{- if $swiglu}}
    red2[lid] = part2;
{{- end}}
{{- if .Norm}}
    if (lid < XS) {
        rss[lid] = pss;
    }
{{- end}}
    workgroupBarrier();
    if (lid < R && r0 + lid < p.rows) {
        var y = 0.0;
{{- if $swiglu}}
        var yu = 0.0;
{{- end}}
        for (var i = 0u; i < XS; i++) {
            y += red[lid * XS + i];
{{- if $swiglu}}
            yu += red2[lid * XS + i];
{{- end}}
        }
{{- if .Norm}}
        var tss = 0.0;
        for (var i = 0u; i < XS; i++) {
            tss += rss[i];
        }
        let sc = inverseSqrt(tss / f32(p.cols) + p.eps);
{{- end}}
{{- if .PreAdd}}
        out[p.out0 + r0 + lid] = resid + y{{if .Norm}} * sc{{end}};
{{- else}}
        emit(p.out0 + r0 + lid, y{{if .Norm}} * sc{{end}}, {{if $swiglu}}yu{{if .Norm}} * sc{{end}}{{else}}0.0{{end}});
{{- end}}
    }
{{- else if .Red1}}
    // Sum each partial over the group, RC a round (the rounds written out,
    // so that every index into acc is a constant once the loops over i are
    // unrolled and acc can stay in registers). Red1 (the default): each
    // round, every thread's RC partials go to red at once; after one
    // barrier thread t < RC · GROUPS sums partial
    // i0 + t / GROUPS of group t % GROUPS over its TPR lanes and writes that
    // output itself: two barriers a round where the tree takes log2(TPR) + 2.
    // Thread t starts at lane t % TPR and wraps around, so that the 32
    // threads of a warp read 32 different banks at every step (in lane order
    // they would all read the same bank, TPR floats apart: run 14's
    // matvec_tred, which lost 8%, did that). On the H200 in run 19, 16 rows
    // +41% against the tree, one token of Q8_0 +3%, of bf16 ±0.4%.
{{- range $i0 := .Rounds}}
    {
        let i0 = {{$i0}}u;
{{- range $k := seq $.RC}}{{if lt (add $i0 $k) (mul $.R $.B)}}
        red[{{$k}}u * WG + lid] = acc[{{add $i0 $k}}];
{{- if $swiglu}}
        red2[{{$k}}u * WG + lid] = acc2[{{add $i0 $k}}];
{{- end}}
{{- end}}{{end}}
        workgroupBarrier();
        for (var t = lid; t < RC * GROUPS; t += WG) {
            let a = i0 + t / GROUPS;   // rr · B + b
            let grp = t % GROUPS;
            let r = ((wid.x + wid.y * nwg.x) * GROUPS + grp) * R + a / B;
            if (a < NA && r < p.rows) {
                let b = a % B;
                let base = (t / GROUPS) * WG + grp * TPR;
                var y = 0.0;
{{- if $swiglu}}
                var yu = 0.0;
{{- end}}
                for (var l = 0u; l < TPR; l++) {
                    let k = base + (l + t) % TPR;
                    y += red[k];
{{- if $swiglu}}
                    yu += red2[k];
{{- end}}
                }
{{- if $.PreAdd}}
                out[b * p.out_stride + p.out0 + r] = resid + y{{if $.Norm}} * scale[b]{{end}};
{{- else}}
                emit(b * p.out_stride + p.out0 + r, y{{if $.Norm}} * scale[b]{{end}}, {{if $swiglu}}yu{{if $.Norm}} * scale[b]{{end}}{{else}}0.0{{end}});
{{- end}}
            }
        }
        workgroupBarrier(); // every partial is read before red is reused
    }
{{- end}}
{{- else}}
    // The tree (QWGPU_TUNE=matvec_red1=-1, and GL): the same rounds, each
    // partial summed over the group through a tree; lane 0 keeps the totals
    // in acc and writes the outputs.
{{- range .Rounds}}
    {
        let i0 = {{.}}u;
        for (var i = 0u; i < RC; i++) {
            if (i0 + i < NA) {
                red[i * WG + lid] = acc[i0 + i];
{{- if $swiglu}}
                red2[i * WG + lid] = acc2[i0 + i];
{{- end}}
            }
        }
        workgroupBarrier();
        for (var s = TPR / 2u; s > 0u; s >>= 1u) {
            if (lane < s) {
                for (var i = 0u; i < RC; i++) {
                    red[i * WG + lid] += red[i * WG + lid + s];
{{- if $swiglu}}
                    red2[i * WG + lid] += red2[i * WG + lid + s];
{{- end}}
                }
            }
            workgroupBarrier();
        }
        if (lane == 0u) {
            for (var i = 0u; i < RC; i++) {
                if (i0 + i < NA) {
                    acc[i0 + i] = red[i * WG + lid];
{{- if $swiglu}}
                    acc2[i0 + i] = red2[i * WG + lid];
{{- end}}
                }
            }
        }
        workgroupBarrier(); // every partial is read before red is reused
    }
{{- end}}
    if (lane == 0u) {
        for (var rr = 0u; rr < R; rr++) {
            let r = r0 + rr;
            if (r < p.rows) {
                for (var b = 0u; b < B; b++) {
                    emit(b * p.out_stride + p.out0 + r, acc[rr * B + b]{{if .Norm}} * scale[b]{{end}},
                         {{if $swiglu}}acc2[rr * B + b]{{if .Norm}} * scale[b]{{end}}{{else}}0.0{{end}});
                }
            }
        }
    }
{{- end}}
}

{{/* quadx loads the eight vec4s of x a quad multiplies (x0..x7: values
     0..15 and 32..47 of the quad's columns from xb), scaled by the norm
     weights na, nb with NORM. */}}
{{define "quadx"}}
{{- if .Norm}}
        let x0 = x[xb] * na[0];
        let x1 = x[xb + 1u] * na[1];
        let x2 = x[xb + 2u] * na[2];
        let x3 = x[xb + 3u] * na[3];
        let x4 = x[xb + 8u] * nb[0];
        let x5 = x[xb + 9u] * nb[1];
        let x6 = x[xb + 10u] * nb[2];
        let x7 = x[xb + 11u] * nb[3];
{{- else}}
        let x0 = x[xb];
        let x1 = x[xb + 1u];
        let x2 = x[xb + 2u];
        let x3 = x[xb + 3u];
        let x4 = x[xb + 8u];
        let x5 = x[xb + 9u];
        let x6 = x[xb + 10u];
        let x7 = x[xb + 11u];
{{- end}}
{{- end}}
