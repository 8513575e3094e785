package kernels

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/weights"
)

// Embedding describes out[t] = E[ids[t]] for the rows t of a step.
type Embedding struct {
	Out     *gpu.Buffer // [MaxRows, E.Cols] f32
	E       *Matrix     // [vocab, hidden]
	IDs     *gpu.Buffer // [MaxRows] u32
	Step    *gpu.Buffer
	MaxRows int
	Label   string
}

// embeddingParams mirrors Params in wgsl/embedding.wgsl.
type embeddingParams struct {
	Cols    uint32
	Row0    uint32 // first matrix row of this part
	Rows    uint32 // rows in this part
	BufRow0 uint32 // Row0's row inside the part's buffer
	Vocab   uint32 // rows of the whole matrix
	ZeroOOV uint32 // 1: write zeros for ids ≥ Vocab
	_       [2]uint32
}

// EmbeddingVars are wgsl/embedding.wgsl's template variables.
type EmbeddingVars struct {
	DType, ET string
	MaxRows   int
	Quant     bool
	Q         QuantFn
	QBS, QBW  int
}

// NewEmbedding prepares the gather, one op per part of the matrix. An id ≥
// E.Rows gives a row of zeros rather than reading out of bounds.
func NewEmbedding(s *gpu.Scope, a Embedding) ([]*gpu.Op, error) {
	d := s.Device()
	fail := func(err error) ([]*gpu.Op, error) {
		return nil, fmt.Errorf("embedding %s: %w", a.Label, err)
	}
	if err := a.E.check("embedding"); err != nil {
		return fail(err)
	}
	T := a.MaxRows
	if T <= 0 || T > int(d.Limits().MaxComputeWorkgroupsPerDimension) {
		return fail(fmt.Errorf("MaxRows = %d, want 1..%d", T, d.Limits().MaxComputeWorkgroupsPerDimension))
	}
	if err := need(d, "step", a.Step, StepBytes(T)); err != nil {
		return fail(err)
	}
	if err := need(d, "ids", a.IDs, uint64(T)*4); err != nil {
		return fail(err)
	}
	if err := need(d, "out", a.Out, uint64(T*a.E.Cols)*4); err != nil {
		return fail(err)
	}
	bound := []*gpu.Buffer{a.IDs, a.Out}
	for _, p := range a.E.Parts {
		bound = append(bound, p.Buf)
	}
	if err := noAlias([]*gpu.Buffer{a.Out}, bound...); err != nil {
		return fail(err)
	}
	x := uint32(ceilDiv(a.E.Cols, 256))
	var ops []*gpu.Op
	for i, p := range a.E.Parts {
		v := EmbeddingVars{DType: p.DType.String(), ET: "f32", MaxRows: T}
		if p.DType != weights.F32 {
			v.ET = "u32"
		}
		if p.DType.IsQuantized() {
			v.Quant, v.Q = true, QuantFn{Fmt: v.DType, Arr: "e"}
			v.QBS, v.QBW = quantShape(p.DType)
		}
		kern, err := d.Kernel("embedding", v)
		if err != nil {
			return fail(err)
		}
		params := embeddingParams{
			Cols: uint32(a.E.Cols), Row0: uint32(p.Row0), Rows: uint32(p.Rows),
			BufRow0: uint32(p.BufRow), Vocab: uint32(a.E.Rows),
		}
		if i == 0 {
			params.ZeroOOV = 1
		}
		o, err := s.Op(kern, gpu.Dispatch{
			Label:  fmt.Sprintf("%s[%d:%d]", a.Label, p.Row0, p.Row0+p.Rows),
			Role:   "embedding",
			Params: params,
			Bindings: []gpu.Binding{gpu.Bind(a.Step), gpu.Bind(p.Buf), {Buf: a.IDs, Size: uint64(T) * 4},
				{Buf: a.Out, Size: uint64(T*a.E.Cols) * 4}},
			Groups: gpu.Groups{X: x, Y: uint32(T), Z: 1},
			Size:   func(e gpu.Extent) gpu.Groups { return gpu.Groups{X: x, Y: uint32(e.Rows), Z: 1} },
		})
		if err != nil {
			return fail(err)
		}
		ops = append(ops, o)
	}
	return ops, nil
}
