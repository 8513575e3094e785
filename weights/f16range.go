package weights

import (
	"math"
	"sync"
)

// F16Max is the largest finite float16; values from 65520 up round to
// infinity when converted.
const F16Max = 65504

// CheckFitsF16 reports the first element whose conversion to float16
// would overflow to an infinity: a checkpoint finite in bf16 or f32 can
// still hold values above 65504, and storing it as f16 (qwgpu --dtype
// f16) would hand the GPU infinities that the finite check on the source
// never saw. F16 and integer tensors always fit.
func (t *Tensor) CheckFitsF16() error {
	n, err := t.checkRaw()
	if err != nil {
		return err
	}
	if t.DType == F16 || !t.DType.IsFloat() {
		return nil
	}
	var mu sync.Mutex
	first := -1
	parallelFor(n, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if v := t.element(i); math.Abs(v) >= 65520 {
				mu.Lock()
				if first < 0 || i < first {
					first = i
				}
				mu.Unlock()
				return
			}
		}
	})
	if first < 0 {
		return nil
	}
	return t.errorf("element %d is %g, beyond float16's range (±%d): --dtype f16 would turn it into infinity; use bf16 or f32",
		first, t.element(first), F16Max)
}
