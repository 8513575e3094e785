// attention_combine: the second dispatch of decode attention. Merges the
// per-chunk partials (m_c, l_c, acc_c) of attention_decode into
//   out_h = Σ_c exp(m_c − M) · acc_c / Σ_c exp(m_c − M) · l_c,   M = max_c m_c
// which is the softmax-weighted sum over all n rows.
//
// Bindings:
//   0 p     uniform Params (the same struct as attention_decode)
//   1 part  [NQ, MAXCH, 1 + HD/4] vec4<f32>  per record (m, l, 0, 0), then acc
//   2 out   [NQ·HD] f32 as vec4
//
// Params: nchunks  the number of valid chunks (the other fields are unused)
//
// Dispatch: (NQ, 1, 1) workgroups: one per query head.

struct Params {
    n: u32,
    nchunks: u32,
    scale: f32,
    pad0: u32,
}

const D4: u32 = {{.D4}}u;
const MAXCH: u32 = {{.MAXCH}}u;
const WG: u32 = {{.WG}}u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size({{.WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let h = wid.x;
    let first = h * MAXCH * (D4 + 1u);
    // Every thread reads the (few) chunk statistics itself: no barrier needed.
    var m = part[first].x;
    for (var c = 1u; c < p.nchunks; c++) {
        m = max(m, part[first + c * (D4 + 1u)].x);
    }
    var l = 0.0;
    for (var c = 0u; c < p.nchunks; c++) {
        let st = part[first + c * (D4 + 1u)];
        l += exp(st.x - m) * st.y;
    }
    for (var d = tid; d < D4; d += WG) {
        var s = vec4<f32>(0.0);
        for (var c = 0u; c < p.nchunks; c++) {
            let rec = first + c * (D4 + 1u);
            s += exp(part[rec].x - m) * part[rec + 1u + d];
        }
        out[h * D4 + d] = s / l;
    }
}
