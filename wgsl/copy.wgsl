// copy: y[i] = x[i] over vec4<f32>: the yardstick of memory bandwidth that
// `qwgpu bench --profile` measures the device with (bytes read + written).
// With Sum, the read-only yardstick beside it (decode reads and hardly
// writes, and memories serve reads alone faster than a copy's mix): each
// thread sums the vec4s i = t, t + threads, … of x (consecutive threads on
// consecutive vec4s) and writes its sum once, so that the reads cannot be
// dropped and the writes are a small part of the bytes (counted too).
//
// Bindings:
//   @binding(0) p  uniform Params
//   @binding(1) x  array<vec4<f32>> [n] (read)
//   @binding(2) y  array<vec4<f32>> [n] (written); with Sum [threads]
// Params: n (vec4 elements of x). Template: kernels.CopyVars (Sum).
//
// 256 threads per workgroup. Copy: one element per thread; past 65535
// workgroups the grid is 2-D and the linear workgroup id is
// wid.x + wid.y * nwg.x. Sum: a 1-D grid, threads = 256 · groups.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
{{if .Sum}}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let threads = nwg.x * 256u;
    var s = vec4<f32>(0.0);
    for (var i = gid.x; i < p.n; i += threads) {
        s += x[i];
    }
    y[gid.x] = s;
}
{{else}}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + tid;
    if (i < p.n) {
        y[i] = x[i];
    }
}
{{end}}
