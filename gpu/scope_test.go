package gpu

import (
	"testing"
)

func liveScopes(d *Device) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.scopes)
}

// TestScopeRelease checks that a scope frees its buffers and ops together,
// that anything made through a released scope is refused (as an error, not
// an abort inside wgpu) wherever it is used later, that releasing twice is
// harmless, and that the scopes of others are untouched.
func TestScopeRelease(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *Device) {
		k := kernel(t, d, "acc", accWGSL)
		n0 := liveScopes(d)
		s := d.NewScope("short")
		other := newScope(t, d)
		if liveScopes(d) != n0+2 {
			t.Errorf("%d live scopes after two NewScope, want %d", liveScopes(d), n0+2)
		}
		x := upload(t, s, "x", []float32{1, 2, 3, 4})
		u := must[*Buffer](t)(s.Uniform("u", 16))
		acc := upload(t, other, "acc", make([]float32, 4))
		own := op(t, s, k, Dispatch{Label: "own", Params: n4{N: 4}, Bindings: []Binding{Bind(acc), Bind(x)}, Groups: Groups{1, 1, 1}})
		// An op of the other scope that binds a buffer of s.
		cross := op(t, other, k, Dispatch{Label: "cross", Params: n4{N: 4}, Bindings: []Binding{Bind(acc), Bind(x)}, Groups: Groups{1, 1, 1}})
		run(t, d, Extent{}, own, cross)
		checkEqual(t, "before release", readF32(t, d, acc, 4), []float32{2, 4, 6, 8})

		s.Release()
		if liveScopes(d) != n0+1 {
			t.Errorf("%d live scopes after Release, want %d", liveScopes(d), n0+1)
		}
		if x.buf != nil || u.buf != nil || own.bindGroup != nil || own.params != nil {
			t.Error("Release left a buffer, bind group or params buffer alive")
		}
		if len(s.bufs) != 0 || len(s.ops) != 0 {
			t.Error("a released scope still lists its objects")
		}
		s.Release() // twice is fine
		if x.Size() != 16 || x.Label() != "x" {
			t.Errorf("a released buffer forgot its size or label: %d %q", x.Size(), x.Label())
		}

		_, err := other.Op(k, Dispatch{Label: "new", Params: n4{N: 4}, Bindings: []Binding{Bind(acc), Bind(x)}, Groups: Groups{1, 1, 1}})
		wantErr(t, "new op binding a released buffer", err, "released")
		_, err = s.Op(k, Dispatch{Label: "in released", Params: n4{N: 4}, Bindings: []Binding{Bind(acc), Bind(acc)}, Groups: Groups{1, 1, 1}})
		wantErr(t, "op in a released scope", err, `scope "short" was released`)
		_, err = s.Buffer("late", 16)
		wantErr(t, "buffer in a released scope", err, "released")
		_, err = s.Upload("late", make([]byte, 16))
		wantErr(t, "upload in a released scope", err, "released")
		_, err = s.Uniform("late", 16)
		wantErr(t, "uniform in a released scope", err, "released")
		wantErr(t, "write to a released buffer", d.Write(x, 0, make([]byte, 4)), "released")
		_, err = d.ReadF32(x, 0, 1)
		wantErr(t, "read of a released buffer", err, "released")

		for _, c := range []struct {
			what string
			rec  func(r *Recorder)
		}{
			{"released op", func(r *Recorder) { r.Run(own) }},
			{"live op binding a released buffer", func(r *Recorder) { r.Run(cross) }},
			{"copy from a released buffer", func(r *Recorder) { r.Copy(acc, 0, x, 0, 16) }},
			{"copy to a released buffer", func(r *Recorder) { r.Copy(x, 0, acc, 0, 16) }},
			{"readback of a released buffer", func(r *Recorder) { r.Read(x, 0, 4) }},
		} {
			r := d.NewRecorder(Extent{})
			c.rec(r)
			wantErr(t, c.what, r.Submit(), "released")
		}

		// The other scope still works.
		ok := op(t, other, kernel(t, d, "mark", markWGSL), Dispatch{Label: "ok", Bindings: []Binding{Bind(acc)}, Groups: Groups{4, 1, 1}})
		run(t, d, Extent{}, ok)
		checkEqual(t, "after release", readF32(t, d, acc, 4), []float32{3, 5, 7, 9})
		var nilScope *Scope
		nilScope.Release() // harmless
	})
}

// TestDeviceClose closes a device with scopes still open: Close releases
// them, and every later use of the device or its objects is an error.
// It also checks that objects of one device are refused on another.
func TestDeviceClose(t *testing.T) {
	d := openOwnDevice(t, "", Options{})
	other := openTestDevice(t, "")

	open := d.NewScope("left open")
	done := d.NewScope("released")
	x := upload(t, open, "x", []float32{1, 2, 3, 4})
	k := kernel(t, d, "mark", markWGSL)
	o := op(t, open, k, Dispatch{Label: "mark", Bindings: []Binding{Bind(x)}, Groups: Groups{1, 1, 1}})
	run(t, d, Extent{}, o)
	checkEqual(t, "before close", readF32(t, d, x, 4), []float32{2, 2, 3, 4})
	done.Release()

	// Another device's objects.
	os2 := newScope(t, other)
	ox := upload(t, os2, "ox", []float32{0})
	_, err := open.Op(k, Dispatch{Label: "foreign buffer", Bindings: []Binding{Bind(ox)}, Groups: Groups{1, 1, 1}})
	wantErr(t, "binding another device's buffer", err, "another device")
	_, err = os2.Op(k, Dispatch{Label: "foreign kernel", Bindings: []Binding{Bind(ox)}, Groups: Groups{1, 1, 1}})
	wantErr(t, "kernel of another device", err, "another device")
	wantErr(t, "write to another device's buffer", d.Write(ox, 0, make([]byte, 4)), "another device")
	_, err = d.Read(ox, 0, 4)
	wantErr(t, "read of another device's buffer", err, "another device")
	r := d.NewRecorder(Extent{})
	r.Copy(x, 0, ox, 0, 4)
	wantErr(t, "copy from another device's buffer", r.Submit(), "another device")

	d.Close()
	if liveScopes(d) != 0 {
		t.Errorf("%d scopes left after Close", liveScopes(d))
	}
	if !open.done || x.buf != nil || o.bindGroup != nil {
		t.Error("Close did not release the scope left open")
	}
	d.Close() // twice is fine
	open.Release()

	_, err = d.KernelSource("after close", markWGSL)
	wantErr(t, "compile after Close", err, "closed")
	_, err = d.KernelSource("mark", markWGSL) // cached before Close: released with the device
	wantErr(t, "cached kernel after Close", err, "closed")
	s := d.NewScope("after close")
	_, err = s.Buffer("b", 16)
	if err == nil {
		t.Error("a buffer was made on a closed device")
	} else {
		t.Logf("buffer after Close: %v", err)
	}
	s.Release()
	_, err = open.Buffer("b", 16)
	wantErr(t, "buffer in a scope Close released", err, "closed")
	_, err = d.Read(x, 0, 4)
	wantErr(t, "read after Close", err, "closed")
	wantErr(t, "write after Close", d.Write(x, 0, make([]byte, 4)), "released")
	r = d.NewRecorder(Extent{})
	r.Run(o)
	wantErr(t, "step after Close", r.Submit(), "closed")
	wantErr(t, "empty step after Close", d.NewRecorder(Extent{}).Submit(), "closed")

	// The other device is untouched.
	checkEqual(t, "other device", readF32(t, other, ox, 1), []float32{0})
}

// A step started and never waited for is freed by Close; waiting for it
// afterwards reports the closed device instead of touching freed objects.
func TestWaitAfterClose(t *testing.T) {
	d := openOwnDevice(t, "", Options{})
	s := d.NewScope("pending")
	x, err := s.Buffer("x", 16)
	if err != nil {
		t.Fatal(err)
	}
	r := d.NewRecorder(Extent{})
	rb := r.Read(x, 0, 16)
	p, err := r.Start()
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	wantErr(t, "wait after Close", p.Wait(), "closed")
	if rb.Bytes() != nil {
		t.Error("a readback of a step freed by Close holds data")
	}
}
