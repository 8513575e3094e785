{{/*
lib_best: the ranking of (value, id) pairs that argmax and topk share, and
their workgroup reduction (256 threads).

  NONE, FLAG                   an empty slot's id; the non-finite flag bit
  wv, wi, bad                  workgroup arrays [256]: value, id, flags
  finite(v) -> bool            by the bits: drivers may fold v != v to false
  better(v, i, bv, bi) -> bool (v, i) ranks above (bv, bi): a larger value,
                               or the same value at a lower id; an empty
                               slot (NONE) ranks last
  reduce(lid)                  leaves the best pair of the workgroup in slot
                               0 and the OR of the flags in bad[0]

Use: {{template "best"}} after the bindings.
*/}}
{{define "best"}}
const NONE = 0xffffffffu;
const FLAG = 0x80000000u;

var<workgroup> wv: array<f32, 256>;
var<workgroup> wi: array<u32, 256>;
var<workgroup> bad: array<u32, 256>;

fn finite(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u;
}

fn better(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return i != NONE && (bi == NONE || v > bv || (v == bv && i < bi));
}

fn reduce(lid: u32) {
    for (var s = 128u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (lid < s) {
            if (better(wv[lid + s], wi[lid + s], wv[lid], wi[lid])) {
                wv[lid] = wv[lid + s];
                wi[lid] = wi[lid + s];
            }
            bad[lid] = bad[lid] | bad[lid + s];
        }
    }
    workgroupBarrier();
}
{{end}}
