package kernels

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
)

// RMSNorm describes out[r] = x[r] / sqrt(mean(x[r]²) + Eps) · W for the rows
// r of a step (Qwen3RMSNorm), all float32.
type RMSNorm struct {
	Out, X  *gpu.Buffer // [MaxRows, Cols]
	W       *gpu.Buffer // [Cols]
	Cols    int
	Eps     float32
	Step    *gpu.Buffer // the step uniform: step.rows rows are normalised
	MaxRows int
	// Last normalises only the step's last row, into row 0 of Out.
	Last  bool
	Label string
	Role  string
}

// rmsnormParams mirrors Params in wgsl/rmsnorm.wgsl.
type rmsnormParams struct {
	N   uint32
	NV  uint32 // n / VEC
	Eps float32
	_   uint32
}

// RMSNormVars are wgsl/rmsnorm.wgsl's template variables.
type RMSNormVars struct {
	WG, Vec, K int
	T          string
	Cache      bool
	Last       bool
	MaxRows    int
}

// rmsnormMaxK is the most values of T one thread keeps in registers; longer
// rows are read twice instead.
const rmsnormMaxK = 8

// NewRMSNorm prepares the norm. Out may not alias X.
func NewRMSNorm(s *gpu.Scope, a RMSNorm) (*gpu.Op, error) {
	d := s.Device()
	fail := func(err error) (*gpu.Op, error) {
		return nil, fmt.Errorf("rmsnorm %s: %w", a.Label, err)
	}
	n := a.Cols
	if a.MaxRows <= 0 || n <= 0 {
		return fail(fmt.Errorf("shape [%d, %d]", a.MaxRows, n))
	}
	outRows := a.MaxRows
	if a.Last {
		outRows = 1
	}
	for _, c := range []struct {
		what string
		b    *gpu.Buffer
		size uint64
	}{{"step", a.Step, StepBytes(a.MaxRows)}, {"x", a.X, uint64(a.MaxRows*n) * 4}, {"w", a.W, uint64(n) * 4}, {"out", a.Out, uint64(outRows*n) * 4}} {
		if err := need(d, c.what, c.b, c.size); err != nil {
			return fail(err)
		}
	}
	if err := noAlias([]*gpu.Buffer{a.Out}, a.X, a.W, a.Out); err != nil {
		return fail(err)
	}
	vec := 1
	if n%4 == 0 {
		vec = 4
	}
	nv := n / vec
	// One thread per value of T up to 256 threads; tiny rows still get a
	// full 32-wide group so the reduction tree stays a power of two.
	wg := min(256, max(32, nextPow2(nv)))
	if tune.rmsnormWG > 0 {
		wg = tune.rmsnormWG
	}
	k := ceilDiv(nv, wg)
	v := RMSNormVars{WG: wg, Vec: vec, T: "f32", K: k, Cache: k <= rmsnormMaxK, Last: a.Last, MaxRows: a.MaxRows}
	if vec == 4 {
		v.T = "vec4<f32>"
	}
	if !v.Cache {
		v.K = 0
	}
	kern, err := d.Kernel("rmsnorm", v)
	if err != nil {
		return fail(err)
	}
	groups := gpu.Groups1D(a.MaxRows)
	size := func(e gpu.Extent) gpu.Groups { return gpu.Groups1D(e.Rows) }
	if a.Last {
		groups, size = gpu.Groups{X: 1, Y: 1, Z: 1}, nil
	}
	return s.Op(kern, gpu.Dispatch{
		Label:  a.Label,
		Role:   a.Role,
		Params: rmsnormParams{N: uint32(n), NV: uint32(nv), Eps: a.Eps},
		Bindings: []gpu.Binding{gpu.Bind(a.Step), {Buf: a.X, Size: uint64(a.MaxRows*n) * 4},
			{Buf: a.W, Size: uint64(n) * 4}, {Buf: a.Out, Size: uint64(outRows*n) * 4}},
		Groups: groups,
		Size:   size,
	})
}
