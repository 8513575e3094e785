package main

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/qwgpu/qwgpu/qwen3/serve"
)

// openServeBackend loads the model --model names for serving, with
// --parallel batch slots and at most maxQueue requests waiting, as run
// loads it (llm).
func openServeBackend(ctx context.Context, f *modelFlags, fs *pflag.FlagSet, parallel, maxQueue int) (serve.Backend, func(), error) {
	opt, ui, err := llmOptions(f, fs)
	if err != nil {
		return nil, nil, err
	}
	opt.Parallel, opt.MaxQueue = parallel, maxQueue
	m, err := openLLM(ctx, f, fs, opt, ui)
	if err != nil {
		return nil, nil, err
	}
	return m, func() { m.Close() }, nil
}
