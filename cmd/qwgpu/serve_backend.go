package main

import (
	"context"
	"errors"

	"github.com/qwgpu/qwgpu/qwen3/serve"
)

// openServeBackend loads the model --model names for serving, with
// --parallel batch slots.
//
// TODO(merge): package qwen3/llm is written on another branch; when it
// lands this body becomes
//
//	m, err := llm.Open(ctx, f.model, llm.Options{Backend: f.backend, Adapter: f.adapter,
//		Ctx: f.ctx, DType: f.dtype, Parallel: parallel, Progress: bar.update})
//	if err != nil {
//		return nil, nil, err
//	}
//	return m, func() { m.Close() }, nil
//
// (with a newProgress bar; Ctx 0 when --ctx was not given, so llm bounds
// its default by the model; llm's "Options.Ctx"/"Options.DType" errors
// renamed to --ctx/--dtype as loadEngine does).
func openServeBackend(ctx context.Context, f *modelFlags, parallel int) (serve.Backend, func(), error) {
	return nil, nil, errors.New("llm package not merged")
}
