// argmax: out[b] = the lowest index i with x[b, i] = max x[b, :], for each of
// the B rows of logits (greedy decoding without reading the logits back).
// A row holding any NaN or infinity gets the flag bit 0x80000000 set in its
// answer, so that the host reports the non-finite logits instead of
// decoding them (the index bits then come from the finite values).
//
// Two variants (Entry), dispatched one after the other:
//   partial  workgroup (g, b) scans x[b, g·chunk .. (g+1)·chunk) and writes the
//            index of its best element to best[b·groups + g] (0xffffffff when
//            the chunk is empty), flagged when the chunk is not all finite
//   final    workgroup (0, b) picks the best of best[b·groups ..] by re-reading x
//
// Bindings:
//   0 p     uniform Params
//   1 x     [B, n] f32
//   2 best  [B, groups] u32   (partial: written; final: read)
//   3 out   [B] u32           (final only)
// Params: n, groups (workgroups per row of the partial pass), chunk
// (elements per workgroup).
//
// Template (kernels.ArgmaxVars): Entry (partial or final).
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
{{- if eq .Entry "partial"}}
@group(0) @binding(2) var<storage, read_write> best: array<u32>;
{{- else}}
@group(0) @binding(2) var<storage, read> best: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;
{{- end}}

{{template "best"}}

// value reads x[i] with a non-finite value turned into -∞, so that it never wins.
fn value(i: u32) -> f32 {
    let v = x[i];
    return select(bitcast<f32>(0xff800000u), v, finite(v));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = wid.y;
    let base = row * p.n;
    var bv = 0.0;
    var bi = NONE;
    var flag = 0u;
{{- if eq .Entry "partial"}}
    let lo = wid.x * p.chunk;
    let hi = min(lo + p.chunk, p.n);
    // Ascending strided scan: a later equal value never replaces an earlier one.
    for (var i = lo + lid; i < hi; i += 256u) {
        let raw = x[base + i];
        if (!finite(raw)) {
            flag = FLAG;
        }
        let v = value(base + i);
        if (better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
{{- else}}
    for (var g = lid; g < p.groups; g += 256u) {
        let e = best[row * p.groups + g];
        if (e == NONE) {
            continue;
        }
        flag = flag | (e & FLAG);
        let i = e & ~FLAG;
        let v = value(base + i);
        if (better(v, i, bv, bi)) {
            bv = v;
            bi = i;
        }
    }
{{- end}}
    wv[lid] = bv;
    wi[lid] = bi;
    bad[lid] = flag;
    reduce(lid);
    if (lid == 0u) {
{{- if eq .Entry "partial"}}
        var e = wi[0];
        if (e != NONE) {
            e = e | bad[0];
        }
        best[row * p.groups + wid.x] = e;
{{- else}}
        // All non-finite (or n = 0) leaves NONE: answer 0 like a sequential scan.
        out[row] = select(wi[0], 0u, wi[0] == NONE) | bad[0];
{{- end}}
    }
}
