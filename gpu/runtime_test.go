package gpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"unsafe"

	"github.com/qwgpu/qwgpu/wgsl"
	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// paramsStructs maps each shader to the Go struct that mirrors its Params.
var paramsStructs = map[string]any{
	"rmsnorm":     rmsnormParams{},
	"matvec":      matvecParams{},
	"matmul":      matmulParams{},
	"elementwise": elementwiseParams{},
	"embedding":   embeddingParams{},
	"argmax":      argmaxParams{},
	"copy":        copyParams{},
}

var wgslField = regexp.MustCompile(`(?m)^\s*(\w+)\s*:\s*(u32|i32|f32)\s*,?\s*$`)

// TestParamsLayout checks every params struct against its shader: a multiple
// of 16 bytes, no Go padding, and as many 4-byte fields as the WGSL struct.
func TestParamsLayout(t *testing.T) {
	for name, params := range paramsStructs {
		t.Run(name, func(t *testing.T) {
			size := binary.Size(params)
			if size <= 0 || size%16 != 0 {
				t.Errorf("%T is %d bytes, want a positive multiple of 16", params, size)
			}
			if goSize := int(reflectSize(params)); goSize != size {
				t.Errorf("%T: Go lays it out in %d bytes, encoding/binary in %d: a field is not 4 bytes", params, goSize, size)
			}
			src, err := wgsl.Source(name)
			if err != nil {
				t.Fatal(err)
			}
			start := strings.Index(src, "struct Params {")
			if start < 0 {
				t.Fatalf("%s.wgsl has no struct Params", name)
			}
			body := src[start : start+strings.Index(src[start:], "}")]
			fields := wgslField.FindAllString(body, -1)
			if 4*len(fields) != size {
				t.Errorf("WGSL Params has %d scalar fields (%d bytes), Go %T has %d bytes", len(fields), 4*len(fields), params, size)
			}
			if _, err := paramsBytes(params); err != nil {
				t.Error(err)
			}
		})
	}
	if _, err := paramsBytes(struct{ A, B, C uint32 }{}); err == nil {
		t.Error("a 12-byte params struct was accepted")
	}
}

func reflectSize(v any) uintptr {
	switch p := v.(type) {
	case rmsnormParams:
		return unsafe.Sizeof(p)
	case matvecParams:
		return unsafe.Sizeof(p)
	case matmulParams:
		return unsafe.Sizeof(p)
	case elementwiseParams:
		return unsafe.Sizeof(p)
	case embeddingParams:
		return unsafe.Sizeof(p)
	case argmaxParams:
		return unsafe.Sizeof(p)
	case copyParams:
		return unsafe.Sizeof(p)
	}
	panic(fmt.Sprintf("reflectSize: add %T", v))
}

// TestEveryShaderCompiles renders and compiles each shader once with
// representative variables, so a broken template fails here by name.
func TestEveryShaderHasParams(t *testing.T) {
	for _, name := range wgsl.Names() {
		if _, ok := paramsStructs[name]; !ok && !strings.HasPrefix(name, "attention") && !strings.HasPrefix(name, "qkv") {
			t.Errorf("shader %s has no entry in paramsStructs", name)
		}
	}
}

func TestGroups1D(t *testing.T) {
	for _, n := range []int{1, 65535, 65536, 70001, 131071, 1 << 24} {
		g := Groups1D(n)
		total := int(g.X) * int(g.Y) * int(g.Z)
		if g.X > MaxGroupsPerDim || g.Y > MaxGroupsPerDim || total < n || total-n >= int(g.X) {
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
	forEachBackend(t, "groups1d", func(t *testing.T, d *Device) {
		const n = 70001
		k := must[*Kernel](t)(d.KernelSource("groups1d", src, "main"))
		g := Groups1D(n)
		if g.Y < 2 {
			t.Fatalf("Groups1D(%d) = %+v is not 2-D", n, g)
		}
		out := poisoned(t, d, "out", n+1000)
		op := must[*Op](t)(k.Op("groups1d", [4]uint32{n}, g, Bind(out)))
		run(t, d, op)
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
	forEachBackend(t, "errors", func(t *testing.T, d *Device) {
		buf := upload(t, d, "small", make([]float32, 16))
		big := upload(t, d, "big", make([]float32, 1024))
		const good = `
struct Params { n: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) { out[g.x] = f32(p.n); }`
		k := must[*Kernel](t)(d.KernelSource("good", good, "main"))
		params := [4]uint32{}
		cases := []struct {
			name string
			run  func(t *testing.T) error
			want string
		}{
			{"wgsl syntax", func(*testing.T) error {
				_, err := d.KernelSource("bad syntax", "fn main( {", "main")
				return err
			}, "expected"},
			{"wgsl types", func(*testing.T) error {
				_, err := d.KernelSource("bad types", strings.Replace(good, "f32(p.n)", "p.n", 1), "main")
				return err
			}, "Validation"},
			{"missing entry point", func(*testing.T) error {
				_, err := d.KernelSource("good", good, "nope")
				return err
			}, "nope"},
			{"template variable", func(*testing.T) error {
				_, err := d.Kernel("rmsnorm", map[string]any{"WG": 64})
				return err
			}, "template"},
			{"unknown shader", func(*testing.T) error {
				_, err := d.Kernel("no_such_shader", nil)
				return err
			}, "no shader"},
			{"binding past the buffer", func(*testing.T) error {
				_, err := k.Op("past", params, Groups{1, 1, 1}, Binding{Buf: buf, Offset: 0, Size: 1 << 20})
				return err
			}, "does not fit"},
			{"binding offset alignment", func(*testing.T) error {
				_, err := k.Op("offset", params, Groups{1, 1, 1}, Binding{Buf: big, Offset: 4})
				return err
			}, "multiple of"},
			{"unused binding", func(*testing.T) error {
				// p is unused here, so wgpu drops binding 0 from the layout.
				k, err := d.KernelSource("no params", strings.Replace(good, "f32(p.n)", "1.0", 1), "main")
				if err != nil {
					return err
				}
				_, err = k.Op("unused", params, Groups{1, 1, 1}, Bind(buf))
				return err
			}, "unused"},
			{"binding count", func(*testing.T) error {
				_, err := k.Op("count", params, Groups{1, 1, 1}, Bind(buf), Bind(big))
				return err
			}, "Validation"},
			{"params size", func(*testing.T) error {
				_, err := k.Op("params", [3]uint32{}, Groups{1, 1, 1}, Bind(buf))
				return err
			}, "multiple of 16"},
			{"too many workgroups", func(*testing.T) error {
				_, err := k.Op("groups", params, Groups{70000, 1, 1}, Bind(buf))
				return err
			}, "Groups1D"},
			{"buffer over maxBufferSize", func(*testing.T) error {
				_, err := d.NewBuffer("huge", d.Limits().MaxBufferSize+4)
				return err
			}, "maxBufferSize"},
			{"matrix bytes", func(*testing.T) error {
				_, err := d.UploadMatrix("m", BF16, 3, 5, make([]byte, 29))
				return err
			}, "want 30"},
			{"shape vs buffer", func(*testing.T) error {
				_, err := d.RMSNorm(big, buf, buf, 4, 1024, 1e-6)
				return err
			}, "needs"},
			{"output aliases input", func(*testing.T) error {
				_, err := d.RMSNorm(big, big, buf, 1, 16, 1e-6)
				return err
			}, "same buffer"},
			{"map without MAP_READ", func(*testing.T) error {
				return mapRead(d.dev, buf.buf, 0, 64)
			}, "Validation"},
			{"released buffer", func(t *testing.T) error {
				b := must[*Buffer](t)(d.NewBuffer("gone", 64))
				b.Release()
				_, err := d.ReadF32(b, 0, 1)
				return err
			}, "released"},
			{"released op", func(t *testing.T) error {
				op := must[*Op](t)(k.Op("gone", params, Groups{1, 1, 1}, Bind(buf)))
				op.Release()
				return d.Submit(op)
			}, "released"},
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
		run(t, d, must[*Op](t)(k.Op("after", params, Groups{1, 1, 1}, Bind(big))))
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
	for _, be := range testBackends() {
		t.Run(be, func(t *testing.T) {
			d := openTestDevice(t, be)
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
			// A buffer over the 256 MiB default proves the request took.
			if got.MaxBufferSize > 300<<20 {
				b := must[*Buffer](t)(d.NewBuffer("300MiB", 300<<20))
				b.Release()
			}
		})
	}
}

// TestRecorder runs a step with ops, a copy between passes and two
// readbacks, and checks that nothing else is read back.
func TestRecorder(t *testing.T) {
	forEachBackend(t, "recorder", func(t *testing.T, d *Device) {
		a := upload(t, d, "a", []float32{1, 2, 3, 4, 5, 6, 7, 8})
		b := upload(t, d, "b", []float32{10, 20, 30, 40, 50, 60, 70, 80})
		c := poisoned(t, d, "c", 8)
		add := must[*Op](t)(d.Add(c, a, b, 8))
		t.Cleanup(add.Release)
		inplace := must[*Op](t)(d.Add(a, a, c, 8)) // a += c, after the copy below
		t.Cleanup(inplace.Release)

		r := d.NewRecorder()
		r.Run(add)
		r.Copy(b, 0, c, 0, 16) // b[0:4] = c[0:4]
		r.Run(inplace)
		rc := r.ReadF32(c, 0, 8)
		rb := r.ReadF32(b, 2, 3)
		ra := r.ReadF32(a, 0, 8)
		if r.Len() != 3 {
			t.Errorf("Len() = %d, want 3", r.Len())
		}
		if err := r.Submit(); err != nil {
			t.Fatal(err)
		}
		if r.Len() != 0 {
			t.Errorf("recorder not empty after Submit")
		}
		checkClose(t, "add", rc.F32(), []float32{11, 22, 33, 44, 55, 66, 77, 88})
		checkClose(t, "add", rb.F32(), []float32{33, 44, 50})
		checkClose(t, "add", ra.F32(), []float32{12, 24, 36, 48, 60, 72, 84, 96})
		if err := d.Submit(); err != nil {
			t.Errorf("empty step: %v", err)
		}
	})
}

// TestProfile opens a device in profile mode and checks one timing per op.
func TestProfile(t *testing.T) {
	for _, be := range testBackends() {
		t.Run(be, func(t *testing.T) {
			openTestDevice(t, be) // skips when the backend is missing
			d, err := Open(Options{Backend: be, Profile: true})
			if err != nil {
				if !hasString(mustInfo(t, be).Features, wgpu.FeatureName_TimestampQuery.String()) {
					t.Logf("%s has no timestamp queries, and Open says so: %v", be, err)
					return
				}
				t.Fatal(err)
			}
			defer d.Close()
			x := must[*Buffer](t)(d.UploadF32("x", make([]float32, 4096)))
			out := must[*Buffer](t)(d.NewBuffer("out", 4*4096))
			w := must[*Buffer](t)(d.UploadF32("w", make([]float32, 1024)))
			op1 := must[*Op](t)(d.RMSNorm(out, x, w, 4, 1024, 1e-6))
			op2 := must[*Op](t)(d.Add(x, x, out, 4096))
			r := d.NewRecorder()
			r.Run(op1, op2, op1)
			if err := r.Submit(); err != nil {
				t.Fatal(err)
			}
			tm := r.Timings()
			if len(tm) != 3 || tm[0].Label != "rmsnorm" || tm[1].Label != "add" {
				t.Fatalf("timings %+v", tm)
			}
			for _, x := range tm {
				if x.Nanos < 0 {
					t.Errorf("negative time %+v", x)
				}
			}
			t.Logf("%+v", tm)
		})
	}
}

func mustInfo(t *testing.T, backend string) AdapterInfo {
	return openTestDevice(t, backend).Info()
}

func hasString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
