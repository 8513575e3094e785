package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/weights"
)

// Test environment:
//
//	QWGPU_TEST_BACKEND  backend of the main pass (default "vulkan").
//	QWGPU_TEST_GL=0     skip the second pass on the "gl" backend.
//	QWGPU_REQUIRE_GPU=1 a missing adapter fails the tests instead of
//	                    skipping them (CI sets it: lavapipe and llvmpipe
//	                    GL are installed there).

func requireGPU() bool { return os.Getenv("QWGPU_REQUIRE_GPU") == "1" }

// testBackends lists the backends every kernel test runs on.
func testBackends() []string {
	primary := strings.ToLower(os.Getenv("QWGPU_TEST_BACKEND"))
	if primary == "" {
		primary = "vulkan"
	}
	bs := []string{primary}
	if primary != "gl" && os.Getenv("QWGPU_TEST_GL") != "0" {
		bs = append(bs, "gl")
	}
	return bs
}

// Devices are opened once per backend and shared: reopening one and
// recompiling every pipeline per test would dominate the run time on
// lavapipe. TestMain closes them.
var (
	devMu   sync.Mutex
	devs    = map[string]*gpu.Device{}
	devErrs = map[string]error{}
)

func openTestDevice(t testing.TB, backend string) *gpu.Device {
	t.Helper()
	devMu.Lock()
	d, err := devs[backend], devErrs[backend]
	if d == nil && err == nil {
		d, err = gpu.Open(gpu.Options{Backend: backend})
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

// forEachBackend runs fn as a subtest on every test backend, with a scope
// released when the subtest ends.
func forEachBackend(t *testing.T, fn func(t *testing.T, s *gpu.Scope)) {
	for _, be := range testBackends() {
		t.Run(be, func(t *testing.T) {
			d := openTestDevice(t, be)
			s := d.NewScope(t.Name())
			t.Cleanup(s.Release)
			fn(t, s)
		})
	}
}

// newRand returns a generator seeded from the test name.
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

// roundTo rounds v to what dt holds, so that the float64 references use
// exactly the weights the GPU reads.
func roundTo(dt weights.DType, v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		switch dt {
		case weights.BF16:
			out[i] = weights.BF16ToFloat32(weights.Float32ToBF16(x))
		case weights.F16:
			out[i] = weights.F16ToFloat32(weights.Float32ToF16(x))
		default:
			out[i] = x
		}
	}
	return out
}

func must[V any](t testing.TB) func(v V, err error) V {
	return func(v V, err error) V {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func upload(t testing.TB, s *gpu.Scope, label string, data []float32) *gpu.Buffer {
	t.Helper()
	return must[*gpu.Buffer](t)(s.Upload(label, weights.F32Bytes(data)))
}

// poisoned is a buffer of n float32 NaNs, so that any element a kernel
// fails to write shows up in the comparison.
func poisoned(t testing.TB, s *gpu.Scope, label string, n int) *gpu.Buffer {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return upload(t, s, label, v)
}

// stepBuffer is a step uniform for up to maxRows rows holding rows.
func stepBuffer(t testing.TB, s *gpu.Scope, maxRows int, rows []StepRow) *gpu.Buffer {
	t.Helper()
	b := must[*gpu.Buffer](t)(s.Uniform("step", StepBytes(maxRows)))
	setStep(t, s, b, rows)
	return b
}

func setStep(t testing.TB, s *gpu.Scope, b *gpu.Buffer, rows []StepRow) {
	t.Helper()
	if err := s.Device().Write(b, 0, must[[]byte](t)(EncodeStep(rows))); err != nil {
		t.Fatal(err)
	}
}

// seqRows are the rows of a prefill: t tokens of slot from pos0.
func seqRows(slot, pos0, t int) []StepRow {
	rows := make([]StepRow, t)
	for i := range rows {
		rows[i] = StepRow{Slot: slot, Pos: pos0 + i}
	}
	return rows
}

// runStep records ops as one step of rows and waits for it.
func runStep(t testing.TB, d *gpu.Device, rows []StepRow, ops ...*gpu.Op) {
	t.Helper()
	r := d.NewRecorder(gpu.Extent{Rows: len(rows), Keys: Keys(rows)})
	r.Run(ops...)
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
}

func readF32(t testing.TB, d *gpu.Device, b *gpu.Buffer, n int) []float32 {
	t.Helper()
	return must[[]float32](t)(d.ReadF32(b, 0, n))
}

// nmse is the normalised mean squared error Σ(got−want)² / Σwant² of got
// against a float64 reference; NaN when got holds a NaN or an infinity
// (outputs start as NaN, so an unwritten element counts too).
func nmse(got []float32, want []float64) float64 {
	var num, den float64
	for i, w := range want {
		g := float64(got[i])
		if math.IsNaN(g) || math.IsInf(g, 0) {
			return math.NaN()
		}
		num += (g - w) * (g - w)
		den += w * w
	}
	if den == 0 {
		return num
	}
	return num / den
}

// nmseBound is each kernel's bound on nmse against its float64 reference.
// Every kernel computes in float32, whose rounding (2⁻²⁴ ≈ 6e-8 relative
// per operation) over sums of a few thousand terms gives an NMSE near
// 1e-13; 1e-8 leaves room for unlucky cancellation and flags any real
// error (a wrong index, a missing term) by orders of magnitude.
var nmseBound = map[string]float64{
	"rmsnorm":       1e-8,
	"matvec":        1e-8,
	"matmul":        1e-8,
	"qkv_norm_rope": 1e-8,
	"attention":     1e-8,
	// One rounding of each value to the cache's 16-bit type: relative
	// error at most 2⁻¹¹ for f16 (2⁻¹⁰ if the device truncates) and 2⁻⁸
	// for bf16, so an NMSE below 1e-6 and 2e-5; a wrong index or an
	// unwritten word is far above.
	"kv f16":  1e-6,
	"kv bf16": 2e-5,
}

func checkNMSE(t testing.TB, op string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", op, len(got), len(want))
	}
	bound, ok := nmseBound[op]
	if !ok {
		t.Fatalf("no NMSE bound for %s", op)
	}
	e := nmse(got, want)
	if !(e <= bound) {
		for i, w := range want {
			if g := float64(got[i]); math.IsNaN(g) || math.Abs(g-w) > 1e-3*math.Abs(w)+1e-6 {
				t.Errorf("first bad value: index %d: got %v, want %v", i, got[i], w)
				break
			}
		}
		t.Fatalf("%s: NMSE %.3g against the float64 reference, bound %.0g", op, e, bound)
	}
	t.Logf("%s: NMSE %.3g (bound %.0g)", op, e, bound)
}

func name(parts ...any) string {
	s := make([]string, len(parts))
	for i, p := range parts {
		s[i] = fmt.Sprint(p)
	}
	return strings.Join(s, "/")
}

// Float64 references: the definitions, written independently of the
// kernels, in float64 from float32 inputs.

func rmsnorm64(x, w []float32, cols int, eps float64) []float64 {
	out := make([]float64, len(x))
	for r := 0; r < len(x)/cols; r++ {
		row := x[r*cols : (r+1)*cols]
		ss := 0.0
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		scale := 1 / math.Sqrt(ss/float64(cols)+eps)
		for i, v := range row {
			out[r*cols+i] = float64(v) * scale * float64(w[i])
		}
	}
	return out
}

// linear64 returns x·Wᵀ for x [T, cols] and w [rows, cols].
func linear64(x []float64, w []float32, T, rows, cols int) []float64 {
	out := make([]float64, T*rows)
	for t := 0; t < T; t++ {
		for r := 0; r < rows; r++ {
			s := 0.0
			for c := 0; c < cols; c++ {
				s += x[t*cols+c] * float64(w[r*cols+c])
			}
			out[t*rows+r] = s
		}
	}
	return out
}

func widen(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

func silu64(x float64) float64 { return x / (1 + math.Exp(-x)) }

// randBlocks returns n random valid blocks of the block type dt, in the
// file's layout: random quant, scale and high-bit bytes, with finite f16
// scales and minimums of a few hundredths (the first block's d a subnormal
// half, so that decoding one is tested too).
func randBlocks(r *rand.Rand, dt weights.DType, n int) []byte {
	bb := dt.BlockBytes()
	raw := make([]byte, n*bb)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	var halves []int // offsets of the f16 fields
	switch dt {
	case weights.Q4_0, weights.Q5_0, weights.Q8_0:
		halves = []int{0}
	case weights.Q4_1, weights.Q5_1, weights.Q4_K, weights.Q5_K:
		halves = []int{0, 2}
	case weights.Q6_K:
		halves = []int{208}
	}
	for b := 0; b < n; b++ {
		for _, h := range halves {
			v := weights.Float32ToF16((2*r.Float32() - 1) * 0.05)
			if b == 0 && h == halves[0] {
				v = 0x8123 // -0x123 · 2⁻²⁴
			}
			binary.LittleEndian.PutUint16(raw[b*bb+h:], v)
		}
	}
	return raw
}
