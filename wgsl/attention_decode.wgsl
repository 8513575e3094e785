// attention_decode: the query token of each step row against its
// sequence's KV cache rows [0, n) (n = the row's position + 1), the first
// of two dispatches (flash-decoding). The rows are cut into chunks of CH;
// workgroup (chunk, kv head, step row b) scores the chunk's rows for the G
// query heads that share the kv head (grouped-query attention: query head h
// reads kv head h / G), and writes for each of them a partial result:
//   m   = max_j s_j                 s_j = q_h · k_j / sqrt(HD)
//   l   = Σ_j exp(s_j − m)
//   acc = Σ_j exp(s_j − m) · v_j    [HD]
// attention_combine merges the chunks' partials into the output. When the
// step's longest row fits one chunk (step.keys ≤ CH) there is nothing to
// merge: this kernel writes acc / l to the output itself and the combine
// dispatch is skipped. Reading each cache row once per kv head (not once
// per query head) and spreading the rows over many workgroups keeps the
// kernel bandwidth-bound as the context grows.
//
// Thread j scores row j of the chunk (the workgroup has CH threads, CH a
// power of two); a tree finds the maximum; for the values, thread (slice, c)
// sums rows slice, slice + SLICES, … of vec4 column c, so that neighbouring
// threads read neighbouring words.
//
// Bindings:
//   0 p       uniform Params
//   1 step    uniform Step (lib_step): row b's cache slot and position
//   2 q       [B, NQ·HD] f32 as vec4
//   3 kcache  [SLOTS, CTX, NKV·HD] f32 as vec4
//   4 vcache  [SLOTS, CTX, NKV·HD] f32 as vec4
//   5 part    [B, NQ, MAXCH, 1 + HD/4] vec4<f32>  out: per record (m, l, 0, 0), then acc
//   6 out     [B, NQ·HD] f32 as vec4              out, when step.keys ≤ CH
//
// Params: scale  1 / sqrt(HD)
//
// Dispatch: (⌈step.keys / CH⌉, NKV, B) workgroups of CH threads.

struct Params {
    scale: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
{{template "step" .}}

const D4: u32 = {{.D4}}u;             // HD / 4
const G: u32 = {{.G}}u;               // query heads per kv head
const KVD4: u32 = {{.KVD4}}u;         // NKV · HD / 4: vec4s per cache row
const CH: u32 = {{.CH}}u;             // rows per chunk = threads per workgroup
const MAXCH: u32 = {{.MAXCH}}u;       // chunks in CTX rows
const SLICES: u32 = {{.SLICES}}u;     // CH / D4: row slices while summing values
const CTX: u32 = {{.CTX}}u;           // cache rows per slot
const NQ: u32 = {{.NQ}}u;
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> kcache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> vcache: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> part: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;

var<workgroup> sc: array<f32, {{.SCSIZE}}>;       // [G, CH] max tree over the scores, then exp(s − m)
var<workgroup> red: array<vec4<f32>, {{.CH}}>;    // [SLICES, D4] value sums of the slices
var<workgroup> lsum: array<f32, {{.LSIZE}}>;      // [G, SLICES] sums of p of the slices

@compute @workgroup_size({{.CH}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let chunk = wid.x;
    let kvh = wid.y;
    let b = wid.z;
    let n = step.row[b].y + 1u;          // cache rows this step row attends to
    let cache0 = step.row[b].x * CTX * KVD4; // its slot's first vec4
    let row0 = chunk * CH;
    // Chunks past this row's length (other rows of the step are longer)
    // have nothing to do; the combine never reads them. The whole
    // workgroup returns, so the barriers below stay uniform.
    if (row0 >= n) {
        return;
    }
    let rows = min(CH, n - row0);
    let single = step.keys <= CH;        // no combine: write the output here
    let col0 = cache0 + kvh * D4;        // the kv head's first vec4 within the slot
    let q0 = b * NQ * D4 + kvh * G * D4; // the group's first query vec4

    // Scores. Each vec4 lane keeps its own partial sum, added pairwise at
    // the end: half the rounding error of one running sum.
    var dots: array<vec4<f32>, G>;
    if (tid < rows) {
        let base = (row0 + tid) * KVD4 + col0;
        for (var c = 0u; c < D4; c++) {
            let k = kcache[base + c];
            for (var g = 0u; g < G; g++) {
                dots[g] += k * q[q0 + g * D4 + c];
            }
        }
    }
    var s: array<f32, G>;
    for (var g = 0u; g < G; g++) {
        let d = dots[g];
        s[g] = select(NEG, ((d.x + d.y) + (d.z + d.w)) * p.scale, tid < rows);
        sc[g * CH + tid] = s[g];
    }

    // The chunk's maximum per query head: a tree over the rows in sc (each
    // thread keeps its own scores in s), then sc holds exp(s − m).
    for (var stride = CH / 2u; stride > 0u; stride = stride / 2u) {
        workgroupBarrier();
        if (tid < stride) {
            for (var g = 0u; g < G; g++) {
                sc[g * CH + tid] = max(sc[g * CH + tid], sc[g * CH + tid + stride]);
            }
        }
    }
    workgroupBarrier();
    var m: array<f32, G>;
    for (var g = 0u; g < G; g++) {
        m[g] = sc[g * CH];
    }
    workgroupBarrier();
    for (var g = 0u; g < G; g++) {
        sc[g * CH + tid] = select(0.0, exp(s[g] - m[g]), tid < rows);
    }
    workgroupBarrier();

    // acc = Σ_j p_j · v_j and l = Σ_j p_j, each thread over its slice's rows.
    let c = tid % D4;
    let slice = tid / D4;
    var acc: array<vec4<f32>, G>;
    var l: array<f32, G>;
    if (slice < SLICES) {
        for (var r = slice; r < rows; r += SLICES) {
            let v = vcache[(row0 + r) * KVD4 + col0 + c];
            for (var g = 0u; g < G; g++) {
                let pr = sc[g * CH + r];
                acc[g] += pr * v;
                l[g] += pr;
            }
        }
    }
    if (c == 0u && slice < SLICES) {
        for (var g = 0u; g < G; g++) {
            lsum[g * SLICES + slice] = l[g];
        }
    }
    for (var g = 0u; g < G; g++) {
        workgroupBarrier(); // lsum is written; red is free again
        red[tid] = acc[g];
        workgroupBarrier();
        if (tid < D4) {
            var s = red[tid];
            for (var sl = 1u; sl < SLICES; sl++) {
                s += red[sl * D4 + tid];
            }
            var lt = 0.0;
            for (var sl = 0u; sl < SLICES; sl++) {
                lt += lsum[g * SLICES + sl];
            }
            if (single) {
                out[q0 + g * D4 + tid] = s / lt;
            } else {
                let rec = ((b * NQ + kvh * G + g) * MAXCH + chunk) * (D4 + 1u);
                part[rec + 1u + tid] = s;
                if (tid == 0u) {
                    part[rec] = vec4<f32>(m[g], lt, 0.0, 0.0);
                }
            }
        }
    }
}
