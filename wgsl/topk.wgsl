// topk: the k largest logits of each of the B rows, with their token ids,
// best first (larger value, then lower id on a tie: the order in which
// qwen3/sample ranks candidates), so that a sampler with top-k ≤ k can
// draw from them instead of reading the whole row back (151,936 floats
// for Qwen3). A row holding any NaN or infinity gets the flag bit
// 0x80000000 set on the ids of its answer: the host refuses such a row.
// Non-finite values count as -∞ and never beat a finite one.
//
// Two variants (Entry), dispatched one after the other:
//   partial  workgroup (g, b) finds the top k of x[b, g·chunk .. (g+1)·chunk)
//            and writes them to cand[b, g, 0 .. k)
//   final    workgroup (0, b) finds the top k of cand[b, .., ..] and writes
//            them to out[b, 0 .. k)
// Both take the k winners in k rounds: in each, every thread offers its
// best element ranked below the previous round's winner, and the
// workgroup reduces the offers to the best one. The ranking is a strict
// total order (ids are distinct), so no element is taken twice and none
// is skipped.
//
// Bindings:
//   0 p     uniform Params
//   1 x     partial: [B, n] f32 logits;  final: cand, [B, groups, k] pairs
//   2 cand  partial: [B, groups, k] pairs (written)
//      out  final:   [B, k] pairs (written)
// A pair is two u32: the value's bits, then the id (0xffffffff: no element,
// when a chunk holds fewer than k), flagged as above.
// Params: n (values per row), groups (partial workgroups per row), chunk
// (values per partial workgroup), k.
//
// Template (kernels.TopKVars): Entry (partial or final).

struct Params {
    n: u32,
    groups: u32,
    chunk: u32,
    k: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
{{- if eq .Entry "partial"}}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> res: array<u32>;
{{- else}}
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> res: array<u32>;
{{- end}}

{{template "best"}}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = wid.y;
{{- if eq .Entry "partial"}}
    let base = row * p.n;
    let lo = wid.x * p.chunk;
    let hi = min(lo + p.chunk, p.n);
    let dst = (row * p.groups + wid.x) * p.k;
{{- else}}
    let lo = 0u;
    let hi = p.groups * p.k;
    let base = row * hi;
    let dst = row * p.k;
{{- end}}
    // The previous round's winner (NONE once the elements ran out: then
    // nothing ranks below it and every later round finds nothing).
    var pv = 0.0;
    var pi = NONE;
    var first = true;
    var flag = 0u;
    for (var r = 0u; r < p.k; r++) {
        var bv = 0.0;
        var bi = NONE;
        for (var j = lo + lid; j < hi; j += 256u) {
{{- if eq .Entry "partial"}}
            let raw = x[base + j];
            if (!finite(raw)) {
                flag = FLAG;
            }
            let v = select(bitcast<f32>(0xff800000u), raw, finite(raw));
            let i = j;
{{- else}}
            let e = x[2u * (base + j) + 1u];
            if (e == NONE) {
                continue;
            }
            flag = flag | (e & FLAG);
            let v = bitcast<f32>(x[2u * (base + j)]);
            let i = e & ~FLAG;
{{- end}}
            // Only elements ranked below the last winner are still in.
            if ((first || better(pv, pi, v, i)) && better(v, i, bv, bi)) {
                bv = v;
                bi = i;
            }
        }
        wv[lid] = bv;
        wi[lid] = bi;
        bad[lid] = flag;
        reduce(lid);
        pv = wv[0];
        pi = wi[0];
        flag = bad[0];
        first = false;
        if (lid == 0u) {
            res[2u * (dst + r)] = bitcast<u32>(pv);
            res[2u * (dst + r) + 1u] = select(pi | flag, NONE, pi == NONE);
        }
        // Slot 0 is read by every thread before the next round overwrites it.
        workgroupBarrier();
    }
}
