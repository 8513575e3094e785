// attention_decode: one query token against KV cache rows [0, n), the first
// of two dispatches (flash-decoding). The rows are cut into chunks of CH;
// workgroup (chunk, kv head) scores the chunk's rows for the G query heads
// that share the kv head (grouped-query attention: query head h reads kv
// head h / G), and writes for each of them a partial result:
//   m   = max_j s_j                 s_j = q_h · k_j / sqrt(HD)
//   l   = Σ_j exp(s_j − m)
//   acc = Σ_j exp(s_j − m) · v_j    [HD]
// attention_combine merges the chunks' partials into the output. Reading
// each cache row once per kv head (not once per query head) and spreading
// the rows over many workgroups keeps the kernel bandwidth-bound as the
// context grows.
//
// Thread j scores row j of the chunk (the workgroup has CH threads, CH a
// power of two); a tree finds the maximum; for the values, thread (slice, c)
// sums rows slice, slice + SLICES, … of vec4 column c, so that neighbouring
// threads read neighbouring words.
//
// Bindings:
//   0 p       uniform Params
//   1 q       [NQ·HD] f32 as vec4
//   2 kcache  [CTX, NKV·HD] f32 as vec4
//   3 vcache  [CTX, NKV·HD] f32 as vec4
//   4 part    [NQ, MAXCH, 1 + HD/4] vec4<f32>  out: per record (m, l, 0, 0), then acc
//
// Params: n        rows of the cache to attend to, 1 ≤ n ≤ CTX
//         nchunks  ⌈n / CH⌉, the number of workgroups along x
//         scale    1 / sqrt(HD)
//
// Dispatch: (nchunks, NKV, 1) workgroups of CH threads.

struct Params {
    n: u32,
    nchunks: u32,
    scale: f32,
    pad0: u32,
}

const D4: u32 = {{.D4}}u;             // HD / 4
const G: u32 = {{.G}}u;               // query heads per kv head
const KVD4: u32 = {{.KVD4}}u;         // NKV · HD / 4: vec4s per cache row
const CH: u32 = {{.CH}}u;             // rows per chunk = threads per workgroup
const MAXCH: u32 = {{.MAXCH}}u;       // chunks in CTX rows
const SLICES: u32 = {{.SLICES}}u;     // CH / D4: row slices while summing values
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> kcache: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> vcache: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> part: array<vec4<f32>>;

var<workgroup> sc: array<f32, {{.SCSIZE}}>;       // [G, CH] max tree over the scores, then exp(s − m)
var<workgroup> red: array<vec4<f32>, {{.CH}}>;    // [SLICES, D4] value sums of the slices
var<workgroup> lsum: array<f32, {{.LSIZE}}>;      // [G, SLICES] sums of p of the slices

@compute @workgroup_size({{.CH}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let chunk = wid.x;
    let kvh = wid.y;
    let row0 = chunk * CH;
    let rows = min(CH, p.n - min(row0, p.n));
    let col0 = kvh * D4;     // the kv head's first vec4 within a cache row
    let q0 = kvh * G * D4;   // the group's first query vec4

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
            let rec = ((kvh * G + g) * MAXCH + chunk) * (D4 + 1u);
            part[rec + 1u + tid] = s;
            if (tid == 0u) {
                var lt = 0.0;
                for (var sl = 0u; sl < SLICES; sl++) {
                    lt += lsum[g * SLICES + sl];
                }
                part[rec] = vec4<f32>(m[g], lt, 0.0, 0.0);
            }
        }
    }
}
