package gpu

import "fmt"

// matvecParams mirrors Params in wgsl/matvec.wgsl.
type matvecParams struct {
	Rows  uint32 // rows in this dispatch
	Cols  uint32
	WRow0 uint32  // first row of the dispatch inside the w binding
	URow0 uint32  // same inside the up binding (swiglu)
	Out0  uint32  // first output element
	Eps   float32 // rms_norm_eps of the fused norm (NORM variants)
	_     [2]uint32
}

// epilogue names the matvec/matmul output variants of the shaders.
type epilogue string

const (
	epiStore      epilogue = "store"
	epiAdd        epilogue = "add"        // out = res + y
	epiAddInPlace epilogue = "addinplace" // out += y
	epiSwiGLU     epilogue = "swiglu"     // out = SiLU(gate·x)·(up·x)
)

// MatVec prepares out[r] = Σ_c W[r, c] · x[c] for x [cols] and out [rows],
// one op per part of w.
func (d *Device) MatVec(out *Buffer, w *Matrix, x *Buffer) ([]*Op, error) {
	return d.matvec("matvec", epiStore, out, nil, w, nil, x, nil, 0)
}

// MatVecNorm prepares out = W · RMSNorm(x; normW, eps): the norm in front
// of a projection fused into it (each workgroup computes mean(x²) itself),
// one dispatch instead of two.
func (d *Device) MatVecNorm(out *Buffer, w *Matrix, x, normW *Buffer, eps float32) ([]*Op, error) {
	if normW == nil {
		return nil, fmt.Errorf("gpu: matvec norm: norm weight is nil")
	}
	return d.matvec("matvec norm", epiStore, out, nil, w, nil, x, normW, eps)
}

// MatVecSwiGLUNorm prepares MatVecSwiGLU over RMSNorm(x; normW, eps), the
// post-attention norm fused in.
func (d *Device) MatVecSwiGLUNorm(out *Buffer, gate, up *Matrix, x, normW *Buffer, eps float32) ([]*Op, error) {
	if normW == nil {
		return nil, fmt.Errorf("gpu: matvec swiglu norm: norm weight is nil")
	}
	return d.matvec("matvec swiglu norm", epiSwiGLU, out, nil, gate, up, x, normW, eps)
}

// MatVecAdd prepares out[r] = res[r] + Σ_c W[r, c] · x[c]. res may be out
// itself: MatVecAdd(h, h, wo, attn) is the residual update h += W_o · attn.
func (d *Device) MatVecAdd(out, res *Buffer, w *Matrix, x *Buffer) ([]*Op, error) {
	if res == nil {
		return nil, fmt.Errorf("gpu: matvec add: residual buffer is nil")
	}
	if res == out {
		return d.matvec("matvec add", epiAddInPlace, out, nil, w, nil, x, nil, 0)
	}
	return d.matvec("matvec add", epiAdd, out, res, w, nil, x, nil, 0)
}

// MatVecSwiGLU prepares out[i] = SiLU(Σ_c G[i, c]·x[c]) · Σ_c U[i, c]·x[c],
// Qwen3's MLP up to the down projection, for gate and up [I, cols] and out
// [I]. For one stacked gate_up matrix [2I, cols] pass its Slice(0, I) and
// Slice(I, I).
func (d *Device) MatVecSwiGLU(out *Buffer, gate, up *Matrix, x *Buffer) ([]*Op, error) {
	return d.matvec("matvec swiglu", epiSwiGLU, out, nil, gate, up, x, nil, 0)
}

// matvecLayout picks rows per workgroup and threads per row from the number
// of loads per row: about 4 loads per thread, at most 64 threads per row, 256
// threads per workgroup.
func matvecLayout(loads int) (rows, tpr int) {
	tpr = min(64, nextPow2(ceilDiv(loads, 4)))
	if tune.matvecTPR > 0 {
		tpr = tune.matvecTPR
	}
	return 256 / tpr, tpr
}

func (d *Device) matvec(op string, epi epilogue, out, res *Buffer, w, up *Matrix, x, normW *Buffer, eps float32) ([]*Op, error) {
	bindings, mats, err := projectionIO(op, epi, out, res, x, normW, w, up, 1)
	if err != nil {
		return nil, err
	}
	cols := w.Cols
	vec := vecLoads(w.DType, cols)
	loads := cols
	wt, xt := "f32", "f32"
	switch {
	case vec && w.DType == F32:
		loads, wt, xt = cols/4, "vec4<f32>", "vec4<f32>"
	case vec:
		loads, wt, xt = cols/8, "vec4<u32>", "vec4<f32>"
	case w.DType != F32:
		wt = "u32"
	}
	wgRows, tpr := matvecLayout(loads)
	xw := 1
	if xt == "vec4<f32>" {
		xw = 4
	}
	// Binding numbers: w (and wu), x, then nw, res, out as present.
	next := 2
	if epi == epiSwiGLU {
		next = 3
	}
	bX := next
	next++
	bNW := next
	if normW != nil {
		next++
	}
	bRes := next
	if epi == epiAdd {
		next++
	}
	kern, err := d.Kernel("matvec", map[string]any{
		"DTYPE": w.DType.String(), "VEC": vec, "EPI": string(epi), "NORM": normW != nil,
		"ROWS": wgRows, "TPR": tpr, "WT": wt, "XT": xt, "XW": xw,
		"B_X": bX, "B_NW": bNW, "B_RES": bRes, "B_OUT": next,
	})
	if err != nil {
		return nil, err
	}

	var ops []*Op
	for _, s := range segments(mats...) {
		params := matvecParams{Rows: uint32(s.n), Cols: uint32(cols), WRow0: uint32(s.bufRow[0]), Out0: uint32(s.r0), Eps: eps}
		bs := []Binding{Bind(s.bufs[0])}
		if epi == epiSwiGLU {
			params.URow0 = uint32(s.bufRow[1])
			bs = append(bs, Bind(s.bufs[1]))
		}
		label := fmt.Sprintf("%s %s[%d:%d]", op, w.Label, s.r0, s.r0+s.n)
		o, err := kern.Op(label, params, Groups1D(ceilDiv(s.n, wgRows)), append(bs, bindings...)...)
		if err != nil {
			ReleaseOps(ops)
			return nil, err
		}
		ops = append(ops, o)
	}
	return ops, nil
}
