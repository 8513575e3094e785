package gpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
)

// Test environment:
//
//	QWGPU_TEST_BACKEND  backend of the main test pass (default "vulkan").
//	QWGPU_TEST_GL=0     skip the second pass on the "gl" backend.
//	QWGPU_REQUIRE_GPU=1 a missing adapter fails the tests instead of
//	                    skipping them (CI sets it: lavapipe and llvmpipe
//	                    GL are installed there).

// requireGPU reports whether a missing adapter must fail the tests.
func requireGPU() bool { return os.Getenv("QWGPU_REQUIRE_GPU") == "1" }

// primaryBackend is the backend of the main test pass.
func primaryBackend() string {
	if b := os.Getenv("QWGPU_TEST_BACKEND"); b != "" {
		return strings.ToLower(b)
	}
	return "vulkan"
}

// testBackends lists the backends each kernel test runs on: the primary one
// and, unless disabled, GL.
func testBackends() []string {
	bs := []string{primaryBackend()}
	if bs[0] != "gl" && os.Getenv("QWGPU_TEST_GL") != "0" {
		bs = append(bs, "gl")
	}
	return bs
}

// Devices are opened once per backend and shared by all tests: opening one
// and recompiling every pipeline per test would dominate the run time on
// lavapipe. TestMain closes them.
var (
	devMu   sync.Mutex
	devs    = map[string]*Device{}
	devErrs = map[string]error{}
)

// openTestDevice returns the shared device for backend ("" for the primary
// backend): any adapter, lavapipe or llvmpipe in CI. Without one the test is
// skipped, or fails under QWGPU_REQUIRE_GPU=1.
func openTestDevice(t testing.TB, backend string) *Device {
	t.Helper()
	if backend == "" {
		backend = primaryBackend()
	}
	devMu.Lock()
	d, err := devs[backend], devErrs[backend]
	if d == nil && err == nil {
		d, err = Open(Options{Backend: backend})
		devs[backend], devErrs[backend] = d, err
	}
	devMu.Unlock()
	if err != nil {
		if requireGPU() {
			t.Fatalf("QWGPU_REQUIRE_GPU=1 but no %s device: %v", backend, err)
		}
		t.Skipf("no %s device (set QWGPU_REQUIRE_GPU=1 to fail instead): %v", backend, err)
	}
	return d
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, d := range devs {
		if d != nil {
			d.Close()
		}
	}
	os.Exit(code)
}

// glUnsupported names the kernels that wgpu 0.17's GL backend cannot run
// and why; their tests log the reason and skip on "gl". Every kernel of this
// package runs there today (llvmpipe through EGL). What GL does cost is
// compile time: naga zero-fills each var<workgroup> with one array
// constructor, and Mesa's GLSL compiler takes seconds on long ones, so
// shaders keep workgroup arrays short (see wgsl/matmul.wgsl).
var glUnsupported = map[string]string{}

// forEachBackend runs fn as a subtest on every test backend.
func forEachBackend(t *testing.T, kernel string, fn func(t *testing.T, d *Device)) {
	for _, be := range testBackends() {
		t.Run(be, func(t *testing.T) {
			if why, ok := glUnsupported[kernel]; ok && be == "gl" {
				t.Logf("%s does not run on wgpu's GL backend: %s", kernel, why)
				t.Skip("listed in glUnsupported")
			}
			fn(t, openTestDevice(t, be))
		})
	}
}

// newRand returns a generator seeded from the test name, so every test has
// its own reproducible inputs.
func newRand(t testing.TB) *rand.Rand {
	var h uint64 = 14695981039346656037
	for _, c := range []byte(t.Name()) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return rand.New(rand.NewPCG(h, 0x9e3779b97f4a7c15))
}

// randF32 returns n values uniform in [-scale, scale).
func randF32(r *rand.Rand, n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (2*r.Float32() - 1) * scale
	}
	return v
}

// roundTo rounds v to what dt can hold, so that CPU references use exactly
// the weights the GPU sees.
func roundTo(dt DType, v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		switch dt {
		case BF16:
			out[i] = BF16Value(BF16Bits(x))
		case F16:
			out[i] = F16Value(F16Bits(x))
		default:
			out[i] = x
		}
	}
	return out
}

func nanF32(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return v
}

// upload creates a buffer holding data; the test fails on error.
func upload(t testing.TB, d *Device, label string, data []float32) *Buffer {
	t.Helper()
	b, err := d.UploadF32(label, data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Release)
	return b
}

// poisoned creates a buffer of n float32 NaNs, so that any element a kernel
// fails to write shows up in the comparison.
func poisoned(t testing.TB, d *Device, label string, n int) *Buffer {
	t.Helper()
	return upload(t, d, label, nanF32(n))
}

// uploadMatrix uploads data as a [rows, cols] matrix of dt.
func uploadMatrix(t testing.TB, d *Device, label string, dt DType, rows, cols int, data []float32) *Matrix {
	t.Helper()
	m, err := d.UploadMatrixF32(label, dt, rows, cols, data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Release)
	return m
}

// run submits ops as one step; the test fails on error.
func run(t testing.TB, d *Device, ops ...*Op) {
	t.Helper()
	t.Cleanup(func() { ReleaseOps(ops) })
	if err := d.Submit(ops...); err != nil {
		t.Fatal(err)
	}
}

// must fails the test on a non-nil error and returns v.
func must[V any](t testing.TB) func(v V, err error) V {
	return func(v V, err error) V {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func readF32(t testing.TB, d *Device, b *Buffer, n int) []float32 {
	t.Helper()
	v, err := d.ReadF32(b, 0, n)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func shape(dims ...int) string {
	s := make([]string, len(dims))
	for i, v := range dims {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, "x")
}
