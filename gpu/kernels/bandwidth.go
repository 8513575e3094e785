package kernels

import (
	"fmt"
	"time"

	"github.com/qwgpu/qwgpu/gpu"
)

// copyParams mirrors Params in wgsl/copy.wgsl.
type copyParams struct {
	N uint32
	_ [3]uint32
}

// CopyVars are wgsl/copy.wgsl's template variables: Sum for the read-only
// variant.
type CopyVars struct{ Sum bool }

// newCopy prepares y = x over n vec4<f32> elements.
func newCopy(s *gpu.Scope, x, y *gpu.Buffer, n int) (*gpu.Op, error) {
	k, err := s.Device().Kernel("copy", CopyVars{})
	if err != nil {
		return nil, err
	}
	return s.Op(k, gpu.Dispatch{Label: "copy", Params: copyParams{N: uint32(n)},
		Bindings: []gpu.Binding{gpu.Bind(x), gpu.Bind(y)}, Groups: gpu.Groups1D(ceilDiv(n, 256))})
}

// readSumGroups is the grid of the read-only kernel: 2,048 workgroups of
// 256 threads (16 per SM of a 132-SM GPU), each thread summing n / 524,288
// vec4s (32 of a 256 MiB buffer) and writing one: readSumOut bytes.
const (
	readSumGroups = 2048
	readSumOut    = readSumGroups * 256 * 16
)

// newReadSum prepares y[t] = Σ x[t + k·threads] over n vec4<f32> elements.
func newReadSum(s *gpu.Scope, x, y *gpu.Buffer, n int) (*gpu.Op, error) {
	k, err := s.Device().Kernel("copy", CopyVars{Sum: true})
	if err != nil {
		return nil, err
	}
	return s.Op(k, gpu.Dispatch{Label: "readsum", Params: copyParams{N: uint32(n)},
		Bindings: []gpu.Binding{gpu.Bind(x), {Buf: y, Size: readSumOut}}, Groups: gpu.Groups1D(readSumGroups)})
}

// Bandwidth measures the device's memory bandwidth two ways. copyBW: a
// vec4 copy kernel, counting bytes read plus bytes written, the way the
// anchors in docs/PERFORMANCE.md count. readBW: a kernel that sums the same
// buffer, counting the bytes it reads and the 8 MiB of sums it writes.
// Many runs go into one pass and the time of a short batch is subtracted
// from a long one, which cancels the submit round trip. It needs two
// buffers of up to 256 MiB; on a CPU adapter (lavapipe), whose figures
// say nothing about a GPU, 16 MiB, so that a profile there (the tests')
// takes a second instead of half a minute.
func Bandwidth(d *gpu.Device) (copyBW, readBW float64, err error) {
	s := d.NewScope("bandwidth")
	defer s.Release()
	most := uint64(256 << 20)
	if d.Info().Type == "cpu" {
		most = 16 << 20
	}
	size := min(most, d.Limits().MaxStorageBufferBindingSize, d.Limits().MaxBufferSize) &^ 15
	n := int(size / 16)
	x, err := s.Buffer("bandwidth.x", size)
	if err != nil {
		return 0, 0, err
	}
	y, err := s.Buffer("bandwidth.y", size)
	if err != nil {
		return 0, 0, err
	}
	cp, err := newCopy(s, x, y, n)
	if err != nil {
		return 0, 0, err
	}
	if copyBW, err = timeBytes(d, cp, 2*float64(size)); err != nil {
		return 0, 0, fmt.Errorf("copy bandwidth: %w", err)
	}
	rs, err := newReadSum(s, x, y, n)
	if err != nil {
		return 0, 0, err
	}
	if readBW, err = timeBytes(d, rs, float64(size+readSumOut)); err != nil {
		return 0, 0, fmt.Errorf("read bandwidth: %w", err)
	}
	return copyBW, readBW, nil
}

// timeBytes returns bytes per second for op moving bytes a run.
func timeBytes(d *gpu.Device, op *gpu.Op, bytes float64) (float64, error) {
	per, err := timePerRun(d, []*gpu.Op{op}, 5, 25)
	if err != nil {
		return 0, err
	}
	return bytes / per.Seconds(), nil
}

// timePerRun returns the time of one run of ops (run in turn, one pass)
// as the best of three differences between long and short runs in one
// pass, divided by long − short, after a warm-up: the difference cancels
// the submit and wait.
func timePerRun(d *gpu.Device, ops []*gpu.Op, short, long int) (time.Duration, error) {
	batch := func(n int) (time.Duration, error) {
		r := d.NewRecorder(gpu.Extent{})
		for i := range n {
			r.Run(ops[i%len(ops)])
		}
		start := time.Now()
		err := r.Submit()
		return time.Since(start), err
	}
	if _, err := batch(short); err != nil {
		return 0, err
	}
	best := time.Duration(0)
	for range 3 {
		ts, err := batch(short)
		if err != nil {
			return 0, err
		}
		tl, err := batch(long)
		if err != nil {
			return 0, err
		}
		if per := (tl - ts) / time.Duration(long-short); per > 0 && (best == 0 || per < best) {
			best = per
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("no positive timing")
	}
	return best, nil
}

// DispatchFloor measures what one dispatch costs inside a compute pass when
// it does almost nothing but depends on the one before: a 16-byte copy
// back and forth between two buffers (so every dispatch waits for the last,
// as a decode step's kernels do). The difference between 250 and 50 such
// dispatches in one pass, over 200; the best of three.
func DispatchFloor(d *gpu.Device) (time.Duration, error) {
	s := d.NewScope("dispatch floor")
	defer s.Release()
	a, err := s.Buffer("floor.a", 16)
	if err != nil {
		return 0, err
	}
	b, err := s.Buffer("floor.b", 16)
	if err != nil {
		return 0, err
	}
	ab, err := newCopy(s, a, b, 1)
	if err != nil {
		return 0, err
	}
	ba, err := newCopy(s, b, a, 1)
	if err != nil {
		return 0, err
	}
	floor, err := timePerRun(d, []*gpu.Op{ab, ba}, 50, 250)
	if err != nil {
		return 0, fmt.Errorf("dispatch floor: %w", err)
	}
	return floor, nil
}
