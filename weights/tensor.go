package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
)

// Tensor is one tensor of a safetensors file.
type Tensor struct {
	Name  string
	File  string // path of the file holding it, as given to Open
	DType DType
	Shape []int
	// Raw holds the packed little-endian elements. For a tensor from a
	// File it aliases the file's memory: it is read-only (writing to it
	// crashes on Unix, where the mapping is read-only) and valid until the
	// File is closed. Copy it to keep it longer.
	Raw []byte
}

// Numel returns the number of elements, the product of the shape.
func (t *Tensor) Numel() int {
	n, _ := numel(t.Shape)
	return n
}

func (t *Tensor) errorf(format string, args ...any) error {
	return &Error{Path: t.File, Tensor: t.Name, Err: fmt.Errorf(format, args...)}
}

// checkRaw guards the conversions against a hand-built Tensor whose Raw
// does not match its shape; tensors from a File always pass.
func (t *Tensor) checkRaw() (int, error) {
	if t.DType.BlockBytes() == 0 {
		return 0, t.errorf("invalid dtype %v", t.DType)
	}
	want, ok := t.DType.DataBytes(t.Shape)
	if !ok || len(t.Raw) != want {
		return 0, t.errorf("%d bytes of data do not match %s %v", len(t.Raw), t.DType, t.Shape)
	}
	n, _ := numel(t.Shape)
	return n, nil
}

// parallelThreshold is the element count above which conversions are split
// across goroutines; below it the goroutine start-up outweighs the gain.
const parallelThreshold = 1 << 20

// parallelFor calls fn on consecutive ranges covering [0, n), concurrently
// on up to GOMAXPROCS goroutines when n is large. GOMAXPROCS rather than
// NumCPU so that a container's CPU limit is respected.
func parallelFor(n int, fn func(lo, hi int)) { parallelForCost(n, 1, fn) }

// parallelForCost is parallelFor over n items of cost elements each (the
// values of a quantized block, say), split by the elements they cover.
func parallelForCost(n, cost int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if n*cost <= parallelThreshold || workers < 2 {
		fn(0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Go(func() { fn(lo, hi) })
	}
	wg.Wait()
}

// Float32 converts a floating-point tensor (F32, F16, BF16 or F64) or a
// quantized one to a new float32 slice. F16 and BF16 convert exactly, the
// quantized types dequantize exactly as ggml defines them; F64 rounds to
// nearest.
func (t *Tensor) Float32() ([]float32, error) {
	n, err := t.checkRaw()
	if err != nil {
		return nil, err
	}
	if !t.DType.IsFloat() && !t.DType.IsQuantized() {
		return nil, t.errorf("dtype %v is not a float type", t.DType)
	}
	dst := make([]float32, n)
	if err := t.Float32Into(dst); err != nil {
		return nil, err
	}
	return dst, nil
}

// Float32Into is [Tensor.Float32] into a caller-provided slice, which must
// have exactly Numel elements. It lets a loader convert straight into a
// staging buffer without an intermediate allocation.
func (t *Tensor) Float32Into(dst []float32) error {
	n, err := t.checkRaw()
	if err != nil {
		return err
	}
	if len(dst) != n {
		return t.errorf("destination has %d elements, want %d", len(dst), n)
	}
	raw := t.Raw
	var convert func(lo, hi int)
	switch t.DType {
	case F32:
		convert = func(lo, hi int) {
			src := raw[4*lo : 4*hi]
			for i := range dst[lo:hi] {
				dst[lo+i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
			}
		}
	case BF16:
		convert = func(lo, hi int) {
			src := raw[2*lo : 2*hi]
			for i := range dst[lo:hi] {
				dst[lo+i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(src[2*i:])) << 16)
			}
		}
	case F16:
		convert = func(lo, hi int) {
			src := raw[2*lo : 2*hi]
			for i := range dst[lo:hi] {
				h := binary.LittleEndian.Uint16(src[2*i:])
				if e := h & 0x7c00; e != 0 && e != 0x7c00 {
					// Normal values, nearly all of any real tensor, only
					// need the exponent rebiased from 15 to 127; the
					// general function handles the rest.
					u := uint32(h&0x8000)<<16 | (uint32(h&0x7fff)<<13 + (127-15)<<23)
					dst[lo+i] = math.Float32frombits(u)
				} else {
					dst[lo+i] = F16ToFloat32(h)
				}
			}
		}
	case F64:
		convert = func(lo, hi int) {
			src := raw[8*lo : 8*hi]
			for i := range dst[lo:hi] {
				dst[lo+i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
			}
		}
	case Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K:
		// Split by blocks, which never straddle rows.
		bs, bb := t.DType.BlockSize(), t.DType.BlockBytes()
		parallelForCost(n/bs, bs, func(lo, hi int) {
			dequantBlocks(t.DType, raw[lo*bb:hi*bb], dst[lo*bs:hi*bs])
		})
		return nil
	default:
		return t.errorf("dtype %v is not a float type", t.DType)
	}
	parallelFor(n, convert)
	return nil
}

// Int32 converts an integer tensor to a new int32 slice. I32 is copied as
// is; the other integer types (I8, I16, I64, U8, U16, U32, U64) are accepted
// when every element fits in an int32.
func (t *Tensor) Int32() ([]int32, error) {
	n, err := t.checkRaw()
	if err != nil {
		return nil, err
	}
	raw := t.Raw
	dst := make([]int32, n)
	if t.DType == I32 {
		for i := range dst {
			dst[i] = int32(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return dst, nil
	}
	switch t.DType {
	case I8, U8, I16, U16, U32, I64, U64:
	default:
		return nil, t.errorf("dtype %v is not an integer type", t.DType)
	}
	tooBig := func(i int, v any) error { return t.errorf("element %d (%v) does not fit in int32", i, v) }
	for i := range dst {
		var v int64
		switch t.DType {
		case I8:
			v = int64(int8(raw[i]))
		case U8:
			v = int64(raw[i])
		case I16:
			v = int64(int16(binary.LittleEndian.Uint16(raw[2*i:])))
		case U16:
			v = int64(binary.LittleEndian.Uint16(raw[2*i:]))
		case U32:
			v = int64(binary.LittleEndian.Uint32(raw[4*i:]))
		case I64:
			v = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		case U64:
			u := binary.LittleEndian.Uint64(raw[8*i:])
			if u > math.MaxInt32 {
				return nil, tooBig(i, u)
			}
			v = int64(u)
		}
		if v < math.MinInt32 || v > math.MaxInt32 {
			return nil, tooBig(i, v)
		}
		dst[i] = int32(v)
	}
	return dst, nil
}

// CheckFinite returns an error naming the first NaN or infinite element of
// a float tensor, such as
//
//	weights: model.safetensors: tensor "x": NaN at element 17
//
// Integer and BOOL tensors are always finite. Loaders call it to catch a
// corrupt or badly converted checkpoint before it silently poisons every
// activation.
func (t *Tensor) CheckFinite() error {
	n, err := t.checkRaw()
	if err != nil {
		return err
	}
	if t.DType.IsQuantized() {
		return t.checkFiniteQuantized(n)
	}
	if !t.DType.IsFloat() {
		return nil
	}
	// Each range records its first bad element; the smallest wins, so the
	// report does not depend on goroutine scheduling.
	var mu sync.Mutex
	first := -1
	parallelFor(n, func(lo, hi int) {
		if i := firstNonFinite(t.DType, t.Raw, lo, hi); i >= 0 {
			mu.Lock()
			if first < 0 || i < first {
				first = i
			}
			mu.Unlock()
		}
	})
	if first < 0 {
		return nil
	}
	v := t.element(first)
	what := "NaN"
	switch {
	case math.IsInf(v, 1):
		what = "+Inf"
	case math.IsInf(v, -1):
		what = "-Inf"
	}
	return t.errorf("%s at element %d", what, first)
}

// firstNonFinite returns the index of the first NaN or infinity among
// elements [lo, hi) of raw, or -1. Every float format marks both with an
// all-ones exponent field, so only that field is tested. The loops are
// written out per type because an indirect call per element halves the
// scan speed.
func firstNonFinite(dtype DType, raw []byte, lo, hi int) int {
	switch dtype {
	case F32:
		for i := lo; i < hi; i++ {
			if binary.LittleEndian.Uint32(raw[4*i:])&0x7f800000 == 0x7f800000 {
				return i
			}
		}
	case BF16:
		for i := lo; i < hi; i++ {
			if binary.LittleEndian.Uint16(raw[2*i:])&0x7f80 == 0x7f80 {
				return i
			}
		}
	case F16:
		for i := lo; i < hi; i++ {
			if binary.LittleEndian.Uint16(raw[2*i:])&0x7c00 == 0x7c00 {
				return i
			}
		}
	case F64:
		for i := lo; i < hi; i++ {
			if binary.LittleEndian.Uint64(raw[8*i:])&0x7ff0000000000000 == 0x7ff0000000000000 {
				return i
			}
		}
	}
	return -1
}

// element returns float element i widened to float64; the tensor must have
// passed checkRaw and have a float dtype.
func (t *Tensor) element(i int) float64 {
	switch t.DType {
	case F32:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[4*i:])))
	case BF16:
		return float64(BF16ToFloat32(binary.LittleEndian.Uint16(t.Raw[2*i:])))
	case F16:
		return float64(F16ToFloat32(binary.LittleEndian.Uint16(t.Raw[2*i:])))
	case F64:
		return math.Float64frombits(binary.LittleEndian.Uint64(t.Raw[8*i:]))
	}
	return math.NaN() // unreachable for float tensors
}

// checkFiniteQuantized decodes the tensor and reports its first NaN or
// infinite value; a quantized value is only non-finite through a non-finite
// f16 scale, but decoding is the one check that cannot miss a field.
func (t *Tensor) checkFiniteQuantized(n int) error {
	vals := make([]float32, n)
	if err := t.Float32Into(vals); err != nil {
		return err
	}
	for i, v := range vals {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			what := "NaN"
			switch {
			case math.IsInf(f, 1):
				what = "+Inf"
			case math.IsInf(f, -1):
				what = "-Inf"
			}
			return t.errorf("%s at element %d", what, i)
		}
	}
	return nil
}
