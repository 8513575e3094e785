// qkv_norm_rope: the input stage of Qwen3 attention for one layer.
//
// For every head of q, k and v (Qwen3Attention.forward in Hugging Face
// transformers, modeling_qwen3.py):
//   q_h = RoPE(RMSNorm_head(q_h) · q_norm, pos)
//   k_h = RoPE(RMSNorm_head(k_h) · k_norm, pos)
//   v_h = v_h
// RMSNorm_head normalises over the head_dim values of one head; RoPE is the
// rotate-half (NeoX) form: element i pairs with element i + HD/2, rotated by
// the uploaded tables cos[pos, i], sin[pos, i] (the same tables as the CPU
// reference, never computed here). q goes to its own buffer, k and v into
// the layer's KV cache at row (slot, pos) of the token's step row, in the
// cache's element format KV (lib_kv: f32, or f16/bf16 packed in pairs,
// which go through workgroup memory so that one thread writes each word).
//
// Two variants, chosen by the template:
//   decode  (PREFILL false): one token, step row 0. The kernel also
//           projects: each workgroup computes the HD rows of one head of
//           W · x (f32 sums), then normalises and rotates them in workgroup
//           memory. Workgroup h < NQ is q head h, then NKV k heads, then NKV
//           v heads.
//   rows    (PREFILL true): the step's T = step.rows tokens, already
//           projected (by a matmul or a batched matvec) into qkv rows;
//           workgroup (t, h) (linear id t·NH3 + h) takes head h of row t, at
//           the slot and position of step row t.
//
// Bindings (decode):
//   0 p      uniform Params
//   1 x      [HIDDEN] f32                 the normalised layer input
//   2 w      [NH3·HD, HIDDEN] f32/bf16/f16 q_proj, k_proj, v_proj rows stacked;
//                                          bf16/f16 packed two per u32, element 2i low
//   3 qnorm  [HD] f32
//   4 knorm  [HD] f32
//   5 rope   [2, MAXPOS, HD/2] f32         the cos table, then the sin table
//   6 q      [NQ·HD] f32                   out
//   7 kcache [SLOTS, CTX, NKV·HD] KV       out: row (slot, pos)
//   8 vcache [SLOTS, CTX, NKV·HD] KV       out: row (slot, pos)
//   9 xnorm  [HIDDEN] f32                  with NORM: input_layernorm's weight;
//                                          x is then the raw layer input and is
//                                          normalised here (each workgroup sums x²)
//  10 step   uniform Step (lib_step)       the token's slot and position: row 0
// Bindings (rows): 1 qkv [T, NH3·HD] f32 instead of x and w, then qnorm,
// knorm, rope as 2..4, q [T, NQ·HD] f32 out as 5, kcache, vcache as 6, 7,
// step as 8.
//
// Params: eps  rms_norm_eps
//
// Dispatch: decode (NH3, 1, 1) workgroups of WG threads; rows
// Groups1D(T·NH3) workgroups of P2 threads.

struct Params {
    eps: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
{{template "step" .}}
{{template "kv" .}}

const HD: u32 = {{.HD}}u;
const HALF: u32 = {{.HALF}}u;
const NQ: u32 = {{.NQ}}u;
const NKV: u32 = {{.NKV}}u;
const NH3: u32 = {{.NH3}}u;
const KVDIM: u32 = {{.KVDIM}}u;
const SIN_OFFSET: u32 = {{.SINOFF}}u; // MAXPOS · HALF: where the sin table starts
const CTX: u32 = {{.CTX}}u;           // cache rows per slot
const WG: u32 = {{.WG}}u;
const P2: u32 = {{.P2}}u;             // HALF rounded up to a power of two, ≤ WG

@group(0) @binding(0) var<uniform> p: Params;
{{if .PREFILL}}
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read> qnorm: array<f32>;
@group(0) @binding(3) var<storage, read> knorm: array<f32>;
@group(0) @binding(4) var<storage, read> rope: array<f32>;
@group(0) @binding(5) var<storage, read_write> qout: array<f32>;
@group(0) @binding(6) var<storage, read_write> kcache: array<{{.KVWORD}}>;
@group(0) @binding(7) var<storage, read_write> vcache: array<{{.KVWORD}}>;
@group(0) @binding(8) var<uniform> step: Step;
{{else}}
const TPR: u32 = {{.TPR}}u;           // threads that share one weight row
const RPP: u32 = {{.RPP}}u;           // WG / TPR: rows per pass of the workgroup
const RPT: u32 = {{.RPT}}u;           // ⌈HD / RPP⌉: rows per thread
const UPR: u32 = {{.UPR}}u;           // load units per weight row
const RS: u32 = {{.RS}}u;             // TPR + 1: padded stride of the partial sums
const ROW0: u32 = {{.ROW0}}u;         // the first row of w within its buffer (a view)

@group(0) @binding(1) var<storage, read> x: array<{{.XTYPE}}>;
@group(0) @binding(2) var<storage, read> w: array<{{.WTYPE}}>;
@group(0) @binding(3) var<storage, read> qnorm: array<f32>;
@group(0) @binding(4) var<storage, read> knorm: array<f32>;
@group(0) @binding(5) var<storage, read> rope: array<f32>;
@group(0) @binding(6) var<storage, read_write> qout: array<f32>;
@group(0) @binding(7) var<storage, read_write> kcache: array<{{.KVWORD}}>;
@group(0) @binding(8) var<storage, read_write> vcache: array<{{.KVWORD}}>;
{{- if .NORM}}
@group(0) @binding(9) var<storage, read> xnorm: array<{{.XTYPE}}>;
@group(0) @binding(10) var<uniform> step: Step;
{{- else}}
@group(0) @binding(9) var<uniform> step: Step;
{{- end}}

var<workgroup> partial: array<f32, {{.REDSIZE}}>; // [HD, RS]
{{if eq .XOP "X8"}}
// Eight consecutive values of x, for one vec4<u32> of packed halves.
struct X8 {
    a: vec4<f32>,
    b: vec4<f32>,
}
{{end}}
// xn returns element j of the x array, times input_layernorm's weight
// with NORM (the 1/rms scale is applied to the sums afterwards).
fn xn(j: u32) -> {{.XTYPE}} {
    return x[j]{{if .NORM}} * xnorm[j]{{end}};
}

// x_at returns the values of x that load unit i of any weight row covers.
fn x_at(i: u32) -> {{.XOP}} {
{{- if or (eq .UNIT "f32x4") (eq .UNIT "f32")}}
    return xn(i);
{{- else if eq .XOP "X8"}}
    return X8(xn(2u * i), xn(2u * i + 1u));
{{- else}}
    return vec2<f32>(xn(2u * i), xn(2u * i + 1u));
{{- end}}
}

// unit_dot returns the dot product of one load unit of weights with the
// matching values of x.
fn unit_dot(u: {{.WTYPE}}, xv: {{.XOP}}) -> f32 {
{{- if eq .UNIT "f32x4"}}
    return dot(u, xv);
{{- else if eq .UNIT "f32"}}
    return u * xv;
{{- else if eq .UNIT "bf16x8"}}
    // u.x holds elements 0 (low half) and 1 (high half), u.y 2 and 3, ...
    let even = bitcast<vec4<f32>>(u << vec4<u32>(16u));
    let odd = bitcast<vec4<f32>>(u & vec4<u32>(0xffff0000u));
    return dot(even, vec4<f32>(xv.a.x, xv.a.z, xv.b.x, xv.b.z)) + dot(odd, vec4<f32>(xv.a.y, xv.a.w, xv.b.y, xv.b.w));
{{- else if eq .UNIT "bf16x2"}}
    return bitcast<f32>(u << 16u) * xv.x + bitcast<f32>(u & 0xffff0000u) * xv.y;
{{- else if eq .UNIT "f16x8"}}
    let e0 = unpack2x16float(u.x);
    let e1 = unpack2x16float(u.y);
    let e2 = unpack2x16float(u.z);
    let e3 = unpack2x16float(u.w);
    return dot(vec4<f32>(e0, e1), xv.a) + dot(vec4<f32>(e2, e3), xv.b);
{{- else if eq .UNIT "f16x2"}}
    return dot(unpack2x16float(u), xv);
{{- end}}
}
{{end}}
var<workgroup> y: array<f32, HD>;     // the head's values before the norm
var<workgroup> ss: array<f32, P2>;    // sum-of-squares tree

@compute @workgroup_size({{.WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
{{- if .PREFILL}}
    // Groups may be a 2-D grid when T·NH3 exceeds 65535 workgroups.
    let id = wid.y * nwg.x + wid.x;
    let live = id < step.rows * NH3;
    let row = min(id / NH3, step.rows - 1u);
    let head = id % NH3;
    let slot = step.row[row].x;
    let pos = step.row[row].y;
    if (tid < HALF) {
        let src = row * (NH3 * HD) + head * HD + tid;
        y[tid] = qkv[src];
        y[tid + HALF] = qkv[src + HALF];
    }
{{- else}}
    let live = true;
    let row = 0u;
    let head = wid.x;
    let slot = step.row[0].x;
    let pos = step.row[0].y;
{{- end}}
    // The head's norm weights and RoPE factors (tid < HALF), loaded before
    // the projection and the reductions, not after them: on a large model
    // they come from memory, and a one-token step is mostly latency.
    var nwa = 1.0;
    var nwb = 1.0;
    var rc = 1.0;
    var rs = 0.0;
    if (tid < HALF) {
        if (head < NQ) {
            nwa = qnorm[tid];
            nwb = qnorm[tid + HALF];
        } else if (head < NQ + NKV) {
            nwa = knorm[tid];
            nwb = knorm[tid + HALF];
        }
        rc = rope[pos * HALF + tid];
        rs = rope[SIN_OFFSET + pos * HALF + tid];
    }
{{- if not .PREFILL}}

    // W · x for the head's HD rows: thread (r0, lane) owns rows r0, r0+RPP,
    // … (RPT of them) and sums every TPR-th load unit of each, so that
    // neighbouring threads read neighbouring words, each x unit is loaded
    // once for all RPT rows, and RPT independent weight loads are in flight.
    let lane = tid % TPR;
    let r0 = tid / TPR;
    let base = (ROW0 + head * HD) * UPR;
    var acc: array<f32, RPT>;
    for (var i = lane; i < UPR; i += TPR) {
        let xv = x_at(i);
        for (var k = 0u; k < RPT; k++) {
            // Rows past HD (when RPP does not divide HD) reread the last row.
            let r = min(r0 + k * RPP, HD - 1u);
            acc[k] += unit_dot(w[base + r * UPR + i], xv);
        }
    }
{{- if .NORM}}
    // input_layernorm: scale = 1 / sqrt(mean(x²) + eps), summed by the
    // whole workgroup after the projection's loop, which does not need it
    // (it scales the sums), so that the weights' loads start at once.
    var sq = 0.0;
    for (var j = tid; j < {{.HIDDEN}}u / {{.XW}}u; j += WG) {
        let v = x[j];
        sq += {{if eq .XW 4}}dot(v, v){{else}}v * v{{end}};
    }
    partial[tid] = sq;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            partial[tid] += partial[tid + s];
        }
        workgroupBarrier();
    }
    let xscale = inverseSqrt(partial[0] / f32({{.HIDDEN}}) + p.eps);
    workgroupBarrier(); // every thread has read partial[0] before it is reused
{{- end}}
    for (var k = 0u; k < RPT; k++) {
        let r = r0 + k * RPP;
        if (r < HD) {
            partial[r * RS + lane] = acc[k];
        }
    }
    workgroupBarrier();
    if (tid < HD) {
        var s = 0.0;
        for (var l = 0u; l < TPR; l++) {
            s += partial[tid * RS + l];
        }
        y[tid] = s{{if .NORM}} * xscale{{end}};
    }
{{- end}}
    workgroupBarrier();

    // Sum of squares over the head (computed for v heads too, and unused,
    // so that every barrier stays in uniform control flow).
    if (tid < P2) {
        var s = 0.0;
        if (tid < HALF) {
            let a = y[tid];
            let b = y[tid + HALF];
            s = a * a + b * b;
        }
        ss[tid] = s;
    }
    workgroupBarrier();
    for (var stride = P2 / 2u; stride > 0u; stride = stride / 2u) {
        if (tid < stride) {
            ss[tid] += ss[tid + stride];
        }
        workgroupBarrier();
    }

    var a = 0.0;
    var b = 0.0;
    if (live && tid < HALF) {
        a = y[tid];
        b = y[tid + HALF];
    }
    if (live && tid < HALF && head < NQ + NKV) {
        let scale = 1.0 / sqrt(ss[0] / f32(HD) + p.eps);
        a = a * scale * nwa;
        b = b * scale * nwb;
        let ra = a * rc - b * rs;
        let rb = b * rc + a * rs;
        a = ra;
        b = rb;
    }
    if (head < NQ) {
        if (live && tid < HALF) {
            let dst = row * (NQ * HD) + head * HD + tid;
            qout[dst] = a;
            qout[dst + HALF] = b;
        }
        return;
    }
    let kvh = select(head - NQ - NKV, head - NQ, head < NQ + NKV);
{{- if eq .KV "f32"}}
    if (!live || tid >= HALF) {
        return;
    }
    let dst = (slot * CTX + pos) * KVDIM + kvh * HD + tid;
    if (head < NQ + NKV) {
        kcache[dst] = a;
        kcache[dst + HALF] = b;
    } else {
        vcache[dst] = a;
        vcache[dst + HALF] = b;
    }
{{- else}}
    // Word i of the head holds elements 2i and 2i + 1: pair them up in
    // workgroup memory (this thread alone has read y[tid], y[tid + HALF]).
    if (live && tid < HALF) {
        y[tid] = a;
        y[tid + HALF] = b;
    }
    workgroupBarrier();
    if (!live || tid >= HALF) {
        return;
    }
    let word = kv_pack(y[2u * tid], y[2u * tid + 1u]);
    let dst = (slot * CTX + pos) * (KVDIM / 2u) + kvh * HALF + tid;
    if (head < NQ + NKV) {
        kcache[dst] = word;
    } else {
        vcache[dst] = word;
    }
{{- end}}
}
