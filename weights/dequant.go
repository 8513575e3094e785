package weights

import (
	"encoding/binary"
)

// Dequantization of the GGUF block types, each exactly as ggml defines it.
// Every value is one product of the block's f16 scale(s) and small integers,
// exact in float32, or (the types with a minimum) one such product plus or
// minus another, rounded once; so the result does not depend on evaluation
// order or on fused multiply-adds, and matches ggml's decoders bit for bit.

// f16At reads the little-endian IEEE half at b[0:2] as float32.
func f16At(b []byte) float32 { return F16ToFloat32(binary.LittleEndian.Uint16(b)) }

// dequantBlocks decodes the whole blocks in src into dst, which holds
// len(src)/BlockBytes·BlockSize values. The type must be quantized.
func dequantBlocks(d DType, src []byte, dst []float32) {
	bs, bb := quantBlocks[d].size, quantBlocks[d].bytes
	decode := blockDecoders[d]
	for i := 0; i*bb < len(src); i++ {
		decode(src[i*bb:(i+1)*bb], dst[i*bs:(i+1)*bs])
	}
}

var blockDecoders = [...]func(b []byte, y []float32){
	Q4_0: dequantQ4_0,
	Q4_1: dequantQ4_1,
	Q5_0: dequantQ5_0,
	Q5_1: dequantQ5_1,
	Q8_0: dequantQ8_0,
	Q4_K: dequantQ4K,
	Q5_K: dequantQ5K,
	Q6_K: dequantQ6K,
}

// Q4_0: y = (q - 8)·d, value j in the low nibble of byte j, value j+16 in
// its high nibble.
func dequantQ4_0(b []byte, y []float32) {
	d := f16At(b)
	qs := b[2:18]
	for j := range 16 {
		y[j] = float32(int(qs[j]&0xf)-8) * d
		y[j+16] = float32(int(qs[j]>>4)-8) * d
	}
}

// Q4_1: y = q·d + m.
func dequantQ4_1(b []byte, y []float32) {
	d, m := f16At(b), f16At(b[2:])
	qs := b[4:20]
	for j := range 16 {
		y[j] = float32(qs[j]&0xf)*d + m
		y[j+16] = float32(qs[j]>>4)*d + m
	}
}

// Q5_0: y = (q - 16)·d, the fifth bit of value j in bit j of the 32-bit qh.
func dequantQ5_0(b []byte, y []float32) {
	d := f16At(b)
	qh := binary.LittleEndian.Uint32(b[2:])
	qs := b[6:22]
	for j := range 16 {
		lo := int(qs[j]&0xf) | int(qh>>j&1)<<4
		hi := int(qs[j]>>4) | int(qh>>(j+16)&1)<<4
		y[j] = float32(lo-16) * d
		y[j+16] = float32(hi-16) * d
	}
}

// Q5_1: y = q·d + m with 5-bit q.
func dequantQ5_1(b []byte, y []float32) {
	d, m := f16At(b), f16At(b[2:])
	qh := binary.LittleEndian.Uint32(b[4:])
	qs := b[8:24]
	for j := range 16 {
		lo := uint32(qs[j]&0xf) | (qh>>j&1)<<4
		hi := uint32(qs[j]>>4) | (qh>>(j+16)&1)<<4
		y[j] = float32(lo)*d + m
		y[j+16] = float32(hi)*d + m
	}
}

// Q8_0: y = q·d with int8 q.
func dequantQ8_0(b []byte, y []float32) {
	d := f16At(b)
	for j, q := range b[2:34] {
		y[j] = float32(int8(q)) * d
	}
}

// ScaleMinK4 unpacks the 6-bit scale and min of sub-block j (0..7) from the
// 12 scale bytes of a Q4_K or Q5_K block: sub-blocks 0-3 keep theirs in the
// low 6 bits of bytes j and j+4; 4-7 have their low 4 bits in byte j+4 and
// their top 2 bits in the spare top bits of bytes j-4 and j.
func ScaleMinK4(j int, s []byte) (sc, m uint8) {
	if j < 4 {
		return s[j] & 63, s[j+4] & 63
	}
	return s[j+4]&0xf | (s[j-4]>>6)<<4, s[j+4]>>4 | (s[j]>>6)<<4
}

// Q4_K: 256 values in 8 sub-blocks of 32, each y = d·sc·q - dmin·m. Each
// 64 values share 32 bytes: the first 32 in the low nibbles, the next 32
// in the high nibbles.
func dequantQ4K(b []byte, y []float32) {
	d, dmin := f16At(b), f16At(b[2:])
	scales, qs := b[4:16], b[16:144]
	for g := range 4 {
		sc1, m1 := ScaleMinK4(2*g, scales)
		sc2, m2 := ScaleMinK4(2*g+1, scales)
		d1, min1 := d*float32(sc1), dmin*float32(m1)
		d2, min2 := d*float32(sc2), dmin*float32(m2)
		q, out := qs[32*g:32*g+32], y[64*g:64*g+64]
		for l := range 32 {
			out[l] = d1*float32(q[l]&0xf) - min1
			out[l+32] = d2*float32(q[l]>>4) - min2
		}
	}
}

// Q5_K: Q4_K with a fifth bit per value; the bits of group g (64 values)
// are bits 2g (first 32) and 2g+1 (next 32) of qh[l].
func dequantQ5K(b []byte, y []float32) {
	d, dmin := f16At(b), f16At(b[2:])
	scales, qh, qs := b[4:16], b[16:48], b[48:176]
	for g := range 4 {
		sc1, m1 := ScaleMinK4(2*g, scales)
		sc2, m2 := ScaleMinK4(2*g+1, scales)
		d1, min1 := d*float32(sc1), dmin*float32(m1)
		d2, min2 := d*float32(sc2), dmin*float32(m2)
		q, out := qs[32*g:32*g+32], y[64*g:64*g+64]
		for l := range 32 {
			lo := q[l]&0xf | (qh[l]>>(2*g)&1)<<4
			hi := q[l]>>4 | (qh[l]>>(2*g+1)&1)<<4
			out[l] = d1*float32(lo) - min1
			out[l+32] = d2*float32(hi) - min2
		}
	}
}

// Q6_K: 256 values in 16 sub-blocks of 16, y = d·sc·(q - 32) with 6-bit q:
// low 4 bits in ql, top 2 bits in qh. Each half of 128 values uses 64
// bytes of ql and 32 of qh; value l+32k of the half takes nibble k/2 of
// ql[l + 32·(k%2)] and bits 2k..2k+1 of qh[l].
func dequantQ6K(b []byte, y []float32) {
	ql, qh, sc := b[0:128], b[128:192], b[192:208]
	d := f16At(b[208:])
	for h := range 2 {
		l6, h6, s6, out := ql[64*h:64*h+64], qh[32*h:32*h+32], sc[8*h:8*h+8], y[128*h:128*h+128]
		for l := range 32 {
			is := l / 16
			q1 := int(l6[l]&0xf|(h6[l]>>0&3)<<4) - 32
			q2 := int(l6[l+32]&0xf|(h6[l]>>2&3)<<4) - 32
			q3 := int(l6[l]>>4|(h6[l]>>4&3)<<4) - 32
			q4 := int(l6[l+32]>>4|(h6[l]>>6&3)<<4) - 32
			out[l] = d * float32(int8(s6[is])) * float32(q1)
			out[l+32] = d * float32(int8(s6[is+2])) * float32(q2)
			out[l+64] = d * float32(int8(s6[is+4])) * float32(q3)
			out[l+96] = d * float32(int8(s6[is+6])) * float32(q4)
		}
	}
}
