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
	const copyWGSL = `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + tid;
    if (i < p.n) { y[i] = x[i]; }
}`
	d := openTestDevice(t, "")
	size := min(uint64(128<<20), d.Limits().MaxStorageBufferBindingSize) &^ 15
	n := int(size / 16)
	src := make([]float32, 4*n)
	for i := range src {
		src[i] = float32(i % 4093)
	}
	work := d.NewScope("work") // x and the op, released right after the step
	defer work.Release()
	keep := newScope(t, d) // y, read afterwards
	x := must[*Buffer](t)(work.Upload("x", f32Bytes(src)))
	y := must[*Buffer](t)(keep.Buffer("y", size))
	k := kernel(t, d, "copy", copyWGSL)
	o := op(t, work, k, Dispatch{Label: "copy", Params: n4{N: uint32(n)}, Bindings: []Binding{Bind(x), Bind(y)},
		Groups: Groups1D((n + 255) / 256)})
	r := d.NewRecorder(Extent{})
	reps := 8
	if d.Info().Type == "cpu" {
		reps = 120 // ≈ 6 s on lavapipe with 2 cores
	}
	for range reps {
		r.Run(o)
	}
	start := time.Now()
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d copies of %d MiB in %v", reps, size>>20, time.Since(start))
	// Release at once: with the pass still running this used to crash.
	work.Release()
	got, err := d.ReadF32(y, n*4-8, 8)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if want := src[n*4-8+i]; v != want {
			t.Fatalf("index %d: got %v, want %v", n*4-8+i, v, want)
		}
	}
}

// TestStartWaitInFlight keeps two steps in flight: each takes its own
// staging buffer from the pool, a queue write made between the two Starts
// lands between them, and each readback holds its own step's values
// whichever order they are waited in. Waited-for staging buffers go back to
// the pool, are reused by later steps, and the pool stays bounded.
func TestStartWaitInFlight(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *Device) {
		s := newScope(t, d)
		a := upload(t, s, "a", []float32{1, 2, 3, 4})
		b := upload(t, s, "b", []float32{10, 20, 30, 40})
		acc := op(t, s, kernel(t, d, "acc", accWGSL), Dispatch{Label: "acc", Params: n4{N: 4}, Bindings: []Binding{Bind(a), Bind(b)}, Groups: Groups{1, 1, 1}})

		r1, r2 := d.NewRecorder(Extent{}), d.NewRecorder(Extent{})
		r1.Run(acc) // a = 11 22 33 44
		ra1 := r1.Read(a, 0, 16)
		rb1 := r1.Read(b, 0, 16)
		p1 := must[*Pending](t)(r1.Start())
		if err := d.Write(b, 0, f32Bytes([]float32{100, 200, 300, 400})); err != nil {
			t.Fatal(err)
		}
		r2.Run(acc) // a = 111 222 333 444
		ra2 := r2.Read(a, 4, 8)
		p2 := must[*Pending](t)(r2.Start())
		if p1.staging == nil || p2.staging == nil || p1.staging == p2.staging {
			t.Fatalf("steps in flight share a staging buffer (%p, %p)", p1.staging, p2.staging)
		}
		s1, s2 := p1.staging, p2.staging
		if err := p2.Wait(); err != nil {
			t.Fatal(err)
		}
		if err := p1.Wait(); err != nil {
			t.Fatal(err)
		}
		checkEqual(t, "step 1 a", ra1.F32(), []float32{11, 22, 33, 44})
		checkEqual(t, "step 1 b", rb1.F32(), []float32{10, 20, 30, 40})
		checkEqual(t, "step 2 a", ra2.F32(), []float32{222, 333})

		d.mu.Lock()
		pooled := map[*stagingBuf]bool{}
		for _, sb := range d.staging.idle {
			pooled[sb] = true
		}
		d.mu.Unlock()
		if !pooled[s1] || !pooled[s2] {
			t.Errorf("waited-for staging buffers are not back in the pool")
		}
		// The next steps take pooled buffers instead of allocating.
		r1.Read(a, 0, 16)
		p3 := must[*Pending](t)(r1.Start())
		r2.Read(b, 0, 4)
		p4 := must[*Pending](t)(r2.Start())
		if !pooled[p3.staging] || !pooled[p4.staging] || p3.staging == p4.staging {
			t.Errorf("steps after a wait allocated new staging buffers")
		}
		if err := p3.Wait(); err != nil {
			t.Fatal(err)
		}
		if err := p4.Wait(); err != nil {
			t.Fatal(err)
		}

		// Many in flight at once: all correct, and the pool keeps at most
		// maxPooled of them afterwards.
		const inFlight = maxPooled + 3
		var ps []*Pending
		var rbs []*Readback
		for i := range inFlight {
			if err := d.Write(b, 0, f32Bytes([]float32{float32(i)})); err != nil {
				t.Fatal(err)
			}
			r := d.NewRecorder(Extent{})
			rbs = append(rbs, r.Read(b, 0, 4))
			ps = append(ps, must[*Pending](t)(r.Start()))
		}
		for i := len(ps) - 1; i >= 0; i-- {
			if err := ps[i].Wait(); err != nil {
				t.Fatal(err)
			}
		}
		for i, rb := range rbs {
			if got := rb.F32(); got[0] != float32(i) {
				t.Errorf("step %d of %d in flight read %v", i, inFlight, got)
			}
		}
		d.mu.Lock()
		idle := len(d.staging.idle)
		d.mu.Unlock()
		if idle > maxPooled {
			t.Errorf("%d idle staging buffers, want at most %d", idle, maxPooled)
		}
	})
}
