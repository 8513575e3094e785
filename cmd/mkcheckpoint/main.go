// Command mkcheckpoint writes a Qwen3 model directory in the Hugging Face
// layout (config.json, model.safetensors or shards, tokenizer.json,
// generation_config.json) with seeded random weights of a published shape
// and the real Qwen3 tokenizer. The text such a model writes is
// meaningless; the files are what `qwgpu run --model DIR` reads from a
// downloaded checkpoint, so the whole loading path can be tried anywhere.
//
//	go run ./cmd/mkcheckpoint --shape 0.6B --out /tmp/qwen3-0.6b-random
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
)

func main() {
	err := run(os.Args[1:])
	if errors.Is(err, pflag.ErrHelp) {
		return // --help printed the flags: a request met, not an error
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkcheckpoint: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := pflag.NewFlagSet("mkcheckpoint", pflag.ContinueOnError)
	shape := fs.String("shape", "tiny", "model shape: "+strings.Join(qwen3.ShapeNames(), ", "))
	dtype := fs.String("dtype", "bf16", "tensor dtype: bf16, f16 or f32")
	seed := fs.Uint64("seed", 1, "random seed")
	shards := fs.Int("shards", 1, "number of safetensors files (more than 1 writes an index)")
	out := fs.String("out", "", "directory to write (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	cfg, ok := qwen3.Shapes[*shape]
	if !ok {
		return fmt.Errorf("--shape %q: want one of %s", *shape, strings.Join(qwen3.ShapeNames(), ", "))
	}
	dt, torch := weights.BF16, "bfloat16"
	switch *dtype {
	case "bf16":
	case "f16":
		dt, torch = weights.F16, "float16"
	case "f32":
		dt, torch = weights.F32, "float32"
	default:
		return fmt.Errorf("--dtype %q: want bf16, f16 or f32", *dtype)
	}
	tok, err := tokenizer.Qwen3JSON()
	if err != nil {
		return err
	}
	err = qwen3.WriteCheckpoint(*out, qwen3.CheckpointFiles{Config: cfg, Shards: *shards, Tokenizer: tok, TorchType: torch,
		Source: &qwen3.RandomSource{Config: cfg, DType: dt, Seed: *seed}})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "mkcheckpoint: wrote %s (Qwen3 %s shape, %s, random weights)\n", *out, *shape, *dtype)
	return nil
}
