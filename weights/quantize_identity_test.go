package weights

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// identityRows builds rows×4096 values of many kinds, a row per kind in
// turn: normal data at scales from subnormal to near the float32 maximum,
// zeros, constant rows, one-signed rows, spikes, a scale per 32-value
// sub-block, random bit patterns and a few NaN and Inf.
func identityRows(rows int) (src []float32, cols int) {
	cols = 4096
	rng := rand.New(rand.NewPCG(7, 11))
	src = make([]float32, rows*cols)
	normal := func(s float64) float32 { return float32(rng.NormFloat64() * s) }
	for r := range rows {
		row := src[r*cols : (r+1)*cols]
		kind := r % 18
		for i := range row {
			var v float32
			switch kind {
			case 0:
				v = normal(1)
			case 1:
				v = normal(0.02)
			case 2:
				v = normal(1e-4)
			case 3:
				v = normal(1e3)
			case 4:
				v = normal(1e30)
			case 5:
				v = normal(1e-39) // subnormal
			case 6:
				v = normal(1e-20)
			case 7:
				v = 0
			case 8:
				v = 0.5
			case 9:
				v = -3
			case 10:
				v = -abs32(normal(1))
			case 11:
				v = abs32(normal(1)) + 2
			case 12:
				if rng.IntN(50) == 0 {
					v = normal(100)
				}
			case 13:
				v = normal(math.Pow(10, float64(int((i/32)*7%79)-40)))
			case 14:
				v = math.MaxFloat32 * float32(rng.IntN(3)-1)
			case 15:
				for {
					v = math.Float32frombits(rng.Uint32())
					if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
						break
					}
				}
			case 16:
				v = normal(1)
				switch rng.IntN(200) {
				case 0:
					v = float32(math.NaN())
				case 1:
					v = float32(math.Inf(1))
				case 2:
					v = float32(math.Inf(-1))
				}
			case 17:
				v = normal(1) * float32(1+rng.IntN(2)*1000) // outliers in normal data
			}
			row[i] = v
		}
	}
	return src, cols
}

// TestQuantizeIdentityPin is a regression pin: the sha256 of each type's
// output for identityRows was computed with the quantizers as they were
// before their speed-up, and any change to the code must keep those bytes
// exactly (the GGUF files we write must stay what ggml would write). The
// hashes are amd64's: Go's conversion of NaN, ±Inf and out-of-range
// floats to int is implementation-defined, and ggml's algorithm reaches
// such values on subnormal and overflowing sub-blocks, so other
// architectures may give other bytes there (the comparison with the
// reference copy below checks them on any architecture).
func TestQuantizeIdentityPin(t *testing.T) {
	src, cols := identityRows(288)
	rows := len(src) / cols
	want := map[DType]string{
		Q8_0: "7d64aeef211547d225d2eb717100a665fa107fcb262665b1a46162e4f3f31ad3",
		Q4_0: "bb7967829a899a3f459f88686de034938bf134513b047bfb25e511959efa11a1",
		Q4_K: "f595d4c123f2455be7fe9832ce22dfe0043f5dd1dcbdce357f3ed3d151337eb3",
	}
	for _, d := range QuantizeTypes {
		raw, err := Quantize(d, src, rows, cols, nil)
		require.NoError(t, err)
		sum := sha256.Sum256(raw)
		got := hex.EncodeToString(sum[:])
		t.Logf("%v: %s", d, got)
		if runtime.GOARCH == "amd64" {
			assert.Equal(t, want[d], got, "%v output changed", d)
		}
	}
}

// refQuantizeQ4KBlock is the Q4_K quantizer with its search as it was
// before the speed-up (refMakeQKX2Quants and refNearestInt, kept verbatim),
// the reference the faster search must match byte for byte. The weights
// and the packing around the search did not change and are shared
// (q4kWeights, packQ4KBlock); the pin above and
// TestQuantizeMatchesReferenceBlocks (ggml's bytes) hold those to theirs.
func refQuantizeQ4KBlock(x []float32, out []byte) {
	var (
		L      [256]uint8
		scales [8]float32
		mins   [8]float32
	)
	weights := q4kWeights(x)
	for j := range 8 {
		scales[j], mins[j] = refMakeQKX2Quants(15, x[32*j:32*j+32], weights[j][:], L[32*j:32*j+32], -1, 0.1, 20)
	}
	packQ4KBlock(x, &L, &scales, &mins, out)
}

func refNearestInt(v float32) int { return int(math.RoundToEven(float64(v))) }

func refMakeQKX2Quants(nmax int, x, w []float32, L []uint8, rmin, rdelta float32, nstep int) (scale, negMin float32) {
	n := len(x)
	lo, hi := x[0], x[0]
	sumW := w[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < n; i++ {
		lo, hi = min(lo, x[i]), max(hi, x[i])
		sumW += w[i]
		sumX += float32(w[i] * x[i])
	}
	lo = min(lo, 0)
	if hi == lo {
		clear(L)
		return 0, -lo
	}
	fmax := float32(nmax)
	iscale := fmax / (hi - lo)
	scale = 1 / iscale
	var bestErr float32
	for i := range n {
		l := max(0, min(nmax, refNearestInt(float32(iscale*(x[i]-lo)))))
		L[i] = uint8(l)
		diff := float32(float32(scale*float32(l))+lo) - x[i]
		bestErr += float32(w[i] * float32(diff*diff))
	}
	var aux [32]uint8
	for is := 0; is <= nstep; is++ {
		iscale = (float32(rmin+float32(rdelta*float32(is))) + fmax) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i := range n {
			l := max(0, min(nmax, refNearestInt(float32(iscale*(x[i]-lo)))))
			aux[i] = uint8(l)
			wl := float32(w[i] * float32(l))
			sumL += wl
			sumL2 += float32(wl * float32(l))
			sumXL += float32(wl * x[i])
		}
		D := float32(sumW*sumL2) - float32(sumL*sumL)
		if D <= 0 {
			continue
		}
		thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / D
		thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / D
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var mad float32
		for i := range n {
			diff := float32(float32(thisScale*float32(aux[i]))+thisMin) - x[i]
			mad += float32(w[i] * float32(diff*diff))
		}
		if mad < bestErr {
			copy(L, aux[:n])
			bestErr = mad
			scale, lo = thisScale, thisMin
		}
	}
	return scale, -lo
}

// checkQ4KMatchesRef quantizes x's 256-value blocks with both quantizers.
func checkQ4KMatchesRef(t *testing.T, x []float32) {
	t.Helper()
	var got, want [144]byte
	for b := 0; b+256 <= len(x); b += 256 {
		quantizeQ4KBlock(x[b:b+256], got[:])
		refQuantizeQ4KBlock(x[b:b+256], want[:])
		if got != want {
			t.Fatalf("block at %d: got %x, want %x (values %v)", b, got, want, x[b:b+256])
		}
	}
}

// TestQuantizeQ4KMatchesRef compares the Q4_K quantizer with the
// reference copy above, on identityRows and on random blocks built to
// land on rounding ties and on the edges of the fast paths, on any
// architecture.
func TestQuantizeQ4KMatchesRef(t *testing.T) {
	src, _ := identityRows(36)
	checkQ4KMatchesRef(t, src)
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 256)
	for range 20000 {
		scale := float32(math.Pow(2, float64(rng.IntN(300)-150)))
		for i := range x {
			switch rng.IntN(6) {
			case 0: // small integers and halves: ties when scaled by simple factors
				x[i] = float32(rng.IntN(64)-16) / 2 * scale
			case 1:
				x[i] = 0
			case 2:
				x[i] = float32(rng.IntN(16)) * scale
			default:
				x[i] = float32(rng.NormFloat64()) * scale
			}
		}
		// Now and then a sub-block of one value (makeQKX2Quants'
		// early return).
		if rng.IntN(4) == 0 {
			j := rng.IntN(8)
			for i := range 32 {
				x[32*j+i] = x[32*j]
			}
		}
		checkQ4KMatchesRef(t, x)
	}
}

// FuzzQuantizeQ4KMatchesRef: any 256 float32 values (NaN and Inf
// included) give the reference's bytes.
func FuzzQuantizeQ4KMatchesRef(f *testing.F) {
	f.Add(make([]byte, 1024), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, fill uint8) {
		x := make([]float32, 256)
		for i := range x {
			if 4*i+4 <= len(data) {
				x[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
			} else {
				x[i] = float32(fill) * float32(i%7)
			}
		}
		checkQ4KMatchesRef(t, x)
	})
}

// BenchmarkQuantizeQ4K quantizes a 4096×4096 matrix of normal values,
// about what one 8B projection holds; MB/s counts the float32 input.
func BenchmarkQuantizeQ4K(b *testing.B) {
	const rows, cols = 4096, 4096
	rng := rand.New(rand.NewPCG(1, 1))
	src := make([]float32, rows*cols)
	for i := range src {
		src[i] = float32(rng.NormFloat64() * 0.02)
	}
	b.SetBytes(4 * rows * cols)
	for b.Loop() {
		if _, err := Quantize(Q4_K, src, rows, cols, nil); err != nil {
			b.Fatal(err)
		}
	}
}
