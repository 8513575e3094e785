package gpu

import "fmt"

// elementwiseParams mirrors Params in wgsl/elementwise.wgsl.
type elementwiseParams struct {
	NV uint32 // n / VEC
	_  [3]uint32
}

// Add prepares out[i] = a[i] + b[i] over n float32 values. out may be a or b
// (an in-place residual add), but not both.
func (d *Device) Add(out, a, b *Buffer, n int) (*Op, error) {
	switch {
	case out == a && out == b:
		return nil, fmt.Errorf("gpu: add: out, a and b are the same buffer")
	case out == a:
		return d.elementwise("add", "addinplace", out, nil, b, n)
	case out == b:
		return d.elementwise("add", "addinplace", out, nil, a, n)
	}
	return d.elementwise("add", "add", out, a, b, n)
}

// SwiGLU prepares out[i] = SiLU(gate[i]) · up[i] over n float32 values, the
// Qwen3 MLP activation. out may not alias gate or up.
func (d *Device) SwiGLU(out, gate, up *Buffer, n int) (*Op, error) {
	if err := distinct("swiglu", map[string]*Buffer{"out": out, "gate": gate}); err != nil {
		return nil, err
	}
	if err := distinct("swiglu", map[string]*Buffer{"out": out, "up": up}); err != nil {
		return nil, err
	}
	return d.elementwise("swiglu", "swiglu", out, gate, up, n)
}

func (d *Device) elementwise(op, variant string, out, a, b *Buffer, n int) (*Op, error) {
	var bindings []Binding
	for _, x := range []struct {
		role string
		buf  *Buffer
	}{{"a", a}, {"b", b}, {"out", out}} {
		if x.buf == nil && x.role == "a" && variant == "addinplace" {
			continue
		}
		bx, err := needF32(op, x.role, x.buf, n)
		if err != nil {
			return nil, err
		}
		bindings = append(bindings, bx)
	}
	vec, t := 1, "f32"
	if n%4 == 0 {
		vec, t = 4, "vec4<f32>"
	}
	kern, err := d.Kernel("elementwise", map[string]any{"OP": variant, "T": t})
	if err != nil {
		return nil, err
	}
	nv := n / vec
	return kern.Op(op, elementwiseParams{NV: uint32(nv)}, Groups1D(ceilDiv(nv, 256)), bindings...)
}
