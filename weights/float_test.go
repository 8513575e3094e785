package weights

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestF16ToFloat32KnownPatterns(t *testing.T) {
	cases := []struct {
		bits uint16
		want float32
	}{
		{0x3C00, 1},
		{0xBC00, -1},
		{0xC000, -2},
		{0x3800, 0.5},
		{0x3555, 0.333251953125}, // nearest half to 1/3: 1.0101010101b × 2^-2
		{0x7BFF, 65504},          // largest finite half
		{0x0400, 0x1p-14},        // smallest normal
		{0x03FF, 1023 * 0x1p-24}, // largest subnormal
		{0x0001, 0x1p-24},        // smallest subnormal
		{0x8001, -0x1p-24},
		{0x0200, 0x1p-15},
		{0x0000, 0},
	}
	for _, c := range cases {
		require.Equal(t, c.want, F16ToFloat32(c.bits), "bits %#04x", c.bits)
	}
	require.Equal(t, uint32(0x80000000), math.Float32bits(F16ToFloat32(0x8000)), "-0 keeps its sign")
	require.True(t, math.IsInf(float64(F16ToFloat32(0x7C00)), 1))
	require.True(t, math.IsInf(float64(F16ToFloat32(0xFC00)), -1))
	for _, nan := range []uint16{0x7E00, 0x7C01, 0xFE00, 0x7FFF} {
		require.True(t, math.IsNaN(float64(F16ToFloat32(nan))), "bits %#04x", nan)
	}
}

// TestF16ToFloat32AllValues compares every half against its value computed
// from the IEEE definition in float64.
func TestF16ToFloat32AllValues(t *testing.T) {
	for u := 0; u < 1<<16; u++ {
		sign := 1.0
		if u&0x8000 != 0 {
			sign = -1
		}
		e, m := (u>>10)&0x1f, u&0x3ff
		if e == 0x1f {
			continue // covered by the known-pattern test
		}
		var want float64
		if e == 0 {
			want = sign * math.Ldexp(float64(m), -24)
		} else {
			want = sign * math.Ldexp(float64(1024+m), e-25)
		}
		got := F16ToFloat32(uint16(u))
		require.Equal(t, want, float64(got), "bits %#04x", u)
		require.Equal(t, math.Signbit(want), math.Signbit(float64(got)), "bits %#04x", u)
	}
}

func TestFloat32ToF16KnownPatterns(t *testing.T) {
	cases := []struct {
		in   float32
		want uint16
	}{
		{1, 0x3C00},
		{-2, 0xC000},
		{65504, 0x7BFF},
		{65519, 0x7BFF},            // below the midpoint to 65536
		{65520, 0x7C00},            // exact midpoint: ties to the even encoding, infinity
		{1e6, 0x7C00},              // overflow
		{-1e6, 0xFC00},             //
		{0x1p-24, 0x0001},          // smallest subnormal
		{0x1p-25, 0x0000},          // half of it: tie to even zero
		{1.5 * 0x1p-25, 0x0001},    // above the tie
		{3 * 0x1p-25, 0x0002},      // 1.5 units: tie to even 2
		{5 * 0x1p-25, 0x0002},      // 2.5 units: tie to even 2
		{1023 * 0x1p-24, 0x03FF},   // largest subnormal
		{1023.5 * 0x1p-24, 0x0400}, // tie between 0x3FF and smallest normal 0x400: even
		{0x1p-14, 0x0400},
		{1e-10, 0x0000},
		{-1e-10, 0x8000},
		{1 + 0x1p-11, 0x3C00},           // midpoint of 1 and 1+2^-10: even is 1
		{1 + 3*0x1p-11, 0x3C02},         // midpoint of 0x3C01 and 0x3C02: even is 0x3C02
		{1 + 0x1p-11 + 0x1p-20, 0x3C01}, // just above the midpoint
		{1 + 0x1p-11 - 0x1p-20, 0x3C00}, // just below
		{1 - 0x1p-12, 0x3C00},           // midpoint of 0x3BFF and 1: even, across the binade
		{1 - 0x1p-11, 0x3BFF},           // exactly representable just below 1
		{float32(math.Inf(1)), 0x7C00},
		{float32(math.Inf(-1)), 0xFC00},
		{math.Float32frombits(0x00000001), 0x0000}, // float32 subnormal
	}
	for _, c := range cases {
		require.Equal(t, c.want, Float32ToF16(c.in), "input %g (%#08x)", c.in, math.Float32bits(c.in))
	}
	require.Equal(t, uint16(0x8000), Float32ToF16(float32(math.Copysign(0, -1))))
	for _, nan := range []uint32{0x7FC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF} {
		h := Float32ToF16(math.Float32frombits(nan))
		require.Equal(t, uint16(0x7C00), h&0x7C00, "NaN %#08x -> %#04x", nan, h)
		require.NotZero(t, h&0x3FF, "NaN %#08x must not become infinity", nan)
	}
}

// TestFloat32ToF16Nearest checks the rounding against a brute-force
// reference: the nearest entry in a table of every finite half value, ties
// going to the even encoding.
func TestFloat32ToF16Nearest(t *testing.T) {
	var vals []float64 // index = encoding, for 0x0000..0x7BFF
	for u := 0; u <= 0x7BFF; u++ {
		e, m := u>>10, u&0x3ff
		if e == 0 {
			vals = append(vals, math.Ldexp(float64(m), -24))
		} else {
			vals = append(vals, math.Ldexp(float64(1024+m), e-25))
		}
	}
	// Rounding treats infinity, encoding 0x7C00, as the next step 2^16.
	vals = append(vals, 65536)
	reference := func(f float32) uint16 {
		x := math.Abs(float64(f))
		var sign uint16
		if math.Signbit(float64(f)) {
			sign = 0x8000
		}
		if x > 65536 {
			return sign | 0x7C00
		}
		i := sort.SearchFloat64s(vals, x) // first vals[i] >= x
		if vals[i] == x {
			return sign | uint16(i)
		}
		lo, hi := i-1, i
		dlo, dhi := x-vals[lo], vals[hi]-x
		switch {
		case dlo < dhi:
			return sign | uint16(lo)
		case dhi < dlo:
			return sign | uint16(hi)
		case lo%2 == 0:
			return sign | uint16(lo)
		}
		return sign | uint16(hi)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		// Concentrate on exponents around the half range, where all the
		// interesting rounding happens, plus some fully random patterns.
		var b uint32
		if rng.IntN(4) == 0 {
			b = rng.Uint32()
		} else {
			b = rng.Uint32()&0x807fffff | uint32(95+rng.IntN(50))<<23
		}
		f := math.Float32frombits(b)
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			continue
		}
		require.Equal(t, reference(f), Float32ToF16(f), "input %g (%#08x)", f, b)
	}
}

func TestF16RoundTripAllValues(t *testing.T) {
	for u := 0; u < 1<<16; u++ {
		f := F16ToFloat32(uint16(u))
		if math.IsNaN(float64(f)) {
			continue
		}
		require.Equal(t, uint16(u), Float32ToF16(f), "bits %#04x", u)
	}
}

func TestBF16KnownPatterns(t *testing.T) {
	require.Equal(t, float32(1), BF16ToFloat32(0x3F80))
	require.Equal(t, float32(-2), BF16ToFloat32(0xC000))
	require.Equal(t, float32(0.5), BF16ToFloat32(0x3F00))
	require.Equal(t, float32(0x1p-133), BF16ToFloat32(0x0001)) // smallest subnormal
	require.True(t, math.IsInf(float64(BF16ToFloat32(0x7F80)), 1))
	require.True(t, math.IsInf(float64(BF16ToFloat32(0xFF80)), -1))
	require.True(t, math.IsNaN(float64(BF16ToFloat32(0x7FC0))))
	require.Equal(t, uint32(0x80000000), math.Float32bits(BF16ToFloat32(0x8000)))

	cases := []struct {
		in   uint32 // float32 bits
		want uint16
	}{
		{0x3F800000, 0x3F80}, // 1
		{0xC0000000, 0xC000}, // -2
		{0x3F808000, 0x3F80}, // midpoint, kept part even: down
		{0x3F818000, 0x3F82}, // midpoint, kept part odd: up
		{0x3F808001, 0x3F81}, // just above the midpoint
		{0x3F807FFF, 0x3F80}, // just below
		{0x3FFFFFFF, 0x4000}, // carries into the exponent
		{0x7F7FFFFF, 0x7F80}, // max float32 rounds past the largest bf16: +Inf
		{0x7F7F7FFF, 0x7F7F}, // stays at the largest finite bf16
		{0x7F800000, 0x7F80}, // +Inf
		{0xFF800000, 0xFF80}, // -Inf
		{0x80000000, 0x8000}, // -0
		{0x00008000, 0x0000}, // subnormal tie to even zero
		{0x00018000, 0x0002}, // subnormal tie, odd: up
	}
	for _, c := range cases {
		require.Equal(t, c.want, Float32ToBF16(math.Float32frombits(c.in)), "input %#08x", c.in)
	}
	for _, nan := range []uint32{0x7FC00000, 0x7F800001, 0xFF800001, 0x7F80FFFF} {
		h := Float32ToBF16(math.Float32frombits(nan))
		require.True(t, math.IsNaN(float64(BF16ToFloat32(h))), "NaN %#08x -> %#04x", nan, h)
	}
}

// TestFloat32ToBF16Nearest compares against choosing the nearer of the two
// bfloat16 neighbours in float64, treating the step past the largest finite
// value as 2^128 the way IEEE overflow rounding does.
func TestFloat32ToBF16Nearest(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200_000 {
		b := rng.Uint32()
		f := math.Float32frombits(b)
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			continue
		}
		lo := b &^ 0xffff
		x := math.Abs(float64(f))
		vlo := math.Abs(float64(math.Float32frombits(lo)))
		var vhi float64
		if lo&0x7fffffff == 0x7f7f0000 {
			vhi = math.Ldexp(1, 128)
		} else {
			vhi = math.Abs(float64(math.Float32frombits(lo + 0x10000)))
		}
		want := uint16(lo >> 16)
		if d1, d2 := x-vlo, vhi-x; d2 < d1 || d1 == d2 && want&1 == 1 {
			want++
		}
		require.Equal(t, want, Float32ToBF16(f), "input %#08x", b)
	}
}

func TestBF16RoundTripAllValues(t *testing.T) {
	for u := 0; u < 1<<16; u++ {
		f := BF16ToFloat32(uint16(u))
		if math.IsNaN(float64(f)) {
			continue
		}
		require.Equal(t, uint16(u), Float32ToBF16(f), "bits %#04x", u)
	}
}
