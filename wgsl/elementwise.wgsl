// elementwise: one output value per input value, over n float32 elements.
//
// Ops (OP):
//   add         out[i] = a[i] + b[i]           (residual connection)
//   addinplace  out[i] = out[i] + b[i]         (a is out itself)
//   swiglu      out[i] = SiLU(a[i]) · b[i]     (a = gate, b = up; SiLU(v) = v / (1 + e^-v))
//
// Bindings (T is vec4<f32> when n % 4 == 0, else f32):
//   0 p    uniform Params
//   1 a    array<T> [n] f32       (absent for addinplace)
//   2 b    array<T> [n] f32       (binding 1 for addinplace)
//   3 out  array<T> [n] f32       (binding 2 for addinplace)
// Params: nv = n / VEC (values of T).
// Workgroups of 256 threads, one T each; id = (wid.x + wid.y·num_workgroups.x)·256
// + local index (2-D grid past 65535 workgroups).
//
// Template: OP, T.

struct Params {
    nv: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
{{- if eq .OP "addinplace"}}
@group(0) @binding(1) var<storage, read> b: array<{{.T}}>;
@group(0) @binding(2) var<storage, read_write> out: array<{{.T}}>;
{{- else}}
@group(0) @binding(1) var<storage, read> a: array<{{.T}}>;
@group(0) @binding(2) var<storage, read> b: array<{{.T}}>;
@group(0) @binding(3) var<storage, read_write> out: array<{{.T}}>;
{{- end}}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.nv) {
        return;
    }
{{- if eq .OP "add"}}
    out[i] = a[i] + b[i];
{{- else if eq .OP "addinplace"}}
    out[i] = out[i] + b[i];
{{- else if eq .OP "swiglu"}}
    let g = a[i];
    out[i] = g / (1.0 + exp(-g)) * b[i];
{{- end}}
}
