// attention_prefill: causal grouped-query attention for the T = step.rows
// query tokens of one sequence, at positions pos0 .. pos0+T-1 of cache slot
// `slot` (both from step row 0), against its cache rows [0, pos0+T), the keys
// and values of the tokens themselves already written by qkv_norm_rope.
// Token t sees cache rows [0, pos0 + t].
//
// Flash-style: the T·G query rows of one kv head (row R is token R / G,
// query head kvh·G + R % G) are cut into tiles of BQ; workgroup (tile, kvh)
// walks the keys in tiles of BK held in workgroup memory, with an online
// softmax (running max m, running sum l, rescaled accumulator), so the
// scores never leave the workgroup and each key tile is read once for all
// G query heads that share it. Within a workgroup thread (r, lane) owns
// query row r, keys lane + i·LANES of each tile, and vec4 columns
// lane + i·LANES of the output.
//
// Bindings:
//   0 p       uniform Params
//   1 step    uniform Step (lib_step)
//   2 q       [T, NQ·HD] f32 as vec4
//   3 kcache  [SLOTS, CTX, NKV·HD] KV (lib_kv): vec4<f32>, or four
//             16-bit values packed in a vec2<u32>
//   4 vcache  [SLOTS, CTX, NKV·HD] KV, as kcache
//   5 out     [T, NQ·HD] f32 as vec4
//
// Params: scale  1 / sqrt(HD)
//
// Dispatch: (⌈T·G / BQ⌉, NKV, 1) workgroups of BQ·LANES threads.

struct Params {
    scale: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}
{{template "step" .}}
{{template "kv" .}}

const D4: u32 = {{.D4}}u;             // HD / 4
const G: u32 = {{.G}}u;               // query heads per kv head
const QD4: u32 = {{.QD4}}u;           // NQ · HD / 4: vec4s per q row
const KVD4: u32 = {{.KVD4}}u;         // NKV · HD / 4: vec4s per cache row
const BQ: u32 = {{.BQ}}u;             // query rows per workgroup
const BK: u32 = {{.BK}}u;             // keys per tile
const LANES: u32 = {{.LANES}}u;       // threads per query row
const KPL: u32 = {{.KPL}}u;           // BK / LANES: keys per thread
const CPL: u32 = {{.CPL}}u;           // ⌈D4 / LANES⌉: vec4 columns per thread
const WG: u32 = {{.WG}}u;             // BQ · LANES
const ST: u32 = {{.ST}}u;             // D4 + 1: padded row stride in workgroup memory
const CTX: u32 = {{.CTX}}u;           // cache rows per slot
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> kcache: array<{{.UNIT}}>;
@group(0) @binding(4) var<storage, read> vcache: array<{{.UNIT}}>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;

var<workgroup> qs: array<vec4<f32>, {{.QSSIZE}}>;  // [BQ, ST]
var<workgroup> kv: array<vec4<f32>, {{.KVSIZE}}>;  // [BK, ST] the key tile, then the value tile
var<workgroup> sc: array<f32, {{.SSIZE}}>;          // [BQ, BK] scores
var<workgroup> pr: array<f32, {{.SSIZE}}>;          // [BQ, BK] exp(s − m)

// load_unit widens four cache values.
fn load_unit(u: {{.UNIT}}) -> vec4<f32> {
    return {{if eq .KV "f32"}}u{{else}}kv_unpack4(u){{end}};
}

@compute @workgroup_size({{.WG}})
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let kvh = wid.y;
    let t = step.rows;
    let pos0 = step.row[0].y;
    let cache0 = step.row[0].x * CTX * KVD4; // the slot's first vec4
    let rowsTotal = t * G;
    let r0 = wid.x * BQ;
    let r = tid / LANES;
    let lane = tid % LANES;
    let live = r0 + r < rowsTotal;
    let myRow = min(r0 + r, rowsTotal - 1u);
    let tok = myRow / G;
    let qhead = kvh * G + myRow % G;
    let qpos = pos0 + tok;
    // Keys [0, kend) are visible to some row of the tile.
    let lastTok = (min(r0 + BQ, rowsTotal) - 1u) / G;
    let kend = pos0 + lastTok + 1u;

    for (var i = tid; i < BQ * D4; i += WG) {
        let rr = i / D4;
        let c = i % D4;
        let row = min(r0 + rr, rowsTotal - 1u);
        qs[rr * ST + c] = q[(row / G) * QD4 + (kvh * G + row % G) * D4 + c];
    }

    var m = NEG;
    var l = 0.0;
    var acc: array<vec4<f32>, CPL>;
    for (var k0 = 0u; k0 < kend; k0 += BK) {
        workgroupBarrier(); // the previous value tile is no longer read
        for (var i = tid; i < BK * D4; i += WG) {
            let jj = i / D4;
            let c = i % D4;
            var k = vec4<f32>(0.0);
            if (k0 + jj < kend) {
                k = load_unit(kcache[cache0 + (k0 + jj) * KVD4 + kvh * D4 + c]);
            }
            kv[jj * ST + c] = k;
        }
        workgroupBarrier();

        for (var i = 0u; i < KPL; i++) {
            let jj = lane + i * LANES;
            var s = NEG;
            if (k0 + jj <= qpos) {
                // Four partial sums (one per vec4 lane) then a pairwise
                // add: half the rounding error of one running sum, and the
                // same order as the decode kernel's split.
                var d = vec4<f32>(0.0);
                for (var c = 0u; c < D4; c++) {
                    d += qs[r * ST + c] * kv[jj * ST + c];
                }
                s = ((d.x + d.y) + (d.z + d.w)) * p.scale;
            }
            sc[r * BK + jj] = s;
        }
        workgroupBarrier();

        // Every thread of row r derives the row's new maximum itself; a
        // masked row keeps m = NEG and gets weights that are never written.
        var mt = m;
        for (var jj = 0u; jj < BK; jj++) {
            mt = max(mt, sc[r * BK + jj]);
        }
        for (var i = 0u; i < KPL; i++) {
            let jj = lane + i * LANES;
            pr[r * BK + jj] = exp(sc[r * BK + jj] - mt);
        }
        let alpha = exp(m - mt);
        m = mt;
        for (var i = tid; i < BK * D4; i += WG) {
            let jj = i / D4;
            let c = i % D4;
            var v = vec4<f32>(0.0);
            if (k0 + jj < kend) {
                v = load_unit(vcache[cache0 + (k0 + jj) * KVD4 + kvh * D4 + c]);
            }
            kv[jj * ST + c] = v;
        }
        workgroupBarrier();

        var lt = 0.0;
        for (var jj = 0u; jj < BK; jj++) {
            lt += pr[r * BK + jj];
        }
        l = l * alpha + lt;
        for (var i = 0u; i < CPL; i++) {
            let c = lane + i * LANES;
            if (c < D4) {
                var a = acc[i] * alpha;
                for (var jj = 0u; jj < BK; jj++) {
                    a += pr[r * BK + jj] * kv[jj * ST + c];
                }
                acc[i] = a;
            }
        }
    }

    if (!live) {
        return;
    }
    for (var i = 0u; i < CPL; i++) {
        let c = lane + i * LANES;
        if (c < D4) {
            out[tok * QD4 + qhead * D4 + c] = acc[i] / l;
        }
    }
}
