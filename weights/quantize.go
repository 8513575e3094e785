package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Quantizers into the GGUF block layouts, written to give the bytes ggml's
// reference quantizers (quantize_row_*_ref) give: so a checkpoint quantized
// here and the same checkpoint quantized by llama.cpp's tools are the same
// model. Arithmetic is float32 as in ggml's C, with explicit conversions
// where Go could otherwise fuse a multiply and an add (it may on arm64),
// except for Q4_0's rounding step, which follows the fused result as the
// GGUF reference files do (see quantizeQ4_0Block).

// QuantizeTypes are the types Quantize produces.
var QuantizeTypes = []DType{Q8_0, Q4_0, Q4_K}

// Quantize packs rows×cols float32 values (row-major) into dtype's blocks,
// rows back to back, on all cores. cols must be a multiple of the block
// size. progress, when not nil, is called with the rows done so far.
func Quantize(dtype DType, src []float32, rows, cols int, progress func(done int)) ([]byte, error) {
	var quantBlock func(x []float32, out []byte)
	switch dtype {
	case Q8_0:
		quantBlock = quantizeQ8_0Block
	case Q4_0:
		quantBlock = quantizeQ4_0Block
	case Q4_K:
		quantBlock = quantizeQ4KBlock
	default:
		return nil, fmt.Errorf("cannot quantize to %v (want Q8_0, Q4_0 or Q4_K)", dtype)
	}
	bs, bb := dtype.BlockSize(), dtype.BlockBytes()
	if rows < 0 || cols < 0 || cols%bs != 0 {
		return nil, fmt.Errorf("%d×%d values: the row length is not a multiple of the %v block of %d", rows, cols, dtype, bs)
	}
	if rows != 0 && cols > len(src)/rows || len(src) != rows*cols {
		return nil, fmt.Errorf("%d values for %d×%d", len(src), rows, cols)
	}
	rowBytes := cols / bs * bb
	dst := make([]byte, rows*rowBytes)
	var mu sync.Mutex
	done := 0
	// Rows in chunks of about 64k values, handed to one worker per core.
	chunk := max(1, (1<<16)/max(cols, 1))
	next := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for lo := range next {
				hi := min(lo+chunk, rows)
				for r := lo; r < hi; r++ {
					row, out := src[r*cols:(r+1)*cols], dst[r*rowBytes:(r+1)*rowBytes]
					for b := 0; b < cols/bs; b++ {
						quantBlock(row[b*bs:(b+1)*bs], out[b*bb:(b+1)*bb])
					}
				}
				if progress != nil {
					mu.Lock()
					done += hi - lo
					progress(done)
					mu.Unlock()
				}
			}
		})
	}
	for lo := 0; lo < rows; lo += chunk {
		next <- lo
	}
	close(next)
	wg.Wait()
	return dst, nil
}

// QuantizeTensor quantizes a float tensor to dtype, its rows being the last
// dimension of its shape, into a new tensor of the same name and shape.
func QuantizeTensor(t *Tensor, dtype DType, progress func(done int)) (*Tensor, error) {
	vals, err := t.Float32()
	if err != nil {
		return nil, err
	}
	if len(t.Shape) == 0 {
		return nil, t.errorf("cannot quantize a scalar")
	}
	cols := t.Shape[len(t.Shape)-1]
	rows := 0
	if cols > 0 {
		rows = len(vals) / cols
	}
	raw, err := Quantize(dtype, vals, rows, cols, progress)
	if err != nil {
		return nil, t.errorf("%v", err)
	}
	return &Tensor{Name: t.Name, File: t.File, DType: dtype, Shape: append([]int(nil), t.Shape...), Raw: raw}, nil
}

func putF16(b []byte, f float32) { binary.LittleEndian.PutUint16(b, Float32ToF16(f)) }

// Q8_0: d = max|x|/127, q = round(x/d) half away from zero, with x/d
// computed as x·(1/d) in float32 like ggml.
func quantizeQ8_0Block(x []float32, out []byte) {
	var amax float32
	for _, v := range x {
		amax = max(amax, abs32(v))
	}
	d := amax / 127
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(out, d)
	for j, v := range x {
		p := v * id
		out[2+j] = byte(int8(math.Round(float64(p))))
	}
}

// Q4_0: d = m/-8 where m is the value of largest magnitude (so it maps to
// -8 exactly), q = min(15, trunc(x·(1/d) + 8.5)). ggml's result for that
// last step depends on whether the multiply-add is fused; this takes the
// fused one (exact product and sum, rounded once to float32), as gguf-py
// computes it and the reference files hold.
func quantizeQ4_0Block(x []float32, out []byte) {
	var amax, m float32
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, m = a, v
		}
	}
	d := m / -8
	var id float32
	if d != 0 {
		id = 1 / d
	}
	putF16(out, d)
	q := func(v float32) byte {
		f := float32(float64(v)*float64(id) + 8.5)
		return byte(min(15, int8(f)))
	}
	for j := range 16 {
		out[2+j] = q(x[j]) | q(x[16+j])<<4
	}
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// nearestInt rounds half to even, as ggml's nearest_int does with its
// float32 magic-number addition for the values it sees (|v| < 2^22).
func nearestInt(v float32) int { return int(math.RoundToEven(float64(v))) }

// Q4_K: each of the 8 sub-blocks of 32 values gets a scale and a minimum
// fitted by weighted least squares over a search of 21 grids
// (makeQKX2Quants); packQ4KBlock then quantizes the scales and minimums to
// 6 bits against two f16 super-block factors and requantizes the values
// with the final scales.
func quantizeQ4KBlock(x []float32, out []byte) {
	var (
		L      [256]uint8
		scales [8]float32
		mins   [8]float32
	)
	weights := q4kWeights(x)
	for j := range 8 {
		scales[j], mins[j] = makeQKX2Quants((*[32]float32)(x[32*j:]), &weights[j], (*[32]uint8)(L[32*j:]))
	}
	packQ4KBlock(x, &L, &scales, &mins, out)
}

// q4kWeights are the search's weights of the block x's values: the
// sub-block's RMS plus the value's magnitude, as ggml's Q4_K quantizer.
func q4kWeights(x []float32) (weights [8][32]float32) {
	for j := range 8 {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[j][l] = avX + abs32(v)
		}
	}
	return weights
}

// packQ4KBlock writes the Q4_K block of x into out from the searched
// scales, minimums and levels L: the 6-bit scales and minimums against
// their f16 super-block factors, then the values requantized with the
// final scales (L is overwritten).
func packQ4KBlock(x []float32, L *[256]uint8, scales, mins *[8]float32, out []byte) {
	var maxScale, maxMin float32
	for j := range 8 {
		maxScale = max(maxScale, scales[j])
		maxMin = max(maxMin, mins[j])
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	sc := out[4:16]
	clear(sc)
	for j := range 8 {
		ls := min(63, uint8(nearestInt(invScale*scales[j])))
		lm := min(63, uint8(nearestInt(invMin*mins[j])))
		if j < 4 {
			sc[j], sc[j+4] = ls, lm
		} else {
			sc[j+4] = ls&0xf | (lm&0xf)<<4
			sc[j-4] |= (ls >> 4) << 6
			sc[j] |= (lm >> 4) << 6
		}
	}
	putF16(out, maxScale/63)
	putF16(out[2:], maxMin/63)
	d, dmin := f16At(out), f16At(out[2:])
	for j := range 8 {
		s, m := ScaleMinK4(j, sc)
		dj := d * float32(s)
		if dj == 0 {
			continue
		}
		dm := dmin * float32(m)
		for i := range 32 {
			L[32*j+i] = uint8(max(0, min(15, nearestInt((x[32*j+i]+dm)/dj))))
		}
	}
	qs := out[16:144]
	for g := range 4 {
		for l := range 32 {
			qs[32*g+l] = L[64*g+l] | L[64*g+l+32]<<4
		}
	}
}

// q4kGrids are the numerators of ggml's search grids for Q4_K, whose
// quantize_row_q4_K_ref calls make_qkx2_quants with nmax 15, rmin -1,
// rdelta 0.1 and nstep 20: grid is scales by (rmin + rdelta·is + nmax) /
// (max - min), computed in float32 as there.
var q4kGrids = func() (g [21]float32) {
	rmin, rdelta := float32(-1), float32(0.1)
	for is := range g {
		g[is] = float32(rmin+float32(rdelta*float32(is))) + 15
	}
	return g
}()

// q4kStats gives a sub-block's minimum (at most 0) and maximum, and its
// sums of weights and of weighted values, as make_qkx2_quants starts.
func q4kStats(x, w *[32]float32) (lo, hi, sumW, sumX float32) {
	lo, hi = x[0], x[0]
	sumW = w[0]
	sumX = float32(sumW * x[0])
	for i := 1; i < 32; i++ {
		lo, hi = min(lo, x[i]), max(hi, x[i])
		sumW += w[i]
		sumX += float32(w[i] * x[i])
	}
	return min(lo, 0), hi, sumW, sumX
}

// makeQKX2Quants fits x ≈ scale·L + min with L in [0, 15] and min ≤ 0,
// minimising the weighted squared error: a first grid from the range, then
// the q4kGrids around it, each refined by least squares. It returns the
// scale and -min. The float32 operations are ggml's, in ggml's order,
// except for grids skipped where their result could not change the
// outcome (see below).
func makeQKX2Quants(x, w *[32]float32, L *[32]uint8) (scale, negMin float32) {
	lo, hi, sumW, sumX := q4kStats(x, w)
	if hi == lo {
		clear(L[:])
		return 0, -lo
	}
	var (
		lv  levelGrid
		aux [32]float32 // this grid's levels
	)
	lv.setMin(x, lo)
	iscale := 15 / (hi - lo)
	scale = 1 / iscale
	lv.levels(&aux, iscale, hi-lo)
	var bestErr float32
	for i, l := range &aux {
		L[i] = uint8(l)
		diff := float32(float32(scale*l)+lo) - x[i]
		bestErr += float32(w[i] * float32(diff*diff))
	}
	// lastSum is the sum of the last grid's levels where those were
	// rounded fast from the same minimum, else -1; see below.
	lastSum := float32(-1)
	for _, g := range &q4kGrids {
		sum, fast := lv.levels(&aux, g/(hi-lo), hi-lo)
		// From the same minimum the grids' scales grow, so no level
		// falls: levels summing to the last grid's are the last grid's
		// (sums of integers ≤ 15, exact). They give that grid's sums, fit
		// and error, which cannot beat the best error that grid set or
		// failed to beat.
		if sum == lastSum {
			continue
		}
		lastSum = -1
		if fast {
			lastSum = sum
		}
		var sumL, sumL2, sumXL float32
		for i, l := range &aux {
			wl := float32(w[i] * l)
			sumL += wl
			sumL2 += float32(wl * l)
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
		for i, l := range &aux {
			diff := float32(float32(thisScale*l)+thisMin) - x[i]
			mad += float32(w[i] * float32(diff*diff))
		}
		if mad < bestErr {
			for i, l := range &aux {
				L[i] = uint8(l)
			}
			bestErr = mad
			scale, lo = thisScale, thisMin
			// ggml's loop goes on from the new minimum.
			lv.setMin(x, lo)
			lastSum = -1
		}
	}
	return scale, -lo
}

// levelGrid holds a sub-block shifted by its current minimum, for levels.
type levelGrid struct {
	xm  [32]float32 // x - min, as ggml's loop computes it for each grid
	xm0 [32]float32 // the same with negative entries at 0
	// roundMagic and the top level, as variables: the compiler keeps
	// them in registers, where it reloads constants on every iteration.
	magic, top float32
}

func (g *levelGrid) setMin(x *[32]float32, lo float32) {
	g.magic, g.top = roundMagic, 15
	for i, v := range x {
		g.xm[i] = v - lo
		g.xm0[i] = max(g.xm[i], 0)
	}
}

// roundMagic is 1.5·2^23: a float32 v with |v| < 2^22 added to it lands
// in [2^23, 2^24), where float32 steps are 1, so the addition itself
// rounds v to an integer, half to even, and subtracting roundMagic back
// is exact. ggml's nearest_int uses the same trick.
const roundMagic = 0x1.8p23

// levels sets l[i] to max(0, min(15, nearestInt(iscale·xm[i]))), ggml's
// level of value i on the grid, as a float32, and returns their sum and
// whether it took the fast path. span is the largest xm (the sub-block's
// max - min). Where iscale > 0 and iscale·span < 2^22 (so for any grid of
// an ordinary sub-block) it rounds with roundMagic rather than nearestInt's
// trip through float64 and int; a negative xm then gives level 0 through
// xm0, as its negative product would through the clamp. Otherwise (NaN,
// ±Inf, huge scales, which only degenerate sub-blocks give) it calls
// nearestInt, whose int conversion of such values is the architecture's,
// so that these keep their bytes too.
func (g *levelGrid) levels(l *[32]float32, iscale, span float32) (sum float32, fast bool) {
	if iscale > 0 && float32(iscale*span) < 0x1p22 {
		magic, top := g.magic, g.top
		for i, v := range &g.xm0 {
			r := min(float32(float32(iscale*v)+magic)-magic, top)
			l[i] = r
			sum += r
		}
		return sum, true
	}
	for i, v := range &g.xm {
		l[i] = float32(max(0, min(15, nearestInt(float32(iscale*v)))))
	}
	return 0, false
}
