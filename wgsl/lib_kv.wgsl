{{/*
lib_kv: the element format of the KV cache, chosen by the template
variable KV: "f32" (one value per word), "f16" or "bf16" (two values per
u32, element 2i in the low half, as the packed weights). naga 0.13 has no
f16 type, so 16-bit values are packed and unpacked by hand.

  kv_pack(a, b) -> u32         16-bit formats: a in the low half. f16
                               rounds as the device's pack2x16float does
                               and saturates at ±65504 (a value past it
                               would be indeterminate, not infinite);
                               bf16 rounds to nearest even.
  kv_unpack4(u: vec2<u32>)     four consecutive values of two words
  kv_unpack8(u: vec4<u32>)     eight consecutive values of four words, as
                               two vec4 (the first holds elements 0..3)

Use: {{template "kv" .}}; the caller's vars need a KV field.
*/}}
{{define "kv"}}
{{- if eq .KV "f16"}}
fn kv_pack(a: f32, b: f32) -> u32 {
    return pack2x16float(clamp(vec2<f32>(a, b), vec2<f32>(-65504.0), vec2<f32>(65504.0)));
}

fn kv_unpack4(u: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y));
}
{{- else if eq .KV "bf16"}}
fn kv_bf16(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

fn kv_pack(a: f32, b: f32) -> u32 {
    return kv_bf16(a) | (kv_bf16(b) << 16u);
}

fn kv_unpack4(u: vec2<u32>) -> vec4<f32> {
    return vec4<f32>(bitcast<f32>(u.x << 16u), bitcast<f32>(u.x & 0xffff0000u),
                     bitcast<f32>(u.y << 16u), bitcast<f32>(u.y & 0xffff0000u));
}
{{- end}}
{{- if ne .KV "f32"}}

struct KV8 {
    a: vec4<f32>,
    b: vec4<f32>,
}

fn kv_unpack8(u: vec4<u32>) -> KV8 {
    return KV8(kv_unpack4(u.xy), kv_unpack4(u.zw));
}
{{- end}}
{{end}}
