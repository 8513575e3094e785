package qwen3

import (
	"context"

	"github.com/qwgpu/qwgpu/weights"
)

// CheckedSource hands out a source's tensors after checking that they hold
// no NaN or infinity, which would silently poison every activation: the
// error names the tensor and the element. The check runs as each tensor is
// loaded, on bytes about to be read anyway.
//
// Each tensor is first copied out of the checkpoint's memory map
// (weights.Tensor.Detach): a file truncated while it loads is then an
// error naming it, not a SIGBUS, and the GPU upload reads memory that
// cannot vanish. With ToF16 the values must also fit float16, or the
// conversion would make infinities after this check. Ctx, when set and
// done, stops the load at the next tensor.
type CheckedSource struct {
	Source
	ToF16 bool
	Ctx   context.Context
}

// Get returns the named tensor, copied and checked.
func (f *CheckedSource) Get(name string, shape ...int) (*weights.Tensor, error) {
	if f.Ctx != nil && f.Ctx.Err() != nil {
		return nil, f.Ctx.Err()
	}
	t, err := f.Source.Get(name, shape...)
	if err != nil {
		return nil, err
	}
	if t, err = t.Detach(); err != nil {
		return nil, err
	}
	if err := t.CheckFinite(); err != nil {
		return nil, err
	}
	if f.ToF16 {
		if err := t.CheckFitsF16(); err != nil {
			return nil, err
		}
	}
	return t, nil
}
