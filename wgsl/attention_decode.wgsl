// attention_decode: the query token of each step row against its
// sequence's KV cache rows [0, n) (n = the row's position + 1), the first
// of two dispatches (flash-decoding). The rows are cut into splits of L
// rows (L a multiple of CH, the same for every row of the step, from
// step.keys: split_len); workgroup (split, kv head, step row b) walks its
// split in tiles of CH rows with an online softmax and writes, for each of
// the G query heads that share the kv head (grouped-query attention: query
// head h reads kv head h / G), a partial result over the split:
//   m   = max_j s_j                 s_j = q_h · k_j / sqrt(HD)
//   l   = Σ_j exp(s_j − m)
//   acc = Σ_j exp(s_j − m) · v_j    [HD]
// attention_combine merges the splits' partials into the output. When the
// step's longest row fits one split (step.keys ≤ L) there is nothing to
// merge: this kernel writes acc / l to the output itself and the combine
// dispatch is skipped. The number of splits is bounded by SPLITS, so that
// a long context gives each workgroup several tiles (one pass over them,
// the scores never leaving the workgroup) and the combine few partials.
//
// Within a tile, thread j owns the score of row j (the workgroup has CH
// threads, CH a power of two). With LANES = 1 it reads the row's keys
// itself; with LANES > 1, LANES neighbouring threads read one row's keys
// together (LANES passes of CH / LANES rows), so that a warp reads a few
// rows' contiguous bytes at once instead of 16 bytes of 32 rows, and their
// partial dot products meet in workgroup memory. A tree finds the maximum; for the values, thread (slice,
// u) sums rows slice, slice + SLICES, … of load unit u, so that
// neighbouring threads read neighbouring words. A load unit is UW vec4s of
// a row: one vec4<f32> (f32 cache), or 16-bit values packed in a
// vec4<u32> (eight, UW = 2) or a vec2<u32> (four, when HD is not a
// multiple of 8).
//
// Bindings:
//   0 p       uniform Params
//   1 step    uniform Step (lib_step): row b's cache slot and position
//   2 q       [B, NQ·HD] f32 as vec4
//   3 kcache  [SLOTS, CTX, NKV·HD] KV (lib_kv) as load units
//   4 vcache  [SLOTS, CTX, NKV·HD] KV (lib_kv) as load units
//   5 part    [B, NQ, MAXSP, 1 + HD/4] vec4<f32>  out: per record (m, l, 0, 0), then acc
//   6 out     [B, NQ·HD] f32 as vec4              out, when step.keys ≤ L
//
// Params: scale  1 / sqrt(HD)
//
// Dispatch: (⌈step.keys / L⌉, NKV, B) workgroups of CH threads.

struct Params {
    scale: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
{{template "step" .}}
{{template "kv" .}}
const D4: u32 = {{.D4}}u;             // HD / 4
const DU: u32 = {{.DU}}u;             // load units per head row: HD / (4·UW)
const UW: u32 = {{.UW}}u;             // vec4s per load unit
const G: u32 = {{.G}}u;               // query heads per kv head
const KVDU: u32 = {{.KVDU}}u;         // load units per cache row
const CH: u32 = {{.CH}}u;             // rows per tile = threads per workgroup
const SPLITS: u32 = {{.SPLITS}}u;     // the most splits of a row
const MAXSP: u32 = {{.MAXSP}}u;       // records per (row, head) in part
const SLICES: u32 = {{.SLICES}}u;     // CH / DU: row slices while summing values
const LANES: u32 = {{.KLANES}}u;       // threads that read one key row together
const CTX: u32 = {{.CTX}}u;           // cache rows per slot
const NQ: u32 = {{.NQ}}u;
{{- if .AUNROLL}}
const KU: u32 = {{.KU}}u;             // ⌈DU / LANES⌉: key units a lane loads a row
const VU: u32 = {{.VU}}u;             // value rows a thread loads at once
{{- end}}
{{- if .QREG}}
const QRN: u32 = {{mul .G (mul .KU .UW)}}u; // query vec4s a lane keeps in registers: [G, KU, UW]
{{- end}}
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> kcache: array<{{.UNIT}}>;
@group(0) @binding(4) var<storage, read> vcache: array<{{.UNIT}}>;
@group(0) @binding(5) var<storage, read_write> part: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;

var<workgroup> sc: array<f32, {{.SCSIZE}}>;       // [G, CH] max tree over the scores, then exp(s − m)
var<workgroup> red: array<vec4<f32>, {{.REDSIZE}}>; // [SLICES, DU, UW] value sums of the slices
var<workgroup> lsum: array<f32, {{.LSIZE}}>;      // [G, SLICES] sums of p of the slices
{{- if gt .KLANES 1}}
var<workgroup> psc: array<f32, {{.PSIZE}}>;       // [G, CH, LANES] partial dot products of the lanes
{{- end}}

// split_len is L, the rows of one split: whole tiles, at most SPLITS
// splits for the step's longest row (a step of one tile: one split, no
// combine). attention_combine uses the same.
fn split_len() -> u32 {
    let tiles = (step.keys + CH - 1u) / CH;
    return CH * ((tiles + SPLITS - 1u) / SPLITS);
}
{{if eq .UW 2}}
fn load_unit(u: {{.UNIT}}) -> KV8 {
    return kv_unpack8(u);
}

// kq: the products of key unit k (eight values) with the query values at
// vec4s qi and qi + 1.
fn kq(k: KV8, qi: u32) -> vec4<f32> {
    return k.a * q[qi] + k.b * q[qi + 1u];
}
{{- if .QREG}}

// kqr: kq with the query vec4s at j and j + 1 of the registers qr.
fn kqr(k: KV8, j: u32, qr: ptr<function, array<vec4<f32>, QRN>>) -> vec4<f32> {
    return k.a * (*qr)[j] + k.b * (*qr)[j + 1u];
}
{{- end}}
{{else}}
fn load_unit(u: {{.UNIT}}) -> vec4<f32> {
    return {{if eq .KV "f32"}}u{{else}}kv_unpack4(u){{end}};
}

// kq: the products of key unit k (four values) with the query vec4 qi.
fn kq(k: vec4<f32>, qi: u32) -> vec4<f32> {
    return k * q[qi];
}
{{- if .QREG}}

// kqr: kq with the query vec4 at j of the registers qr.
fn kqr(k: vec4<f32>, j: u32, qr: ptr<function, array<vec4<f32>, QRN>>) -> vec4<f32> {
    return k * (*qr)[j];
}
{{- end}}
{{end}}
@compute @workgroup_size({{.CH}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let split = wid.x;
    let kvh = wid.y;
    let b = wid.z;
    let n = step.row[b].y + 1u;          // cache rows this step row attends to
    let slen = split_len();
    let first = split * slen;
    // Splits past this row's length (other rows of the step are longer)
    // have nothing to do; the combine never reads them. The whole
    // workgroup returns, so the barriers below stay uniform.
    if (first >= n) {
        return;
    }
    let last = min(n, first + slen);
    let single = step.keys <= slen;      // no combine: write the output here
    let col0 = step.row[b].x * CTX * KVDU + kvh * DU; // the kv head's first unit in its slot
    let q0 = b * NQ * D4 + kvh * G * D4; // the group's first query vec4
    let u = tid % DU;
    let slice = tid / DU;

{{- if .QREG}}
    // A lane reads the same key units of every row (lane, lane + LANES, …),
    // so its query values for them are loaded once, into registers, instead
    // of from memory for every row: G·UW vec4 loads per key unit otherwise.
    // qr[(g·KU + i)·UW + w] is vec4 w of unit lane + i·LANES of head g (a
    // lane past the row's end holds its last unit, never used).
    let qlane = tid % LANES;
    var qr: array<vec4<f32>, QRN>;
    for (var g = 0u; g < G; g++) {
        for (var i = 0u; i < KU; i++) {
            let c = min(qlane + i * LANES, DU - 1u);
            for (var w = 0u; w < UW; w++) {
                qr[(g * KU + i) * UW + w] = q[q0 + g * D4 + UW * c + w];
            }
        }
    }
{{- end}}
    var m: array<f32, G>;
    var l: array<f32, G>;
    var acc: array<vec4<f32>, {{mul .G .UW}}>;
    for (var g = 0u; g < G; g++) {
        m[g] = NEG;
    }
    for (var row0 = first; row0 < last; row0 += CH) {
        let rows = min(CH, last - row0);

        // Scores. Each vec4 lane keeps its own partial sum, added pairwise
        // at the end: half the rounding error of one running sum. (naga
        // declares a loop's variables once for the whole function: zero
        // them here, every tile.)
        var dots: array<vec4<f32>, G>;
        for (var g = 0u; g < G; g++) {
            dots[g] = vec4<f32>(0.0);
        }
{{- if gt .KLANES 1}}
        let lane = tid % LANES;
        for (var ps = 0u; ps < LANES; ps++) {
            let rr = ps * (CH / LANES) + tid / LANES;
            for (var g = 0u; g < G; g++) {
                dots[g] = vec4<f32>(0.0);
            }
            if (rr < rows) {
                let base = (row0 + rr) * KVDU + col0;
{{- if .AUNROLL}}
                // The lane's KU units of the row loaded before any is used,
                // so that their loads are in flight together (a lane past
                // the row's end loads its last unit and skips it).
                var ku: array<{{.UNIT}}, KU>;
                for (var i = 0u; i < KU; i++) {
                    ku[i] = kcache[base + min(lane + i * LANES, DU - 1u)];
                }
                for (var i = 0u; i < KU; i++) {
                    let c = lane + i * LANES;
                    if (c < DU) {
                        let k = load_unit(ku[i]);
                        for (var g = 0u; g < G; g++) {
{{- if .QREG}}
                            dots[g] += kqr(k, (g * KU + i) * UW, &qr);
{{- else}}
                            dots[g] += kq(k, q0 + g * D4 + {{.UW}}u * c);
{{- end}}
                        }
                    }
                }
{{- else}}
                for (var c = lane; c < DU; c += LANES) {
                    let k = load_unit(kcache[base + c]);
                    for (var g = 0u; g < G; g++) {
                        dots[g] += kq(k, q0 + g * D4 + {{.UW}}u * c);
                    }
                }
{{- end}}
            }
            for (var g = 0u; g < G; g++) {
                let d = dots[g];
                psc[(g * CH + rr) * LANES + lane] = (d.x + d.y) + (d.z + d.w);
            }
        }
        workgroupBarrier();
        for (var g = 0u; g < G; g++) {
            var t = 0.0;
            for (var ln = 0u; ln < LANES; ln++) {
                t += psc[(g * CH + tid) * LANES + ln];
            }
            dots[g] = vec4<f32>(t, 0.0, 0.0, 0.0);
        }
{{- else}}
        if (tid < rows) {
            let base = (row0 + tid) * KVDU + col0;
            for (var c = 0u; c < DU; c++) {
                let k = load_unit(kcache[base + c]);
                for (var g = 0u; g < G; g++) {
                    dots[g] += kq(k, q0 + g * D4 + {{.UW}}u * c);
                }
            }
        }
{{- end}}
        var s: array<f32, G>;
        workgroupBarrier(); // the previous tile's weights in sc are read
        for (var g = 0u; g < G; g++) {
            let d = dots[g];
            s[g] = select(NEG, ((d.x + d.y) + (d.z + d.w)) * p.scale, tid < rows);
            sc[g * CH + tid] = s[g];
        }

        // The tile's maximum per query head: a tree over the rows in sc
        // (each thread keeps its own scores in s), then sc holds
        // exp(s − m) with m the running maximum.
        for (var stride = CH / 2u; stride > 0u; stride = stride / 2u) {
            workgroupBarrier();
            if (tid < stride) {
                for (var g = 0u; g < G; g++) {
                    sc[g * CH + tid] = max(sc[g * CH + tid], sc[g * CH + tid + stride]);
                }
            }
        }
        workgroupBarrier();
        var alpha: array<f32, G>;
        for (var g = 0u; g < G; g++) {
            let mt = max(m[g], sc[g * CH]);
            alpha[g] = exp(m[g] - mt);
            m[g] = mt;
        }
        workgroupBarrier();
        for (var g = 0u; g < G; g++) {
            sc[g * CH + tid] = select(0.0, exp(s[g] - m[g]), tid < rows);
        }
        workgroupBarrier();

        // acc = α·acc + Σ_j p_j · v_j and l = α·l + Σ_j p_j, each thread
        // over its slice's rows.
        for (var g = 0u; g < G; g++) {
            l[g] *= alpha[g];
            for (var w = 0u; w < UW; w++) {
                acc[g * UW + w] *= alpha[g];
            }
        }
        if (slice < SLICES) {
{{- if .AUNROLL}}
            // VU of the slice's rows loaded before any is used, so that
            // their loads are in flight together; summed in row order as
            // without AUNROLL (the slice's nr rows: slice, slice + SLICES, …).
            let nr = select(0u, (rows - slice + SLICES - 1u) / SLICES, slice < rows);
            for (var i0 = 0u; i0 < nr; i0 += VU) {
                var vu: array<{{.UNIT}}, VU>;
                for (var k = 0u; k < VU; k++) {
                    let r = slice + min(i0 + k, nr - 1u) * SLICES;
                    vu[k] = vcache[(row0 + r) * KVDU + col0 + u];
                }
                for (var k = 0u; k < VU; k++) {
                    if (i0 + k < nr) {
                        let r = slice + (i0 + k) * SLICES;
                        let v = load_unit(vu[k]);
{{- template "accv" .}}
                    }
                }
            }
{{- else}}
            for (var r = slice; r < rows; r += SLICES) {
                let v = load_unit(vcache[(row0 + r) * KVDU + col0 + u]);
{{- template "accv" .}}
            }
{{- end}}
        }
    }

    if (u == 0u && slice < SLICES) {
        for (var g = 0u; g < G; g++) {
            lsum[g * SLICES + slice] = l[g];
        }
    }
    // Column c of the head is vec4 c % UW of unit c / UW.
    let cu = tid / UW;
    let cw = tid % UW;
    for (var g = 0u; g < G; g++) {
        workgroupBarrier(); // lsum is written; red is free again
        for (var w = 0u; w < UW; w++) {
            red[tid * UW + w] = acc[g * UW + w];
        }
        workgroupBarrier();
        if (tid < D4) {
            var s = red[cu * UW + cw];
            for (var sl = 1u; sl < SLICES; sl++) {
                s += red[(sl * DU + cu) * UW + cw];
            }
            var lt = 0.0;
            for (var sl = 0u; sl < SLICES; sl++) {
                lt += lsum[g * SLICES + sl];
            }
            if (single) {
                out[q0 + g * D4 + tid] = s / lt;
            } else {
                let rec = ((b * NQ + kvh * G + g) * MAXSP + split) * (D4 + 1u);
                part[rec + 1u + tid] = s;
                if (tid == 0u) {
                    part[rec] = vec4<f32>(m[g], lt, 0.0, 0.0);
                }
            }
        }
    }
}

{{/* accv adds row r's value unit v, weighted by p = sc[g, r], into acc and
     l for each query head g of the group. */}}
{{define "accv"}}
                for (var g = 0u; g < G; g++) {
                    let pr = sc[g * CH + r];
{{- if eq .UW 2}}
                    acc[g * 2u] += pr * v.a;
                    acc[g * 2u + 1u] += pr * v.b;
{{- else}}
                    acc[g] += pr * v;
{{- end}}
                    l[g] += pr;
                }
{{- end}}
