package weights

import (
	"math"
	"math/bits"
)

// BF16ToFloat32 converts a bfloat16 to float32. bfloat16 is the top half of
// a float32, so the conversion is exact.
func BF16ToFloat32(u uint16) float32 {
	return math.Float32frombits(uint32(u) << 16)
}

// Float32ToBF16 converts a float32 to the nearest bfloat16, ties to even.
// Values beyond the bfloat16 range become infinities, and a NaN stays a NaN
// (quieted, so that truncation cannot turn its payload into an infinity).
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x0040
	}
	// Adding just under half an ulp, plus one if the kept part is odd,
	// carries into the kept bits exactly when round-half-even would.
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToFloat32 converts an IEEE 754 half-precision float to float32. Every
// half value, including subnormals, infinities and NaN payloads, is exactly
// representable in float32.
func F16ToFloat32(u uint16) float32 {
	sign := uint32(u&0x8000) << 16
	exp := uint32(u>>10) & 0x1f
	mant := uint32(u) & 0x3ff
	switch {
	case exp == 0x1f: // infinity or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal: rebias the exponent from 15 to 127
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal half, 0.mant × 2^-14, is a normal float32: shift the
	// leading one into the implicit-bit position and lower the exponent by
	// the same amount.
	shift := uint32(bits.LeadingZeros32(mant)) - 21
	mant = (mant << shift) & 0x3ff
	return math.Float32frombits(sign | (127-14-shift)<<23 | mant<<13)
}

// Float32ToF16 converts a float32 to the nearest IEEE 754 half-precision
// float, ties to even, producing subnormals for tiny values, infinities for
// values beyond ±65504 that round away from it, and a NaN for a NaN.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00
		}
		// Keep the top payload bits but force the quiet bit, so a payload
		// living only in the dropped low bits still reads as NaN.
		return sign | 0x7e00 | uint16(mant>>13)
	}
	e := exp - 127 + 15 // the exponent field the half would have
	switch {
	case e >= 0x1f:
		return sign | 0x7c00
	case e >= 1:
		// Normal half: drop 13 mantissa bits. A carry out of the mantissa
		// correctly bumps the exponent, up to infinity at the top.
		h := uint32(e)<<10 | mant>>13
		return sign | uint16(roundHalfEven(h, mant&0x1fff, 13))
	case e >= -10:
		// Subnormal half, counted in units of 2^-24: the full 24-bit
		// significand shifted right by 14-e bits. If rounding reaches 0x400
		// that is exactly the smallest normal's encoding.
		m := mant | 0x800000
		shift := uint(14 - e)
		return sign | uint16(roundHalfEven(m>>shift, m&(1<<shift-1), shift))
	default:
		// Below 2^-25, half the smallest subnormal: rounds to zero. This
		// includes float32 subnormals.
		return sign
	}
}

// roundHalfEven rounds q up by one if the dropped low bits rest (out of
// shift bits) are more than half, or exactly half with q odd.
func roundHalfEven(q, rest uint32, shift uint) uint32 {
	half := uint32(1) << (shift - 1)
	if rest > half || rest == half && q&1 == 1 {
		q++
	}
	return q
}
