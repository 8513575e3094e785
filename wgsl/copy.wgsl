// copy: y[i] = x[i] over vec4<f32>: the yardstick of memory bandwidth that
// `qwgpu bench --profile` measures the device with (bytes read + written).
//
// Bindings:
//   @binding(0) p  uniform Params
//   @binding(1) x  array<vec4<f32>> [n] (read)
//   @binding(2) y  array<vec4<f32>> [n] (written)
// Params: n (vec4 elements). Template: kernels.CopyVars (none).
//
// One element per thread, 256 threads per workgroup; past 65535 workgroups
// the grid is 2-D and the linear workgroup id is wid.x + wid.y * nwg.x.

struct Params {
    n: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + tid;
    if (i < p.n) {
        y[i] = x[i];
    }
}
