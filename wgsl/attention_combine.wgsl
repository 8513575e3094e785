// attention_combine: the second dispatch of decode attention. Merges the
// per-chunk partials (m_c, l_c, acc_c) of attention_decode into
//   out_h = Σ_c exp(m_c − M) · acc_c / Σ_c exp(m_c − M) · l_c,   M = max_c m_c
// which is the softmax-weighted sum over all n rows of step row b.
//
// Bindings:
//   0 step  uniform Step (lib_step): row b's position gives its chunks
//   1 part  [B, NQ, MAXCH, 1 + HD/4] vec4<f32>  per record (m, l, 0, 0), then acc
//   2 out   [B, NQ·HD] f32 as vec4
//
// Dispatch: (NQ, B, 1) workgroups, skipped when step.keys ≤ CH (then
// attention_decode wrote the output itself).
{{template "step" .}}

const D4: u32 = {{.D4}}u;
const MAXCH: u32 = {{.MAXCH}}u;
const WG: u32 = {{.WG}}u;
const CH: u32 = {{.CH}}u;
const NQ: u32 = {{.NQ}}u;

@group(0) @binding(0) var<uniform> step: Step;
@group(0) @binding(1) var<storage, read> part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size({{.WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let h = wid.x;
    let b = wid.y;
    let nchunks = (step.row[b].y + CH) / CH; // ⌈(pos + 1) / CH⌉
    let first = (b * NQ + h) * MAXCH * (D4 + 1u);
    // Every thread reads the (few) chunk statistics itself: no barrier needed.
    var m = part[first].x;
    for (var c = 1u; c < nchunks; c++) {
        m = max(m, part[first + c * (D4 + 1u)].x);
    }
    var l = 0.0;
    for (var c = 0u; c < nchunks; c++) {
        let st = part[first + c * (D4 + 1u)];
        l += exp(st.x - m) * st.y;
    }
    for (var d = tid; d < D4; d += WG) {
        var s = vec4<f32>(0.0);
        for (var c = 0u; c < nchunks; c++) {
            let rec = first + c * (D4 + 1u);
            s += exp(part[rec].x - m) * part[rec + 1u + d];
        }
        out[(b * NQ + h) * D4 + d] = s / l;
    }
}
