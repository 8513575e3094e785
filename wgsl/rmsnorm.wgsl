// rmsnorm: out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · w   (Qwen3RMSNorm)
//
// Bindings (T is vec4<f32> when n % 4 == 0, else f32):
//   @binding(0) p    uniform Params
//   @binding(1) x    array<T>  [rows, n] f32, row-major
//   @binding(2) w    array<T>  [n] f32
//   @binding(3) out  array<T>  [rows, n] f32 (may not alias x: a binding
//                               cannot be both read and written)
// Params: rows, n (elements per row), nv = n / VEC (T values per row), eps.
//
// One workgroup per row; past 65535 rows the grid is 2-D and the row is
// wid.x + wid.y * num_workgroups.x. Each of the WG threads loads up to K
// values of T into registers, so x is read once; the sum of squares is
// reduced by a tree in workgroup memory (naga 0.13 has no subgroup ops).
// With CACHE false (rows too long for registers) x is read twice.
//
// Template: WG (power of two), VEC (4 or 1), K, CACHE.

struct Params {
    rows: u32,
    n: u32,
    nv: u32,
    eps: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{.T}}>;
@group(0) @binding(2) var<storage, read> w: array<{{.T}}>;
@group(0) @binding(3) var<storage, read_write> out: array<{{.T}}>;

var<workgroup> partial: array<f32, {{.WG}}>;

fn sq(v: {{.T}}) -> f32 {
    return {{if eq .VEC 4}}dot(v, v){{else}}v * v{{end}};
}

@compute @workgroup_size({{.WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.rows) {
        return;
    }
    let base = row * p.nv;
    var ss = 0.0;
{{- if .CACHE}}
    var v: array<{{.T}}, {{.K}}>;
    for (var k = 0u; k < {{.K}}u; k++) {
        let i = tid + k * {{.WG}}u;
        if (i < p.nv) {
            v[k] = x[base + i];
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
{{- if .CACHE}}
    for (var k = 0u; k < {{.K}}u; k++) {
        let i = tid + k * {{.WG}}u;
        if (i < p.nv) {
            out[base + i] = v[k] * scale * w[i];
        }
    }
{{- else}}
    for (var i = tid; i < p.nv; i += {{.WG}}u) {
        out[base + i] = x[base + i] * scale * w[i];
    }
{{- end}}
}
