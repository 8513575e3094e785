package gpu

import (
	"fmt"
	"sort"
)

// Shared by the matvec, matmul and embedding wrappers: walking matrices that
// are split into parts.

// segment is a row range [r0, r0+n) of a product that lies inside one part
// of every matrix involved; it becomes one dispatch.
type segment struct {
	r0, n  int
	bufs   []*Buffer // per matrix: the buffer holding the rows
	bufRow []int     // per matrix: the first row of the segment inside it
}

// segments cuts [0, rows) at every part boundary of every matrix in ms
// (which all have the same row count). Matrices uploaded with the same shape
// and dtype split alike, so this is normally just the parts of ms[0].
func segments(ms ...*Matrix) []segment {
	cuts := map[int]bool{ms[0].Rows: true}
	for _, m := range ms {
		for _, p := range m.Parts {
			cuts[p.Row0] = true
		}
	}
	bounds := mapsKeys(cuts)
	sort.Ints(bounds)
	var segs []segment
	for i := 0; i+1 < len(bounds); i++ {
		s := segment{r0: bounds[i], n: bounds[i+1] - bounds[i]}
		for _, m := range ms {
			for _, p := range m.Parts {
				if p.Row0 <= s.r0 && s.r0 < p.Row0+p.Rows {
					s.bufs = append(s.bufs, p.Buf)
					s.bufRow = append(s.bufRow, p.BufRow+s.r0-p.Row0)
					break
				}
			}
		}
		segs = append(segs, s)
	}
	return segs
}

// checkMatrix validates a matrix argument.
func checkMatrix(op, role string, m *Matrix) error {
	if m == nil {
		return fmt.Errorf("gpu: %s: %s matrix is nil", op, role)
	}
	if !m.DType.valid() || m.Rows <= 0 || m.Cols <= 0 || len(m.Parts) == 0 {
		return fmt.Errorf("gpu: %s: %s matrix %q [%d, %d] %v is empty or released", op, role, m.Label, m.Rows, m.Cols, m.DType)
	}
	covered := 0
	for _, p := range m.Parts {
		if p.Buf == nil || p.Buf.buf == nil {
			return fmt.Errorf("gpu: %s: %s matrix %q was released", op, role, m.Label)
		}
		if p.Row0 != covered {
			return fmt.Errorf("gpu: %s: %s matrix %q: parts do not tile its rows", op, role, m.Label)
		}
		covered += p.Rows
	}
	if covered != m.Rows {
		return fmt.Errorf("gpu: %s: %s matrix %q: parts cover %d of %d rows", op, role, m.Label, covered, m.Rows)
	}
	return nil
}

// checkPair validates the gate and up matrices of a SwiGLU product.
func checkPair(op string, gate, up *Matrix) error {
	if err := checkMatrix(op, "gate", gate); err != nil {
		return err
	}
	if err := checkMatrix(op, "up", up); err != nil {
		return err
	}
	if gate.Rows != up.Rows || gate.Cols != up.Cols || gate.DType != up.DType {
		return fmt.Errorf("gpu: %s: gate [%d, %d] %v and up [%d, %d] %v differ", op, gate.Rows, gate.Cols, gate.DType, up.Rows, up.Cols, up.DType)
	}
	return nil
}

// notIn refuses an output buffer that is also one of the matrices' buffers.
func notIn(op string, out *Buffer, ms ...*Matrix) error {
	for _, m := range ms {
		for _, p := range m.Parts {
			if p.Buf == out {
				return fmt.Errorf("gpu: %s: the output buffer %q is part of matrix %q", op, out.label, m.Label)
			}
		}
	}
	return nil
}

// vecLoads reports whether rows of cols elements of dt can be read in
// 16-byte loads: every row then starts on a 16-byte boundary.
func vecLoads(dt DType, cols int) bool {
	if dt == F32 {
		return cols%4 == 0
	}
	return cols%8 == 0
}

// projectionIO checks the matrices and activation buffers of a matvec or
// matmul over T tokens (T = 1 for a matvec) and returns the activation
// bindings in shader order: x, the fused norm's weight if any, res (the
// add epilogue), out. It also returns the matrices the op reads.
func projectionIO(op string, epi epilogue, out, res, x, normW *Buffer, w, up *Matrix, T int) ([]Binding, []*Matrix, error) {
	mats := []*Matrix{w}
	if epi == epiSwiGLU {
		if err := checkPair(op, w, up); err != nil {
			return nil, nil, err
		}
		mats = append(mats, up)
	} else if err := checkMatrix(op, "weight", w); err != nil {
		return nil, nil, err
	}
	rows, cols := w.Rows, w.Cols
	bx, err := needF32(op, "x", x, T*cols)
	if err != nil {
		return nil, nil, err
	}
	bo, err := needF32(op, "out", out, T*rows)
	if err != nil {
		return nil, nil, err
	}
	bindings := []Binding{bx}
	if normW != nil {
		bn, err := needF32(op, "norm weight", normW, cols)
		if err != nil {
			return nil, nil, err
		}
		bindings = append(bindings, bn)
		if err := distinct(op, map[string]*Buffer{"out": out, "norm weight": normW}); err != nil {
			return nil, nil, err
		}
	}
	if epi == epiAdd {
		br, err := needF32(op, "res", res, T*rows)
		if err != nil {
			return nil, nil, err
		}
		bindings = append(bindings, br)
	}
	bindings = append(bindings, bo)
	if err := distinct(op, map[string]*Buffer{"out": out, "x": x}); err != nil {
		return nil, nil, err
	}
	if err := distinct(op, map[string]*Buffer{"res": res, "x": x}); err != nil {
		return nil, nil, err
	}
	if err := notIn(op, out, mats...); err != nil {
		return nil, nil, err
	}
	return bindings, mats, nil
}
