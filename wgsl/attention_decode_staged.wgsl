// attention_decode_staged: the first dispatch of decode attention, as
// attention_decode (the same splits, partial records, single-split output
// and combine; see there), in a layout meant to keep the memory system
// busy at long contexts without subgroup operations (naga 0.13 has none).
//
// Workgroup (split, kv head, step row b) handles the G query heads of its
// kv head together, so each key and value is read from memory once. It
// walks its split in tiles of T rows, T = the workgroup's threads:
//   1. the tile's keys are copied into workgroup memory (ks), every thread
//      loading DU units with neighbouring threads on neighbouring units,
//      so a warp reads whole rows;
//   2. thread j computes the whole dot products of key j with the G
//      queries (held in workgroup memory, qs), so no key needs a
//      reduction across threads;
//   3. every thread reads all T scores of the tile (the same address for
//      the whole workgroup: one broadcast read) and finds the running
//      maximum itself, so the tile needs no reduction tree; thread j
//      writes p_j = exp(s_j − m) to ps;
//   4. thread (slice, u) adds p_r · v_r for load unit u of rows
//      r = slice, slice + SLICES, …, so a warp reads whole value rows.
// The next tile's keys are requested as soon as the scores are in sc (ks
// is free then), so they load while steps 3 and 4 run.
// Three barriers per tile. Rows past the split's end are read as its last
// row (clamped, so the loads need no branch) with p = 0 and a score that
// never wins the maximum.
//
// A load unit is UW vec4s of a row: one vec4<f32> (f32 cache), or 16-bit
// values packed in a vec4<u32> (eight, UW = 2) or a vec2<u32> (four, when
// HD is not a multiple of 8). ks rows are DU + 1 units apart, so the
// threads of a warp reading their own rows hit different banks.
//
// Bindings, Params and dispatch: as attention_decode.

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
const KS: u32 = {{add .DU 1}}u;       // units between rows of ks
const UW: u32 = {{.UW}}u;             // vec4s per load unit
const G: u32 = {{.G}}u;               // query heads per kv head
const KVDU: u32 = {{.KVDU}}u;         // load units per cache row
const T: u32 = {{.CH}}u;              // rows per tile = threads per workgroup
const MINTILES: u32 = {{.MINTILES}}u; // a step of up to this many tiles runs in one split
const SPLITS: u32 = {{.SPLITS}}u;     // the most splits of a row
const MAXSP: u32 = {{.MAXSP}}u;       // records per (row, head) in part
const SLICES: u32 = {{.SLICES}}u;     // T / DU: row slices while summing values
const VROWS: u32 = {{.VROWS}}u;       // ⌈T / SLICES⌉: rows per thread while summing values
const CTX: u32 = {{.CTX}}u;           // cache rows per slot
const NQ: u32 = {{.NQ}}u;
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> kcache: array<{{.UNIT}}>;
@group(0) @binding(4) var<storage, read> vcache: array<{{.UNIT}}>;
@group(0) @binding(5) var<storage, read_write> part: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;

var<workgroup> ks: array<{{.UNIT}}, {{.KTSIZE}}>;    // [T, DU + 1] the tile's keys
var<workgroup> qs: array<vec4<f32>, {{.QTSIZE}}>;    // [G, D4] the group's queries
var<workgroup> sc: array<vec4<f32>, {{.SCSIZE}}>;    // [G, T/4] the tile's scores
var<workgroup> ps: array<f32, {{.PSIZE}}>;           // [G, T] exp(s − m) of the tile
var<workgroup> red: array<vec4<f32>, {{.REDSIZE}}>;  // [SLICES, DU, UW] value sums of the slices
var<workgroup> lsum: array<f32, {{.LSIZE}}>;         // [G, SLICES] sums of p of the slices

// split_len is L, the rows of one split: whole tiles, at most SPLITS
// splits for the step's longest row; one split (no combine) for up to
// MINTILES tiles.
// attention_combine uses the same.
fn split_len() -> u32 {
    let tiles = (step.keys + T - 1u) / T;
    return T * select((tiles + SPLITS - 1u) / SPLITS, MINTILES, tiles <= MINTILES);
}
{{if eq .UW 2}}
fn load_unit(u: {{.UNIT}}) -> KV8 {
    return kv_unpack8(u);
}
{{else}}
fn load_unit(u: {{.UNIT}}) -> vec4<f32> {
    return {{if eq .KV "f32"}}u{{else}}kv_unpack4(u){{end}};
}
{{end}}
// stage_keys copies rows [row0, row0 + T) of the kv head (rows from last
// on read as last − 1) into ks: unit i·T + tid of the tile for i < DU.
// The template writes the DU copies out one by one rather than as a loop,
// so that no compiler needs to unroll one to issue the loads together.
fn stage_keys(tid: u32, col0: u32, row0: u32, last: u32) {
{{- range $i := .DU}}
    {
        let e = {{$i}}u * T + tid;
        let r = e / DU;
        let c = e % DU;
        ks[r * KS + c] = kcache[min(row0 + r, last - 1u) * KVDU + col0 + c];
    }
{{- end}}
}

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

    for (var i = tid; i < G * D4; i += T) {
        qs[i] = q[q0 + i];
    }
    var m: array<f32, G>;
    var l: array<f32, G>;
    var acc: array<vec4<f32>, {{mul .G .UW}}>;
    for (var g = 0u; g < G; g++) {
        m[g] = NEG;
        l[g] = 0.0;
    }
    for (var w = 0u; w < G * UW; w++) {
        acc[w] = vec4<f32>(0.0);
    }
    stage_keys(tid, col0, first, last);

    for (var row0 = first; row0 < last; row0 += T) {
        let rows = min(T, last - row0);
        workgroupBarrier(); // ks holds this tile; the last tile's ps is read

        // Scores of key tid. Each vec4 lane keeps its own partial sum,
        // added pairwise at the end. (naga declares a loop's variables
        // once for the whole function: zero them here, every tile.)
        var dots: array<vec4<f32>, G>;
        for (var g = 0u; g < G; g++) {
            dots[g] = vec4<f32>(0.0);
        }
        for (var c = 0u; c < DU; c++) {
            let k = load_unit(ks[tid * KS + c]);
            for (var g = 0u; g < G; g++) {
{{- if eq .UW 2}}
                dots[g] += k.a * qs[g * D4 + 2u * c] + k.b * qs[g * D4 + 2u * c + 1u];
{{- else}}
                dots[g] += k * qs[g * D4 + c];
{{- end}}
            }
        }
        var s: array<f32, G>;
        for (var g = 0u; g < G; g++) {
            let d = dots[g];
            s[g] = select(NEG, ((d.x + d.y) + (d.z + d.w)) * p.scale, tid < rows);
        }
        for (var g = 0u; g < G; g++) {
            sc[g * (T / 4u) + tid / 4u][tid % 4u] = s[g];
        }
        workgroupBarrier(); // the scores are in sc; ks is free

        // Request the next tile's keys; they load while this tile's
        // weights and values are worked on.
        if (row0 + T < last) {
            stage_keys(tid, col0, row0 + T, last);
        }

        // The running maximum, found by every thread alike; the weights
        // of this tile's rows and the factor for the old sums.
        var alpha: array<f32, G>;
        for (var g = 0u; g < G; g++) {
            var mx = vec4<f32>(NEG);
            for (var i = 0u; i < T / 4u; i++) {
                mx = max(mx, sc[g * (T / 4u) + i]);
            }
            let mt = max(m[g], max(max(mx.x, mx.y), max(mx.z, mx.w)));
            alpha[g] = exp(m[g] - mt);
            m[g] = mt;
            ps[g * T + tid] = select(0.0, exp(s[g] - mt), tid < rows);
        }
        workgroupBarrier(); // ps is written

        // acc = α·acc + Σ_r p_r · v_r and l = α·l + Σ_r p_r over this
        // thread's rows of the tile.
        for (var g = 0u; g < G; g++) {
            l[g] *= alpha[g];
            for (var w = 0u; w < UW; w++) {
                acc[g * UW + w] *= alpha[g];
            }
        }
        if (slice < SLICES) {
            // VROWS rows each, written out one by one (no loop, no branch),
            // all loads first, so that they are issued together: a row
            // past the tile (when SLICES does not divide T) is read as the
            // tile's last with weight 0.
{{- range $i := .VROWS}}
            let r{{$i}} = slice + {{$i}}u * SLICES;
            let vu{{$i}} = vcache[min(row0 + min(r{{$i}}, T - 1u), last - 1u) * KVDU + col0 + u];
{{- end}}
{{- range $i := .VROWS}}
            {
                let v = load_unit(vu{{$i}});
                let rc = min(r{{$i}}, T - 1u);
                for (var g = 0u; g < G; g++) {
                    let pr = select(0.0, ps[g * T + rc], r{{$i}} < T);
{{- if eq $.UW 2}}
                    acc[g * 2u] += pr * v.a;
                    acc[g * 2u + 1u] += pr * v.b;
{{- else}}
                    acc[g] += pr * v;
{{- end}}
                    l[g] += pr;
                }
            }
{{- end}}
        }
    }

    if (u == 0u && slice < SLICES) {
        for (var g = 0u; g < G; g++) {
            lsum[g * SLICES + slice] = l[g];
        }
    }
    for (var g = 0u; g < G; g++) {
        workgroupBarrier(); // lsum is written; red is free again
        if (slice < SLICES) {
            for (var w = 0u; w < UW; w++) {
                red[tid * UW + w] = acc[g * UW + w];
            }
        }
        workgroupBarrier();
        var lt = 0.0;
        for (var sl = 0u; sl < SLICES; sl++) {
            lt += lsum[g * SLICES + sl];
        }
        // Column c of the head is vec4 c % UW of unit c / UW; a tile of
        // fewer rows than columns takes several.
        for (var c = tid; c < D4; c += T) {
            let cu = c / UW;
            let cw = c % UW;
            var sum = red[cu * UW + cw];
            for (var sl = 1u; sl < SLICES; sl++) {
                sum += red[(sl * DU + cu) * UW + cw];
            }
            if (single) {
                out[q0 + g * D4 + c] = sum / lt;
            } else {
                let rec = ((b * NQ + kvh * G + g) * MAXSP + split) * (D4 + 1u);
                part[rec + 1u + c] = sum;
                if (c == 0u) {
                    part[rec] = vec4<f32>(m[g], lt, 0.0, 0.0);
                }
            }
        }
    }
}
