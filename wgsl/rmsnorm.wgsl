// rmsnorm: out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · w   (Qwen3RMSNorm)
// for the rows r < step.rows of a step; with LAST, only the step's last row
// is normalised and written to row 0 of out (the final norm in front of the
// LM head of a prefill chunk, which needs the last token's logits alone).
//
// Bindings (T is vec4<f32> when n % 4 == 0, else f32):
//   0 p     uniform Params
//   1 step  uniform Step (lib_step)
//   2 x     array<T>  [rows, n] f32, row-major
//   3 w     array<T>  [n] f32
//   4 out   array<T>  [rows, n] f32 (may not alias x: a binding
//                                    cannot be both read and written)
// Params: n (elements per row), nv = n / VEC (T values per row), eps.
//
// One workgroup per row; past 65535 rows the grid is 2-D and the row is
// wid.x + wid.y * num_workgroups.x. Each of the WG threads loads up to K
// values of T (and of w) into registers, so x is read once; the sum of squares is
// reduced by a tree in workgroup memory (naga 0.13 has no subgroup ops).
// With Cache false (rows too long for registers) x is read twice.
//
// Template (kernels.RMSNormVars): WG (power of two), Vec (4 or 1), T, K,
// Cache, Last, MaxRows.

struct Params {
    n: u32,
    nv: u32,
    eps: f32,
    _pad: u32,
}
{{template "step" .}}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> x: array<{{.T}}>;
@group(0) @binding(3) var<storage, read> w: array<{{.T}}>;
@group(0) @binding(4) var<storage, read_write> out: array<{{.T}}>;

var<workgroup> partial: array<f32, {{.WG}}>;

fn sq(v: {{.T}}) -> f32 {
    return {{if eq .Vec 4}}dot(v, v){{else}}v * v{{end}};
}

@compute @workgroup_size({{.WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
{{- if .Last}}
    let row = step.rows - 1u;
    let obase = 0u;
{{- else}}
    let row = wid.x + wid.y * nwg.x;
    if (row >= step.rows) {
        return;
    }
    let obase = row * p.nv;
{{- end}}
    let base = row * p.nv;
    var ss = 0.0;
{{- if .Cache}}
    // The weights are loaded with x, before the reduction, so that their
    // latency is not added after it (a one-token norm is all latency).
    var v: array<{{.T}}, {{.K}}>;
    var wv: array<{{.T}}, {{.K}}>;
    for (var k = 0u; k < {{.K}}u; k++) {
        let i = tid + k * {{.WG}}u;
        if (i < p.nv) {
            v[k] = x[base + i];
            wv[k] = w[i];
            ss += sq(v[k]);
        }
    }
{{- else}}
    for (var i = tid; i < p.nv; i += {{.WG}}u) {
        ss += sq(x[base + i]);
    }
{{- end}}
    partial[tid] = ss;
    workgroupBarrier();
    for (var s = {{.WG}}u / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            partial[tid] += partial[tid + s];
        }
        workgroupBarrier();
    }
    let scale = 1.0 / sqrt(partial[0] / f32(p.n) + p.eps);
{{- if .Cache}}
    for (var k = 0u; k < {{.K}}u; k++) {
        let i = tid + k * {{.WG}}u;
        if (i < p.nv) {
            out[obase + i] = v[k] * scale * wv[k];
        }
    }
{{- else}}
    for (var i = tid; i < p.nv; i += {{.WG}}u) {
        out[obase + i] = x[base + i] * scale * w[i];
    }
{{- end}}
}
