// attention_combine: the second dispatch of decode attention. Merges the
// per-split partials (m_c, l_c, acc_c) of attention_decode into
//   out_h = Σ_c exp(m_c − M) · acc_c / Σ_c exp(m_c − M) · l_c,   M = max_c m_c
// which is the softmax-weighted sum over all n rows of step row b.
//
// The workgroup of query head h and step row b finds M with a tree over
// its threads, then thread (slice, c) sums splits slice, slice + CSL, … of
// vec4 column c (neighbouring threads read neighbouring words of a
// record), CU splits a turn, and a last pass adds the slices.
//
// Bindings:
//   0 step  uniform Step (lib_step): row b's position gives its splits
//   1 part  [B, NQ, MAXSP, 1 + HD/4] vec4<f32>  per record (m, l, 0, 0), then acc
//   2 out   [B, NQ·HD] f32 as vec4
//
// Dispatch: (NQ, B, 1) workgroups of WG threads, skipped when step.keys ≤
// the split length (then attention_decode wrote the output itself).
{{template "step" .}}

const D4: u32 = {{.D4}}u;
const MAXSP: u32 = {{.MAXSP}}u;
const SPLITS: u32 = {{.SPLITS}}u;
const WG: u32 = {{.WG}}u;             // a power of two, at least D4
const CSL: u32 = {{.CSL}}u;           // WG / D4: split slices
const CU: u32 = 8u;                   // records a thread requests at once
const CH: u32 = {{.CH}}u;
const NQ: u32 = {{.NQ}}u;
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

var<workgroup> mx: array<f32, {{.WG}}>;
var<workgroup> red: array<vec4<f32>, {{.WG}}>;  // [CSL, D4] the slices' sums
var<workgroup> lred: array<f32, {{.WG}}>;       // [CSL, D4] the slices' l (every column holds it)

// split_len is attention_decode's.
fn split_len() -> u32 {
    let tiles = (step.keys + CH - 1u) / CH;
    return CH * ((tiles + SPLITS - 1u) / SPLITS);
}

@compute @workgroup_size({{.WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let h = wid.x;
    let b = wid.y;
    let slen = split_len();
    let nsplits = (step.row[b].y + slen) / slen; // ⌈(pos + 1) / L⌉
    let first = (b * NQ + h) * MAXSP * (D4 + 1u);

    var m = NEG;
    for (var c = tid; c < nsplits; c += WG) {
        m = max(m, part[first + c * (D4 + 1u)].x);
    }
    mx[tid] = m;
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        workgroupBarrier();
        if (tid < stride) {
            mx[tid] = max(mx[tid], mx[tid + stride]);
        }
    }
    workgroupBarrier();
    let mall = mx[0];

    let col = tid % D4;
    let slice = tid / D4;
    var s = vec4<f32>(0.0);
    var l = 0.0;
    if (slice < CSL) {
        // CU records at a time, their loads issued together (a loop of
        // one record a turn waited a memory latency a record: at 32K
        // positions 32 turns, ~20 µs a layer on an H200). Turns past the
        // last split read the last record again with weight 0.
        for (var c0 = slice; c0 < nsplits; c0 += CSL * CU) {
            for (var k = 0u; k < CU; k++) {
                let c = c0 + k * CSL;
                let rec = first + min(c, nsplits - 1u) * (D4 + 1u);
                let st = part[rec];
                let a = part[rec + 1u + col];
                let w = select(0.0, exp(st.x - mall), c < nsplits);
                s += w * a;
                l += w * st.y;
            }
        }
    }
    red[tid] = s;
    lred[tid] = l;
    workgroupBarrier();
    if (tid < D4) {
        var st = red[tid];
        var lt = lred[tid];
        for (var sl = 1u; sl < CSL; sl++) {
            st += red[sl * D4 + tid];
            lt += lred[sl * D4 + tid];
        }
        out[(b * NQ + h) * D4 + tid] = st / lt;
    }
}
