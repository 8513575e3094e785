package qwen3

import (
	"github.com/qwgpu/qwgpu/weights"
)

// QuantizedSource quantizes the matrices of another source as they are
// read: every 2-D float tensor becomes DType, the norms (1-D) stay as they
// are, as llama.cpp's quantizer keeps them. A matrix whose rows are not
// whole Q4_K blocks of 256 falls back to Q4_0 (blocks of 32), as
// llama-quantize falls back to a 32-block type; one whose rows are not
// whole blocks of 32 either stays as it is.
type QuantizedSource struct {
	Source
	DType weights.DType
	// Progress, when set, is called after each matrix with the name
	// and the type it got (its own when it stays as it is).
	Progress func(name string, dtype weights.DType)
}

// Get returns the named tensor, quantized if it is a matrix.
func (q QuantizedSource) Get(name string, shape ...int) (*weights.Tensor, error) {
	t, err := q.Source.Get(name, shape...)
	if err != nil || len(t.Shape) != 2 || !t.DType.IsFloat() {
		return t, err
	}
	dt := q.DType
	if t.Shape[1]%dt.BlockSize() != 0 && dt == weights.Q4_K {
		dt = weights.Q4_0
	}
	if t.Shape[1]%dt.BlockSize() != 0 {
		if q.Progress != nil {
			q.Progress(name, t.DType)
		}
		return t, nil
	}
	qt, err := weights.QuantizeTensor(t, dt, nil)
	if err != nil {
		return nil, err
	}
	if q.Progress != nil {
		q.Progress(name, dt)
	}
	return qt, nil
}
