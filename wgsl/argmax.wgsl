// argmax: out[0] = the lowest index i with x[i] = max x (greedy decoding
// without reading the logits back). NaN counts as -∞.
//
// Two variants (ENTRY), dispatched one after the other:
//   partial  workgroup g scans x[g·chunk, (g+1)·chunk) and writes the index of
//            its best element to best[g] (0xffffffff when the chunk is empty)
//   final    one workgroup picks the best of best[0..groups) by re-reading x
//
// Bindings:
//   0 p     uniform Params
//   1 x     [n] f32
//   2 best  [groups] u32   (partial: written; final: read)
//   3 out   [1] u32        (final only)
// Params: n, groups (workgroups of the partial pass), chunk (elements per
// workgroup).
//
// Template: ENTRY (partial or final).
// Ties go to the lower index at every step, so the result matches a
// sequential scan with a strict comparison.

struct Params {
    n: u32,
    groups: u32,
    chunk: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
{{- if eq .ENTRY "partial"}}
@group(0) @binding(2) var<storage, read_write> best: array<u32>;
{{- else}}
@group(0) @binding(2) var<storage, read> best: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
{{- end}}

const NONE = 0xffffffffu;

var<workgroup> wv: array<f32, 256>;
var<workgroup> wi: array<u32, 256>;

// value reads x[i] with NaN turned into -∞ so that it never wins. NaN is
// recognised by its bits: drivers may fold v != v to false.
fn value(i: u32) -> f32 {
    let v = x[i];
    let nan = (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
    return select(v, bitcast<f32>(0xff800000u), nan);
}

// better reports whether candidate (v, i) beats (bv, bi): larger value, or
// the same value at a lower index. An empty slot (NONE) always loses.
fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return i != NONE && (bi == NONE || v > bv || (v == bv && i < bi));
}

// reduce leaves the best (value, index) of the workgroup in slot 0.
fn reduce(lid: u32) {
    for (var s = 128u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lid < s && better(wv[lid + s], wi[lid + s], wv[lid], wi[lid])) {
            wv[lid] = wv[lid + s];
            wi[lid] = wi[lid + s];
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    var bv = 0.0;
    var bi = NONE;
{{- if eq .ENTRY "partial"}}
    let lo = wid.x * p.chunk;
    let hi = min(lo + p.chunk, p.n);
    // Ascending strided scan: a later equal value never replaces an earlier one.
    for (var i = lo + lid; i < hi; i += 256u) {
        let v = value(i);
        if (better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
{{- else}}
    for (var g = lid; g < p.groups; g += 256u) {
        let i = best[g];
        if (i != NONE) {
            let v = value(i);
            if (better(v, i, bv, bi)) {
                bv = v;
                bi = i;
            }
        }
    }
{{- end}}
    wv[lid] = bv;
    wi[lid] = bi;
    reduce(lid);
    if (lid == 0u) {
{{- if eq .ENTRY "partial"}}
        best[wid.x] = wi[0];
{{- else}}
        // All NaN (or n = 0) leaves NONE: answer 0 like a sequential scan.
        out[0] = select(wi[0], 0u, wi[0] == NONE);
{{- end}}
    }
}
