package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/qwgpu/qwgpu/qwen3/llm"
	"github.com/qwgpu/qwgpu/qwen3/serve"
)

// openServeBackend loads the model --model names for serving, with
// --parallel batch slots. ctxSet tells whether --ctx was given: without
// it llm bounds its default by the model.
func openServeBackend(ctx context.Context, f *modelFlags, parallel int, ctxSet bool) (serve.Backend, func(), error) {
	opt := llm.Options{Backend: f.backend, Adapter: f.adapter, DType: f.dtype, KVDType: f.kvDType, Parallel: parallel}
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
		if msg := err.Error(); strings.HasPrefix(msg, "Options.KVDType") {
			return nil, nil, fmt.Errorf("--kv-dtype %s: %s", f.kvDType, strings.TrimPrefix(msg, fmt.Sprintf("Options.KVDType %q: ", f.kvDType)))
		}
		return nil, nil, err
	}
	return m, func() { m.Close() }, nil
}
