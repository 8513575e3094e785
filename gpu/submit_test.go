package gpu

import (
	"testing"
	"time"
)

// Submit must return only when the GPU is done, even past wgpu 0.17's
// 5-second blocking-poll limit: releasing a pass's buffers while it still
// ran crashed lavapipe. On lavapipe this pass takes longer than 5 s (on a
// real GPU it is quick and the test only checks the result).
func TestSubmitWaitsPastFiveSeconds(t *testing.T) {
	d := openTestDevice(t, "")
	size := min(uint64(128<<20), d.Limits().MaxStorageBufferBindingSize) &^ 15
	n := int(size / 16)
	src := make([]float32, 4*n)
	for i := range src {
		src[i] = float32(i % 4093)
	}
	x, err := d.UploadF32("x", src)
	if err != nil {
		t.Fatal(err)
	}
	y, err := d.NewBuffer("y", size)
	if err != nil {
		t.Fatal(err)
	}
	k, err := d.Kernel("copy", nil)
	if err != nil {
		t.Fatal(err)
	}
	op, err := k.Op("copy", copyParams{N: uint32(n)}, Groups1D(ceilDiv(n, 256)), Bind(x), Bind(y))
	if err != nil {
		t.Fatal(err)
	}
	r := d.NewRecorder()
	reps := 8
	if d.Info().Type == "cpu" {
		reps = 120 // ≈ 6 s on lavapipe with 2 cores
	}
	for range reps {
		r.Run(op)
	}
	start := time.Now()
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d copies of %d MiB in %v", reps, size>>20, time.Since(start))
	// Release at once: with the pass still running this used to crash.
	op.Release()
	x.Release()
	got, err := d.ReadF32(y, n*4-8, 8)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if want := src[n*4-8+i]; v != want {
			t.Fatalf("index %d: got %v, want %v", n*4-8+i, v, want)
		}
	}
	y.Release()
}
