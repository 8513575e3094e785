package gpu

import (
	"encoding/binary"
	"math"
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
//
// The runtime tests use inline WGSL (Device.KernelSource) so that they do
// not depend on gpu/kernels; the kernels are tested there.

// requireGPU reports whether a missing adapter must fail the tests.
func requireGPU() bool { return os.Getenv("QWGPU_REQUIRE_GPU") == "1" }

// primaryBackend is the backend of the main test pass.
func primaryBackend() string {
	if b := os.Getenv("QWGPU_TEST_BACKEND"); b != "" {
		return strings.ToLower(b)
	}
	return "vulkan"
}

// testBackends lists the backends each runtime test runs on: the primary
// one and, unless disabled, GL.
func testBackends() []string {
	bs := []string{primaryBackend()}
	if bs[0] != "gl" && os.Getenv("QWGPU_TEST_GL") != "0" {
		bs = append(bs, "gl")
	}
	return bs
}

// Devices are opened once per backend and shared by all tests: opening one
// per test would dominate the run time on lavapipe. TestMain closes them.
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

// openOwnDevice opens a device of its own on backend ("" for the primary
// backend), for tests that close it or need a second one; the test closes
// it at cleanup (closing twice is harmless).
func openOwnDevice(t testing.TB, backend string, opt Options) *Device {
	t.Helper()
	openTestDevice(t, backend) // skips or fails when the backend is missing
	if backend == "" {
		backend = primaryBackend()
	}
	opt.Backend = backend
	d, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
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

// forEachBackend runs fn as a subtest on every test backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, d *Device)) {
	for _, be := range testBackends() {
		t.Run(be, func(t *testing.T) {
			fn(t, openTestDevice(t, be))
		})
	}
}

// newScope starts a scope that the test releases at cleanup.
func newScope(t testing.TB, d *Device) *Scope {
	t.Helper()
	s := d.NewScope(t.Name())
	t.Cleanup(s.Release)
	return s
}

// f32Bytes encodes float32 values little-endian.
func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// u32Bytes encodes uint32 values little-endian.
func u32Bytes(v ...uint32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
	return b
}

// upload creates a storage buffer in s holding data; the test fails on error.
func upload(t testing.TB, s *Scope, label string, data []float32) *Buffer {
	t.Helper()
	return must[*Buffer](t)(s.Upload(label, f32Bytes(data)))
}

func nanF32(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return v
}

// poisoned creates a buffer of n float32 NaNs, so that any element a kernel
// fails to write shows up in the comparison.
func poisoned(t testing.TB, s *Scope, label string, n int) *Buffer {
	t.Helper()
	return upload(t, s, label, nanF32(n))
}

// kernel compiles inline WGSL; the test fails on error.
func kernel(t testing.TB, d *Device, key, code string) *Kernel {
	t.Helper()
	return must[*Kernel](t)(d.KernelSource(key, code))
}

// op prepares a dispatch in s; the test fails on error.
func op(t testing.TB, s *Scope, k *Kernel, spec Dispatch) *Op {
	t.Helper()
	return must[*Op](t)(s.Op(k, spec))
}

// run submits ops as one step of extent e and waits; the test fails on
// error.
func run(t testing.TB, d *Device, e Extent, ops ...*Op) {
	t.Helper()
	r := d.NewRecorder(e)
	r.Run(ops...)
	if err := r.Submit(); err != nil {
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

// checkEqual fails the test unless got equals want exactly (NaN matches
// NaN): the runtime tests only move and add small integers.
func checkEqual(t testing.TB, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g != w && !(math.IsNaN(float64(g)) && math.IsNaN(float64(w))) {
			t.Fatalf("%s: index %d: got %v, want %v (got %v)", what, i, g, w, got)
		}
	}
}

// wantErr fails the test unless err is non-nil and mentions want.
func wantErr(t testing.TB, what string, err error, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error, want one mentioning %q", what, want)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q does not mention %q", what, err, want)
	default:
		t.Logf("%s: %v", what, err)
	}
}

// Shaders shared by the runtime tests.
const (
	// addWGSL: c = a + b over n floats, 64 per workgroup.
	addWGSL = `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    if (g.x < p.n) { c[g.x] = a[g.x] + b[g.x]; }
}`
	// accWGSL: acc += x over n floats, 64 per workgroup.
	accWGSL = `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    if (g.x < p.n) { acc[g.x] = acc[g.x] + x[g.x]; }
}`
	// markWGSL: out[workgroup id] = 1 + out[workgroup id], no params: the
	// number of times each workgroup ran.
	markWGSL = `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wid: vec3<u32>) {
    out[wid.x] = out[wid.x] + 1.0;
}`
)

// n4 is a params struct of one count, padded to 16 bytes.
type n4 struct{ N, _, _, _ uint32 }
