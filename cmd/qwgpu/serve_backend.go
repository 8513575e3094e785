package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/qwgpu/qwgpu/qwen3/llm"
	"github.com/qwgpu/qwgpu/qwen3/serve"
)

// openServeBackend loads the model --model names for serving, with
// --parallel batch slots and at most maxQueue requests waiting. ctxSet tells whether --ctx was given: without
// it llm bounds its default by the model.
func openServeBackend(ctx context.Context, f *modelFlags, parallel, maxQueue int, ctxSet bool) (serve.Backend, func(), error) {
	opt := llm.Options{Backend: f.backend, Adapter: f.adapter, DType: f.dtype, Parallel: parallel, MaxQueue: maxQueue}
	if ctxSet {
		opt.Ctx = f.ctx
	}
	bar := newProgress("loading " + f.model)
	opt.Progress = bar.update
	m, err := llm.Open(ctx, f.model, opt)
	bar.done()
	if err != nil {
		// Name the flag that set an engine option.
		if msg := err.Error(); strings.Contains(msg, "context of") && ctxSet {
			return nil, nil, fmt.Errorf("--ctx %d: %w", f.ctx, err)
		}
		return nil, nil, err
	}
	return m, func() { m.Close() }, nil
}
