package gpu

import (
	"math"
	"testing"
)

// The bandwidth probe's kernel must really copy: every element of the
// NaN-poisoned output equals the input, including the tail of a size that
// is not a multiple of the workgroup.
func TestCopyKernel(t *testing.T) {
	d := openTestDevice(t, "")
	const n = 256*37 + 5 // vec4 elements
	src := make([]float32, 4*n)
	for i := range src {
		src[i] = float32(i%1000) - 0.5
	}
	x, err := d.UploadF32("x", src)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Release()
	poison := make([]float32, 4*n)
	for i := range poison {
		poison[i] = float32(math.NaN())
	}
	y, err := d.UploadF32("y", poison)
	if err != nil {
		t.Fatal(err)
	}
	defer y.Release()
	k, err := d.Kernel("copy", nil)
	if err != nil {
		t.Fatal(err)
	}
	op, err := k.Op("copy", copyParams{N: n}, Groups1D(ceilDiv(n, 256)), Bind(x), Bind(y))
	if err != nil {
		t.Fatal(err)
	}
	defer op.Release()
	if err := d.Submit(op); err != nil {
		t.Fatal(err)
	}
	got, err := d.ReadF32(y, 0, 4*n)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != src[i] {
			t.Fatalf("index %d: got %v, want %v", i, got[i], src[i])
		}
	}
	bw, err := d.CopyBandwidth()
	if err != nil {
		t.Fatal(err)
	}
	if !(bw > 0) || math.IsInf(bw, 0) {
		t.Fatalf("bandwidth %v is not a positive finite number", bw)
	}
	t.Logf("copy bandwidth %.1f GB/s on %s (a software adapter says nothing about GPU speed)", bw/1e9, d.Info().Name)
}
