// matmul: Y[t, r] = Σ_c X[t, c] · W[r, c] over T tokens (prefill), with an epilogue.
//
// Epilogues (EPI), o = t * out_stride + out0 + r:
//   store   out[o] = Y[t, r]
//   add     out[o] = out[o] + Y[t, r]        (h += X · W_oᵀ on the residual itself)
//   swiglu  out[o] = SiLU(X·Gᵀ)[t, r] · (X·Uᵀ)[t, r]   (Qwen3 MLP gate/up)
//
// Bindings (store, add):                  (swiglu):
//   0 p     uniform Params                  0 p
//   1 step  uniform Step (lib_step):        1 step
//           T = step.rows tokens
//   2 w     weights, see below              2 w   gate weights
//   3 x     [T, cols] f32                   3 wu  up weights
//   4 out   [T, out_stride] f32             4 x
//                                           5 out
// Weights: [≥ w_row0 + rows, cols] of DTYPE, row-major; f32 as f32, bf16 and f16
// packed two per u32 (element 2k in the low half).
//
// Quantized weights (QUANT: DTYPE one of the GGUF block types) are rows of
// blocks in lib_quant.wgsl's layout (array<u32>, QBS values and QBW words a
// block; cols a multiple of 32): each W load slot decodes 4 consecutive
// values in registers (qload), staged as f32 like an f32 matrix (WT f32,
// EPV 4, WVEC), so the tile loop is the same for every type.
//
// Params: rows (rows of W in this dispatch: one matrix part), cols, w_row0 and
// u_row0 (first row of the dispatch inside the w and wu bindings), out0 (first
// output column, the part's first row), out_stride (output row length: all rows
// of the whole matrix).
//
// Tiling: each workgroup computes a BT × BR tile of Y (workgroup (wid.x, wid.y)
// covers rows wid.x·BR… and tokens wid.y·BT…) with NT = (BT/TT)·(BR/TR)
// threads; each thread accumulates TT tokens × TR rows in f32 registers (vec4s
// of four rows). Per step the workgroup stages BK columns of X and W (and U)
// in workgroup memory, k-major, four tokens or four rows to a vec4, rows of the
// staged tiles padded by PAD vec4s against bank conflicts on the stores. The
// global loads of step k+1 are issued into registers (gx, gw, gu) before step
// k is computed, so their latency overlaps the FMAs. A thread's tokens are the
// vec4s ty, ty + BT/TT, … and its rows the vec4s tx, tx + BR/TR, …, so that the
// threads of a warp read neighbouring vec4s of workgroup memory.
//
// Global loads: XVEC (cols % 4 == 0) loads X as vec4<f32> along columns, else
// one f32 per element; WVEC (f32: cols % 4 == 0, bf16/f16: cols % 8 == 0)
// loads W as vec4<WT> (four f32 or eight packed halves, both halves unpacked),
// else one element per load (a packed row may then start mid-u32). Out-of-range
// tokens, rows and columns load as zero, so any T, rows and cols work.
//
// Template (kernels.MatMulVars): DTYPE (F32, BF16, F16, or a block type with
// QUANT, QBS, QBW and lib_quant's arrays QW, QU), EPI, MaxRows, WT (f32 or
// u32), BT, BR, TT, TR, NT, BK (a multiple of 8), XS and RS (staged row strides
// in vec4s: BT/4 + PAD, BR/4 + PAD), XVEC, WVEC, EPV (elements per W vec4),
// the load slots XSLOTS/WSLOTS (thread offsets; XGUARD/WGUARD when the last
// slot is partial; XN/WN the slot count), XUNITS/WUNITS (load units per step,
// WUNITS per matrix), and the unrolled register tile AV, BV, ACC.

struct Params {
    rows: u32,
    cols: u32,
    w_row0: u32,
    u_row0: u32,
    out0: u32,
    out_stride: u32,
    _pad0: u32,
    _pad1: u32,
}
{{template "step" .}}

{{- $swiglu := eq .EPI "swiglu"}}
{{- $wv := "f32"}}{{if .WVEC}}{{$wv = printf "vec4<%s>" .WT}}{{end}}
{{- $xv := "f32"}}{{if .XVEC}}{{$xv = "vec4<f32>"}}{{end}}
{{- $wa := "f32"}}{{if .QUANT}}{{$wa = "u32"}}{{else if .WVEC}}{{$wa = printf "vec4<%s>" .WT}}{{else}}{{$wa = .WT}}{{end}}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> w: array<{{$wa}}>;
{{- if $swiglu}}
@group(0) @binding(3) var<storage, read> wu: array<{{$wa}}>;
@group(0) @binding(4) var<storage, read> x: array<{{$xv}}>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
{{- else}}
@group(0) @binding(3) var<storage, read> x: array<{{$xv}}>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
{{- end}}

const BK = {{.BK}}u; // columns staged per step
const XS = {{.XS}}u; // vec4s per staged column of X
const RS = {{.RS}}u; // vec4s per staged column of W

// Staged tiles: xs[kk * XS + q] holds X[t0 + 4q + 0..3, k0 + kk], ws[kk * RS + q]
// W[r0 + 4q + 0..3, k0 + kk]. vec4 elements keep the arrays short, which matters
// on GL: naga zero-fills workgroup memory there with one array constructor per
// variable, and Mesa's GLSL compiler takes seconds on long ones.
var<workgroup> xs: array<vec4<f32>, {{mul .BK .XS}}>;
var<workgroup> ws: array<vec4<f32>, {{mul .BK .RS}}>;
{{- if $swiglu}}
var<workgroup> us: array<vec4<f32>, {{mul .BK .RS}}>;
{{- end}}

// The next step's global loads, held in registers.
var<private> gx: array<{{$xv}}, {{.XN}}>;
var<private> gw: array<{{$wv}}, {{.WN}}>;
{{- if and $swiglu (not .WVEC)}}
var<private> gu: array<f32, {{.WN}}>;
{{- end}}

{{- if .QUANT}}
{{template "quant_common" .}}
{{- template "quant" .QW}}
{{- if $swiglu}}{{template "quant" .QU}}{{end}}

// wq_w (wq_wu): columns k … k+3 of row r of the weights (up weights), k % 4 == 0.
fn wq_w(r: u32, k: u32) -> vec4<f32> {
    return qload_w(((p.w_row0 + r) * (p.cols / {{.QBS}}u) + k / {{.QBS}}u) * {{.QBW}}u, (k % {{.QBS}}u) / 32u, (k % 32u) / 4u);
}
{{- if $swiglu}}
fn wq_wu(r: u32, k: u32) -> vec4<f32> {
    return qload_wu(((p.u_row0 + r) * (p.cols / {{.QBS}}u) + k / {{.QBS}}u) * {{.QBW}}u, (k % {{.QBS}}u) / 32u, (k % 32u) / 4u);
}
{{- end}}
{{- end}}
{{- if not .WVEC}}
{{- if eq .DTYPE "F32"}}

// Element g (row-major index) of the gate/plain and up weights.
fn load_w(g: u32) -> f32 {
    return w[g];
}
{{- if $swiglu}}
fn load_u(g: u32) -> f32 {
    return wu[g];
}
{{- end}}
{{- else}}

fn unpack_half(word: u32, half: u32) -> f32 {
{{- if eq .DTYPE "BF16"}}
    return bitcast<f32>(select(word << 16u, word & 0xffff0000u, half == 1u));
{{- else}}
    let v = unpack2x16float(word);
    return select(v.x, v.y, half == 1u);
{{- end}}
}

// Element g (row-major index) of the gate/plain and up weights.
fn load_w(g: u32) -> f32 {
    return unpack_half(w[g >> 1u], g & 1u);
}
{{- if $swiglu}}
fn load_u(g: u32) -> f32 {
    return unpack_half(wu[g >> 1u], g & 1u);
}
{{- end}}
{{- end}}
{{- end}}
{{- if $swiglu}}

fn silu(v: f32) -> f32 {
    return v / (1.0 + exp(-v));
}
{{- end}}

// fetch loads step k0's tiles of X and W (and U) into the registers.
fn fetch(k0: u32, t0: u32, r0: u32, lid: u32) {
{{- range $i, $s := .XSLOTS}}
    {
        let e = lid + {{$s}}u;
{{- if $.XVEC}}
        let t = t0 + e / {{div $.BK 4}}u;
        let k = k0 + 4u * (e % {{div $.BK 4}}u);
        var v = vec4<f32>(0.0);
        if ({{if $.XGUARD}}e < {{$.XUNITS}}u && {{end}}t < step.rows && k < p.cols) {
            v = x[t * (p.cols / 4u) + k / 4u];
        }
{{- else}}
        let t = t0 + e / BK;
        let k = k0 + e % BK;
        var v = 0.0;
        if ({{if $.XGUARD}}e < {{$.XUNITS}}u && {{end}}t < step.rows && k < p.cols) {
            v = x[t * p.cols + k];
        }
{{- end}}
        gx[{{$i}}] = v;
    }
{{- end}}
{{- range $i, $s := .WSLOTS}}
    {
        let e = lid + {{$s}}u;
{{- if $.WVEC}}
{{- if $swiglu}}
        let m = e / {{$.WUNITS}}u; // 0: gate, 1: up
        let f = e % {{$.WUNITS}}u;
{{- else}}
        let f = e;
{{- end}}
        let r = r0 + f / {{div $.BK $.EPV}}u;
        let k = k0 + {{$.EPV}}u * (f % {{div $.BK $.EPV}}u);
        var v = vec4<{{$.WT}}>();
        if ({{if $.WGUARD}}e < {{if $swiglu}}{{mul 2 $.WUNITS}}{{else}}{{$.WUNITS}}{{end}}u && {{end}}r < p.rows && k < p.cols) {
{{- if and $swiglu $.QUANT}}
            if (m == 0u) {
                v = wq_w(r, k);
            } else {
                v = wq_wu(r, k);
            }
{{- else if $.QUANT}}
            v = wq_w(r, k);
{{- else if $swiglu}}
            if (m == 0u) {
                v = w[(p.w_row0 + r) * (p.cols / {{$.EPV}}u) + k / {{$.EPV}}u];
            } else {
                v = wu[(p.u_row0 + r) * (p.cols / {{$.EPV}}u) + k / {{$.EPV}}u];
            }
{{- else}}
            v = w[(p.w_row0 + r) * (p.cols / {{$.EPV}}u) + k / {{$.EPV}}u];
{{- end}}
        }
        gw[{{$i}}] = v;
{{- else}}
        let r = r0 + e / BK;
        let k = k0 + e % BK;
        var v = 0.0;
{{- if $swiglu}}
        var u = 0.0;
{{- end}}
        if ({{if $.WGUARD}}e < {{$.WUNITS}}u && {{end}}r < p.rows && k < p.cols) {
            v = load_w((p.w_row0 + r) * p.cols + k);
{{- if $swiglu}}
            u = load_u((p.u_row0 + r) * p.cols + k);
{{- end}}
        }
        gw[{{$i}}] = v;
{{- if $swiglu}}
        gu[{{$i}}] = u;
{{- end}}
{{- end}}
    }
{{- end}}
}
{{- if .WVEC}}
{{- range $.MATS}}

// put_{{.}} stores EPV columns c… of staged row 4q + j from one loaded vec4.
fn put_{{.}}(c: u32, q: u32, j: u32, v: vec4<{{$.WT}}>) {
{{- if or (eq $.DTYPE "F32") $.QUANT}}
    {{.}}[c * RS + q][j] = v.x;
    {{.}}[(c + 1u) * RS + q][j] = v.y;
    {{.}}[(c + 2u) * RS + q][j] = v.z;
    {{.}}[(c + 3u) * RS + q][j] = v.w;
{{- else}}
{{- $m := .}}
{{- range $h, $comp := $.COMPS}}
{{- if eq $.DTYPE "BF16"}}
    {{$m}}[(c + {{mul 2 $h}}u) * RS + q][j] = bitcast<f32>(v.{{$comp}} << 16u);
    {{$m}}[(c + {{add 1 (mul 2 $h)}}u) * RS + q][j] = bitcast<f32>(v.{{$comp}} & 0xffff0000u);
{{- else}}
    let h{{$h}} = unpack2x16float(v.{{$comp}});
    {{$m}}[(c + {{mul 2 $h}}u) * RS + q][j] = h{{$h}}.x;
    {{$m}}[(c + {{add 1 (mul 2 $h)}}u) * RS + q][j] = h{{$h}}.y;
{{- end}}
{{- end}}
{{- end}}
}
{{- end}}
{{- end}}

// stash stores the fetched registers into the staged tiles.
fn stash(lid: u32) {
{{- range $i, $s := .XSLOTS}}
    {
        let e = lid + {{$s}}u;
{{- if $.XGUARD}}
        if (e < {{$.XUNITS}}u) {
{{- end}}
{{- if $.XVEC}}
        let tt = e / {{div $.BK 4}}u;
        let c = 4u * (e % {{div $.BK 4}}u);
        let q = tt / 4u;
        let j = tt % 4u;
        let v = gx[{{$i}}];
        xs[c * XS + q][j] = v.x;
        xs[(c + 1u) * XS + q][j] = v.y;
        xs[(c + 2u) * XS + q][j] = v.z;
        xs[(c + 3u) * XS + q][j] = v.w;
{{- else}}
        let tt = e / BK;
        xs[(e % BK) * XS + tt / 4u][tt % 4u] = gx[{{$i}}];
{{- end}}
{{- if $.XGUARD}}
        }
{{- end}}
    }
{{- end}}
{{- range $i, $s := .WSLOTS}}
    {
        let e = lid + {{$s}}u;
{{- if $.WVEC}}
{{- if $.WGUARD}}
        if (e < {{if $swiglu}}{{mul 2 $.WUNITS}}{{else}}{{$.WUNITS}}{{end}}u) {
{{- end}}
{{- if $swiglu}}
        let f = e % {{$.WUNITS}}u;
{{- else}}
        let f = e;
{{- end}}
        let rr = f / {{div $.BK $.EPV}}u;
        let c = {{$.EPV}}u * (f % {{div $.BK $.EPV}}u);
{{- if $swiglu}}
        if (e < {{$.WUNITS}}u) {
            put_ws(c, rr / 4u, rr % 4u, gw[{{$i}}]);
        } else {
            put_us(c, rr / 4u, rr % 4u, gw[{{$i}}]);
        }
{{- else}}
        put_ws(c, rr / 4u, rr % 4u, gw[{{$i}}]);
{{- end}}
{{- if $.WGUARD}}
        }
{{- end}}
{{- else}}
{{- if $.WGUARD}}
        if (e < {{$.WUNITS}}u) {
{{- end}}
        let rr = e / BK;
        ws[(e % BK) * RS + rr / 4u][rr % 4u] = gw[{{$i}}];
{{- if $swiglu}}
        us[(e % BK) * RS + rr / 4u][rr % 4u] = gu[{{$i}}];
{{- end}}
{{- if $.WGUARD}}
        }
{{- end}}
{{- end}}
    }
{{- end}}
}

// put applies the epilogue to y (rows r … r+3 of token t).
fn put(t: u32, r: u32, y: vec4<f32>{{if $swiglu}}, u: vec4<f32>{{end}}) {
    if (t >= step.rows) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if (r + j < p.rows) {
            let o = t * p.out_stride + p.out0 + r + j;
{{- if eq .EPI "store"}}
            out[o] = y[j];
{{- else if eq .EPI "add"}}
            out[o] = out[o] + y[j];
{{- else if $swiglu}}
            out[o] = silu(y[j]) * u[j];
{{- end}}
        }
    }
}

@compute @workgroup_size({{.NT}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let r0 = wid.x * {{.BR}}u;
    let t0 = wid.y * {{.BT}}u;
    let tx = lid % {{div .BR .TR}}u; // this thread's row vec4s tx, tx + BR/TR, …
    let ty = lid / {{div .BR .TR}}u; // and token vec4s ty, ty + BT/TT, …
{{- range .ACC}}
    var acc{{.N}} = vec4<f32>(0.0);
{{- if $swiglu}}
    var up{{.N}} = vec4<f32>(0.0);
{{- end}}
{{- end}}

    fetch(0u, t0, r0, lid);
    for (var k0 = 0u; k0 < p.cols; k0 += BK) {
        stash(lid);
        workgroupBarrier();
        // The next step's loads are in flight while this step computes
        // (past the last column they load zeros and touch no memory).
        fetch(k0 + BK, t0, r0, lid);
        for (var kk = 0u; kk < BK; kk++) {
{{- range .AV}}
            let a{{.I}} = xs[kk * XS + {{.Off}}u + ty];
{{- end}}
{{- range .BV}}
            let b{{.I}} = ws[kk * RS + {{.Off}}u + tx];
{{- if $swiglu}}
            let c{{.I}} = us[kk * RS + {{.Off}}u + tx];
{{- end}}
{{- end}}
{{- range .ACC}}
            acc{{.N}} += a{{.A}}.{{.C}} * b{{.B}};
{{- if $swiglu}}
            up{{.N}} += a{{.A}}.{{.C}} * c{{.B}};
{{- end}}
{{- end}}
        }
        workgroupBarrier();
    }

{{- range .ACC}}
    put(t0 + 4u * ty + {{.Tok}}u, r0 + 4u * tx + {{.Row}}u, acc{{.N}}{{if $swiglu}}, up{{.N}}{{end}});
{{- end}}
}
