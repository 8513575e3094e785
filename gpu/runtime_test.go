package gpu

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// TestParamsBytes checks the params encoding: 4-byte fields one after
// another, little-endian, and a size that is a positive multiple of 16.
// (That each kernel's params struct matches its shader's Params is tested
// in gpu/kernels, which owns the structs.)
func TestParamsBytes(t *testing.T) {
	type p16 struct {
		A uint32
		B int32
		C float32
		D uint32
	}
	got, err := ParamsBytes(p16{A: 0x04030201, B: -2, C: 1.5, D: 7})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{
		0x01, 0x02, 0x03, 0x04, // A
		0xfe, 0xff, 0xff, 0xff, // B = -2
		0x00, 0x00, 0xc0, 0x3f, // C = 1.5
		0x07, 0x00, 0x00, 0x00, // D
	}
	if !bytes.Equal(got, want) {
		t.Errorf("ParamsBytes = % x, want % x", got, want)
	}
	if got, err := ParamsBytes(n4{N: 9}); err != nil || !bytes.Equal(got, u32Bytes(9, 0, 0, 0)) {
		t.Errorf("blank padding fields: % x, %v", got, err)
	}
	if got, err := ParamsBytes([8]uint32{1, 2}); err != nil || len(got) != 32 {
		t.Errorf("[8]uint32: % x, %v", got, err)
	}
	for _, bad := range []any{struct{ A, B, C uint32 }{}, struct{}{}, [5]uint32{}, struct{ A int }{}} {
		if _, err := ParamsBytes(bad); err == nil {
			t.Errorf("ParamsBytes(%T) was accepted", bad)
		} else {
			t.Log(err)
		}
	}
}

func TestGroups1D(t *testing.T) {
	for _, n := range []int{0, 1, 65535, 65536, 70001, 131071, 1 << 24} {
		g := Groups1D(n)
		total := int(g.X) * int(g.Y) * int(g.Z)
		if g.X > MaxGroupsPerDim || g.Y > MaxGroupsPerDim || total < n || (n > 0 && total-n >= int(g.X)) {
			t.Errorf("Groups1D(%d) = %+v: %d workgroups", n, g, total)
		}
	}
}

// TestGroups1DDispatch runs a kernel over more than 65535 workgroups: every
// linear id below n is written once, none past it.
func TestGroups1DDispatch(t *testing.T) {
	const src = `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = wid.x + wid.y * nwg.x;
    if (id < p.n) {
        out[id] = f32(id);
    }
}`
	forEachBackend(t, func(t *testing.T, d *Device) {
		const n = 70001
		s := newScope(t, d)
		k := kernel(t, d, "groups1d", src)
		g := Groups1D(n)
		if g.Y < 2 {
			t.Fatalf("Groups1D(%d) = %+v is not 2-D", n, g)
		}
		out := poisoned(t, s, "out", n+1000)
		run(t, d, Extent{}, op(t, s, k, Dispatch{Label: "groups1d", Params: n4{N: n}, Bindings: []Binding{Bind(out)}, Groups: g}))
		got := readF32(t, d, out, n+1000)
		for i, v := range got {
			if i < n && v != float32(i) || i >= n && !math.IsNaN(float64(v)) {
				t.Fatalf("index %d: got %v, want %v", i, v, map[bool]any{true: i, false: "NaN (unwritten)"}[i < n])
			}
		}
	})
}

// TestErrorsAreReturned checks that bad shaders, bindings and sizes come back
// as Go errors carrying the reason, instead of aborting inside wgpu-native.
func TestErrorsAreReturned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *Device) {
		s := newScope(t, d)
		buf := upload(t, s, "small", make([]float32, 16))
		big := upload(t, s, "big", make([]float32, 1024))
		uni := must[*Buffer](t)(s.Uniform("uni", 16))
		const good = `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) { out[g.x] = f32(p.n); }`
		k := kernel(t, d, "good", good)
		one := Groups{1, 1, 1}
		spec := func(label string, bs ...Binding) Dispatch {
			return Dispatch{Label: label, Params: n4{}, Bindings: bs, Groups: one}
		}
		submit := func(r *Recorder) error { return r.Submit() }
		cases := []struct {
			name string
			run  func(t *testing.T) error
			want string
		}{
			{"wgsl syntax", func(*testing.T) error {
				_, err := d.KernelSource("bad syntax", "fn main( {")
				return err
			}, "expected"},
			{"wgsl types", func(*testing.T) error {
				_, err := d.KernelSource("bad types", strings.Replace(good, "f32(p.n)", "p.n", 1))
				return err
			}, "Validation"},
			{"missing entry point main", func(*testing.T) error {
				_, err := d.KernelSource("no main", strings.Replace(good, "fn main(", "fn nope(", 1))
				return err
			}, "main"},
			{"template variable", func(*testing.T) error {
				_, err := d.Kernel("rmsnorm", map[string]any{"WG": 64})
				return err
			}, "template"},
			{"unknown shader", func(*testing.T) error {
				_, err := d.Kernel("no_such_shader", nil)
				return err
			}, "no shader"},
			{"binding past the buffer", func(*testing.T) error {
				_, err := s.Op(k, spec("past", Binding{Buf: buf, Offset: 0, Size: 1 << 20}))
				return err
			}, "does not fit"},
			{"binding offset past the buffer", func(*testing.T) error {
				_, err := s.Op(k, spec("past", Binding{Buf: buf, Offset: 1 << 20}))
				return err
			}, "does not fit"},
			{"binding size not in words", func(*testing.T) error {
				_, err := s.Op(k, spec("words", Binding{Buf: buf, Size: 6}))
				return err
			}, "does not fit"},
			{"binding offset alignment", func(*testing.T) error {
				_, err := s.Op(k, spec("offset", Binding{Buf: big, Offset: 4}))
				return err
			}, "multiple of"},
			{"nil binding", func(*testing.T) error {
				_, err := s.Op(k, spec("nil", Binding{}))
				return err
			}, "nil buffer"},
			{"unused binding", func(*testing.T) error {
				// p is unused here, so wgpu drops binding 0 from the layout.
				k, err := d.KernelSource("no params", strings.Replace(good, "f32(p.n)", "1.0", 1))
				if err != nil {
					return err
				}
				_, err = s.Op(k, spec("unused", Bind(buf)))
				return err
			}, "unused"},
			{"binding count", func(*testing.T) error {
				_, err := s.Op(k, spec("count", Bind(buf), Bind(big)))
				return err
			}, "Validation"},
			{"uniform where storage is bound", func(*testing.T) error {
				_, err := s.Op(k, spec("kind", Bind(uni)))
				return err
			}, "Validation"},
			{"params size", func(*testing.T) error {
				_, err := s.Op(k, Dispatch{Label: "params", Params: [3]uint32{}, Bindings: []Binding{Bind(buf)}, Groups: one})
				return err
			}, "multiple of 16"},
			{"too many workgroups", func(*testing.T) error {
				_, err := s.Op(k, Dispatch{Label: "groups", Params: n4{}, Bindings: []Binding{Bind(buf)}, Groups: Groups{70000, 1, 1}})
				return err
			}, "Groups1D"},
			{"too many workgroups from Size", func(t *testing.T) error {
				o := op(t, s, k, Dispatch{Label: "size", Params: n4{}, Bindings: []Binding{Bind(buf)}, Groups: one,
					Size: func(e Extent) Groups { return Groups{uint32(e.Rows), 1, 1} }})
				r := d.NewRecorder(Extent{Rows: 70000})
				r.Run(o)
				return r.Submit()
			}, "Groups1D"},
			{"buffer over maxBufferSize", func(*testing.T) error {
				_, err := s.Buffer("huge", d.Limits().MaxBufferSize+4)
				return err
			}, "maxBufferSize"},
			{"empty buffer", func(*testing.T) error {
				_, err := s.Upload("empty", nil)
				return err
			}, "size 0"},
			{"uniform size", func(*testing.T) error {
				_, err := s.Uniform("u12", 12)
				return err
			}, "multiple of 16"},
			{"uniform over its limit", func(*testing.T) error {
				_, err := s.Uniform("u-huge", (d.Limits().MaxUniformBufferBindingSize+16)&^15)
				return err
			}, "uniform binding limit"},
			{"map without MAP_READ", func(*testing.T) error {
				return mapRead(d.dev, buf.buf, 0, 64)
			}, "Validation"},
			{"write past the end", func(*testing.T) error {
				return d.Write(buf, 60, make([]byte, 8))
			}, "past"},
			{"write not in words", func(*testing.T) error {
				return d.Write(buf, 2, make([]byte, 4))
			}, "multiples of 4"},
			{"read past the end", func(*testing.T) error {
				_, err := d.ReadF32(buf, 10, 10)
				return err
			}, "out of range"},
			{"read of nothing", func(*testing.T) error {
				_, err := d.Read(buf, 0, 0)
				return err
			}, "out of range"},
			{"copy past the end", func(*testing.T) error {
				r := d.NewRecorder(Extent{})
				r.Copy(buf, 0, big, 0, 128)
				return submit(r)
			}, "out of range"},
			{"copy not in words", func(*testing.T) error {
				r := d.NewRecorder(Extent{})
				r.Copy(big, 0, buf, 2, 8)
				return submit(r)
			}, "not in words"},
			{"copy within one buffer", func(*testing.T) error {
				r := d.NewRecorder(Extent{})
				r.Copy(big, 0, big, 64, 16)
				return submit(r)
			}, "within one buffer"},
			{"released scope's buffer", func(t *testing.T) error {
				s2 := d.NewScope("gone")
				b := must[*Buffer](t)(s2.Buffer("gone", 64))
				s2.Release()
				_, err := d.ReadF32(b, 0, 1)
				return err
			}, "released"},
			{"released scope's op", func(t *testing.T) error {
				s2 := d.NewScope("gone")
				o := op(t, s2, k, spec("gone", Bind(buf)))
				s2.Release()
				r := d.NewRecorder(Extent{})
				r.Run(o)
				return r.Submit()
			}, "released"},
			{"written binding aliasing another", func(t *testing.T) error {
				// The runtime leaves aliasing to the kernels' checks; wgpu
				// refuses it when the pass is encoded, and that must come
				// back as an error too.
				o := op(t, s, kernel(t, d, "acc", accWGSL), Dispatch{Label: "alias", Params: n4{N: 4}, Bindings: []Binding{Bind(big), Bind(big)}, Groups: one})
				r := d.NewRecorder(Extent{})
				r.Run(o)
				return r.Submit()
			}, "conflicting usages"},
			{"wait twice", func(t *testing.T) error {
				r := d.NewRecorder(Extent{})
				r.Read(buf, 0, 4)
				p := must[*Pending](t)(r.Start())
				if err := p.Wait(); err != nil {
					t.Fatal(err)
				}
				return p.Wait()
			}, "twice"},
		}
		for _, c := range cases {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				err := c.run(t)
				if err == nil {
					t.Fatal("no error")
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %q does not mention %q", err, c.want)
				}
				t.Log(err)
			})
		}
		// The device still works after all that.
		run(t, d, Extent{}, op(t, s, k, Dispatch{Label: "after", Params: n4{N: 3}, Bindings: []Binding{Bind(big)}, Groups: one}))
		checkEqual(t, "after", readF32(t, d, big, 2), []float32{3, 3})
	})
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(Options{Backend: "vulkan9"}); err == nil || !strings.Contains(err.Error(), "unknown backend") {
		t.Errorf("unknown backend: %v", err)
	}
	d := openTestDevice(t, "")
	_, err := Open(Options{Backend: d.Info().Backend, Adapter: "no such adapter"})
	if err == nil || !strings.Contains(err.Error(), d.Info().Name) || strings.Contains(err.Error(), "\n") {
		t.Errorf("missing adapter: want a one-line error listing %q, got %v", d.Info().Name, err)
	}
	t.Log(err)
	if _, err := Open(Options{Backend: d.Info().Backend, Adapter: "99"}); err == nil {
		t.Error("adapter index 99 was accepted")
	}
}

// TestLimits checks that the device got the adapter's own limits rather than
// the WebGPU defaults (128 MiB binding, 256 MiB buffer).
func TestLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *Device) {
		got, want := d.Limits(), d.Info().Limits
		t.Logf("%s (%s): %+v", d.Info().Name, d.Info().Backend, got)
		if got.MaxStorageBufferBindingSize != min(want.MaxStorageBufferBindingSize, math.MaxUint32) {
			t.Errorf("maxStorageBufferBindingSize %d, adapter offers %d", got.MaxStorageBufferBindingSize, want.MaxStorageBufferBindingSize)
		}
		if got.MaxBufferSize != min(want.MaxBufferSize, 1<<40) {
			t.Errorf("maxBufferSize %d, adapter offers %d", got.MaxBufferSize, want.MaxBufferSize)
		}
		if got.MaxComputeWorkgroupStorageSize != want.MaxComputeWorkgroupStorageSize {
			t.Errorf("workgroup storage %d, adapter offers %d", got.MaxComputeWorkgroupStorageSize, want.MaxComputeWorkgroupStorageSize)
		}
		if got.MaxComputeWorkgroupsPerDimension < MaxGroupsPerDim {
			t.Errorf("maxComputeWorkgroupsPerDimension %d, below the WebGPU default %d", got.MaxComputeWorkgroupsPerDimension, MaxGroupsPerDim)
		}
		// A buffer over the 256 MiB default proves the request took.
		if got.MaxBufferSize > 300<<20 {
			s := d.NewScope("limits")
			must[*Buffer](t)(s.Buffer("300MiB", 300<<20))
			s.Release()
		}
	})
}

// TestBuffers checks the ways a buffer is made and filled: Buffer is
// zero-filled, Upload rounds up to words and zero-pads, Write lands at its
// offset, Read returns the range asked for.
func TestBuffers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *Device) {
		s := newScope(t, d)
		z := must[*Buffer](t)(s.Buffer("zeros", 10))
		if z.Size() != 12 || z.Label() != "zeros" {
			t.Errorf("Buffer(10): size %d label %q, want 12 \"zeros\"", z.Size(), z.Label())
		}
		checkEqual(t, "zero-filled", readF32(t, d, z, 3), []float32{0, 0, 0})
		u := must[*Buffer](t)(s.Upload("odd", []byte{1, 2, 3, 4, 5}))
		if u.Size() != 8 {
			t.Errorf("Upload of 5 bytes: size %d, want 8", u.Size())
		}
		if got := must[[]byte](t)(d.Read(u, 0, 8)); !bytes.Equal(got, []byte{1, 2, 3, 4, 5, 0, 0, 0}) {
			t.Errorf("Upload of 5 bytes reads back % x", got)
		}
		if err := d.Write(z, 4, f32Bytes([]float32{7, 8})); err != nil {
			t.Fatal(err)
		}
		checkEqual(t, "written", readF32(t, d, z, 3), []float32{0, 7, 8})
		if got := must[[]float32](t)(d.ReadF32(z, 2, 1)); got[0] != 8 {
			t.Errorf("ReadF32(z, 2, 1) = %v, want [8]", got)
		}
		if err := d.Write(z, 0, nil); err != nil {
			t.Errorf("empty write: %v", err)
		}
		if s.Device() != d {
			t.Error("Scope.Device is not the device")
		}
	})
}

// TestUniformAndBindingRange runs a kernel reading a uniform buffer the host
// rewrites between steps (each Write lands before the next step) and
// writing through a binding with an offset and a size.
func TestUniformAndBindingRange(t *testing.T) {
	const src = `
struct Step { v: f32, _a: f32, _b: f32, _c: f32 }
@group(0) @binding(0) var<uniform> st: Step;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(4)
fn main(@builtin(local_invocation_index) i: u32) {
    if (i < arrayLength(&out)) { out[i] = st.v + f32(i); }
}`
	forEachBackend(t, func(t *testing.T, d *Device) {
		s := newScope(t, d)
		k := kernel(t, d, "uniform", src)
		step := must[*Buffer](t)(s.Uniform("step", 16))
		align := uint64(d.Limits().MinStorageBufferOffsetAlignment)
		out := poisoned(t, s, "out", int(align/4)+8)
		o := op(t, s, k, Dispatch{Label: "uniform", Bindings: []Binding{Bind(step), {Buf: out, Offset: align, Size: 8}}, Groups: Groups{1, 1, 1}})
		for _, v := range []float32{5, 40} {
			if err := d.Write(step, 0, f32Bytes([]float32{v, 0, 0, 0})); err != nil {
				t.Fatal(err)
			}
			run(t, d, Extent{}, o)
			got := must[[]float32](t)(d.ReadF32(out, int(align/4)-1, 4))
			checkEqual(t, "range", got, []float32{float32(math.NaN()), v, v + 1, float32(math.NaN())})
		}
	})
}

// TestKernelCache checks that a kernel is compiled once per key and that a
// failed compile is not cached.
func TestKernelCache(t *testing.T) {
	d := openTestDevice(t, "")
	k1 := kernel(t, d, "cache", markWGSL)
	k2 := kernel(t, d, "cache", markWGSL)
	if k1 != k2 {
		t.Error("the same key compiled twice")
	}
	if k1.Name() != "source:cache" {
		t.Errorf("Name() = %q", k1.Name())
	}
	for range 2 {
		if _, err := d.KernelSource("cache bad", "fn main( {"); err == nil {
			t.Error("a broken shader compiled (or its failure was cached as a success)")
		}
	}
}

// TestRecorder runs a step with ops, a copy between passes and readbacks,
// and checks that each readback holds its own range.
func TestRecorder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *Device) {
		s := newScope(t, d)
		a := upload(t, s, "a", []float32{1, 2, 3, 4, 5, 6, 7, 8})
		b := upload(t, s, "b", []float32{10, 20, 30, 40, 50, 60, 70, 80})
		c := poisoned(t, s, "c", 8)
		add := op(t, s, kernel(t, d, "add", addWGSL), Dispatch{Label: "add", Params: n4{N: 8}, Bindings: []Binding{Bind(a), Bind(b), Bind(c)}, Groups: Groups{1, 1, 1}})
		// a += c, after the copy below.
		acc := op(t, s, kernel(t, d, "acc", accWGSL), Dispatch{Label: "acc", Params: n4{N: 8}, Bindings: []Binding{Bind(a), Bind(c)}, Groups: Groups{1, 1, 1}})

		r := d.NewRecorder(Extent{})
		r.Run(add)
		r.Copy(b, 0, c, 0, 16) // b[0:4] = c[0:4]
		r.Run(acc)
		rc := r.Read(c, 0, 32)
		rb := r.Read(b, 8, 12)
		ra := r.Read(a, 0, 32)
		ru := r.Read(b, 28, 4)
		if r.Len() != 3 {
			t.Errorf("Len() = %d, want 3", r.Len())
		}
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		if r.Len() != 0 {
			t.Errorf("recorder not empty after Submit")
		}
		checkEqual(t, "c = a + b", rc.F32(), []float32{11, 22, 33, 44, 55, 66, 77, 88})
		checkEqual(t, "b after the copy", rb.F32(), []float32{33, 44, 50})
		checkEqual(t, "a += c", ra.F32(), []float32{12, 24, 36, 48, 60, 72, 84, 96})
		if got := ru.U32(); len(got) != 1 || got[0] != math.Float32bits(80) || len(ru.Bytes()) != 4 {
			t.Errorf("U32 readback %v", got)
		}
		// The recorder records the next step; the ops run again.
		r.Run(acc)
		ra = r.Read(a, 0, 8)
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		checkEqual(t, "a += c again", ra.F32(), []float32{23, 46})
		if err := d.NewRecorder(Extent{}).Submit(); err != nil {
			t.Errorf("empty step: %v", err)
		}
		// A failed step leaves the recorder empty and usable.
		r.Copy(a, 0, b, 0, 64)
		if err := r.Submit(); err == nil {
			t.Error("a copy past the end was accepted")
		}
		if r.Len() != 0 {
			t.Errorf("recorder holds %d items after a failed Submit", r.Len())
		}
		rc = r.Read(c, 0, 4)
		if err := r.Submit(); err != nil || rc.F32()[0] != 11 {
			t.Errorf("step after a failed one: %v, %v", err, rc.F32())
		}
	})
}

// TestDispatchSize checks that an op with Dispatch.Size is sized by each
// recorder's extent, and that a size of zero workgroups skips the dispatch
// without disturbing the ops around it.
func TestDispatchSize(t *testing.T) {
	forEachBackend(t, func(t *testing.T, d *Device) {
		s := newScope(t, d)
		k := kernel(t, d, "mark", markWGSL)
		out := upload(t, s, "out", make([]float32, 8))
		fixed := upload(t, s, "fixed", make([]float32, 2))
		var seen []Extent
		sized := op(t, s, k, Dispatch{
			Label: "sized", Bindings: []Binding{Bind(out)}, Groups: Groups{8, 1, 1},
			Size: func(e Extent) Groups {
				seen = append(seen, e)
				return Groups{uint32(e.Rows), 1, 1}
			},
		})
		plain := op(t, s, k, Dispatch{Label: "plain", Bindings: []Binding{Bind(fixed)}, Groups: Groups{2, 1, 1}})
		if g := plain.GroupsFor(Extent{Rows: 5}); g != (Groups{2, 1, 1}) {
			t.Errorf("GroupsFor without Size = %+v, want the fixed groups", g)
		}

		run(t, d, Extent{Rows: 3, Keys: 7}, plain, sized, plain)
		if len(seen) != 1 || seen[0] != (Extent{Rows: 3, Keys: 7}) {
			t.Fatalf("Size called with %v, want once with the recorder's extent {3 7}", seen)
		}
		checkEqual(t, "rows 3", readF32(t, d, out, 8), []float32{1, 1, 1, 0, 0, 0, 0, 0})

		// Zero rows: the sized op is skipped, the plain ops around it run.
		seen = nil
		run(t, d, Extent{Rows: 0, Keys: 1}, plain, sized, plain)
		if len(seen) != 1 || seen[0] != (Extent{Rows: 0, Keys: 1}) {
			t.Fatalf("Size called with %v, want once with {0 1}", seen)
		}
		checkEqual(t, "rows 0", readF32(t, d, out, 8), []float32{1, 1, 1, 0, 0, 0, 0, 0})
		checkEqual(t, "plain ops", readF32(t, d, fixed, 2), []float32{4, 4})

		// A sized op recorded twice in one step runs twice at the size.
		run(t, d, Extent{Rows: 8}, sized, sized)
		checkEqual(t, "rows 8 twice", readF32(t, d, out, 8), []float32{3, 3, 3, 2, 2, 2, 2, 2})
	})
}

// TestProfile opens a device in profile mode and checks one timing per op,
// none for copies, in order, with each op's label and role.
func TestProfile(t *testing.T) {
	for _, be := range testBackends() {
		t.Run(be, func(t *testing.T) {
			info := openTestDevice(t, be).Info() // skips when the backend is missing
			d, err := Open(Options{Backend: be, Profile: true})
			if err != nil {
				if !hasString(info.Features, wgpu.FeatureName_TimestampQuery.String()) {
					t.Logf("%s has no timestamp queries, and Open says so: %v", be, err)
					return
				}
				t.Fatal(err)
			}
			defer d.Close()
			if !d.Profiling() {
				t.Error("Profiling() is false on a profile-mode device")
			}
			s := d.NewScope("profile")
			x := must[*Buffer](t)(s.Upload("x", f32Bytes(make([]float32, 4096))))
			y := must[*Buffer](t)(s.Buffer("y", 4*4096))
			acc := kernel(t, d, "acc", accWGSL)
			op1 := op(t, s, acc, Dispatch{Label: "layer 0 acc", Role: "acc", Params: n4{N: 4096}, Bindings: []Binding{Bind(x), Bind(y)}, Groups: Groups{64, 1, 1}})
			op2 := op(t, s, acc, Dispatch{Label: "back", Params: n4{N: 4096}, Bindings: []Binding{Bind(y), Bind(x)}, Groups: Groups{64, 1, 1},
				Size: func(e Extent) Groups { return Groups{uint32(e.Rows), 1, 1} }})
			r := d.NewRecorder(Extent{Rows: 64})
			r.Run(op1, op2)
			r.Copy(y, 0, x, 0, 16)
			r.Run(op1)
			rb := r.Read(x, 0, 16)
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			if len(rb.F32()) != 4 {
				t.Errorf("readback next to the timestamps: %v", rb.F32())
			}
			tm := r.Timings()
			want := []OpTiming{{Label: "layer 0 acc", Role: "acc"}, {Label: "back", Role: "back"}, {Label: "layer 0 acc", Role: "acc"}}
			if len(tm) != len(want) {
				t.Fatalf("timings %+v, want 3", tm)
			}
			for i, x := range tm {
				if x.Label != want[i].Label || x.Role != want[i].Role {
					t.Errorf("timing %d: %+v, want label %q role %q", i, x, want[i].Label, want[i].Role)
				}
				if x.Nanos < 0 {
					t.Errorf("negative time %+v", x)
				}
			}
			t.Logf("%+v", tm)
			// A step without readbacks still gets its timings.
			r.Run(op2)
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			if tm := r.Timings(); len(tm) != 1 || tm[0].Label != "back" {
				t.Errorf("timings of a step without readbacks: %+v", tm)
			}
			// One query set holds at most maxQueries timestamps: more ops
			// in one step are refused before anything is encoded.
			for range maxQueries {
				r.Run(op1)
			}
			wantErr(t, "too many timed ops", r.Submit(), "at most")
			s.Release()
		})
	}
	// Outside profile mode there are none.
	d := openTestDevice(t, "")
	if d.Profiling() {
		t.Error("Profiling() is true on a plain device")
	}
	s := newScope(t, d)
	b := must[*Buffer](t)(s.Buffer("b", 4))
	r := d.NewRecorder(Extent{})
	r.Run(op(t, s, kernel(t, d, "mark", markWGSL), Dispatch{Label: "mark", Bindings: []Binding{Bind(b)}, Groups: Groups{1, 1, 1}}))
	if err := r.Submit(); err != nil {
		t.Fatal(err)
	}
	if tm := r.Timings(); tm != nil {
		t.Errorf("timings outside profile mode: %+v", tm)
	}
}

func hasString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
