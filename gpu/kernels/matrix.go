package kernels

import (
	"fmt"
	"slices"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/weights"
)

// Matrix is a row-major weight matrix [Rows, Cols] on the device, kept in
// its checkpoint's element type: F32, or BF16 and F16 packed two to a u32
// (element 2k in the low half; naga 0.13 has no f16 type, so kernels unpack
// to f32 and compute in f32). It is split by rows into parts, each in its
// own buffer, so that no binding exceeds the device's
// maxStorageBufferBindingSize (Qwen3's 151936 × 1024 bf16 embedding is
// 311 MB, against 128 MiB on lavapipe). Kernels run one dispatch per part.
type Matrix struct {
	Label string
	Rows  int
	Cols  int
	DType weights.DType
	Parts []MatrixPart
}

// MatrixPart holds rows [Row0, Row0+Rows) of its Matrix, starting at row
// BufRow of Buf (0 except in views made by Slice).
type MatrixPart struct {
	Buf    *gpu.Buffer
	Row0   int
	Rows   int
	BufRow int
}

// gpuDType reports whether the kernels read matrices of dt.
func gpuDType(dt weights.DType) bool {
	return dt == weights.F32 || dt == weights.BF16 || dt == weights.F16
}

// rowBytes is the size of one row of cols elements of dt.
func rowBytes(dt weights.DType, cols int) int { return cols * dt.Size() }

// partRows returns how many rows fit in one binding, balanced so that the
// parts come out about equal. Packed half types with an odd number of
// columns need an even row count per part so that every part starts on a
// u32 boundary.
func partRows(d *gpu.Device, rows, cols int, dt weights.DType) (int, error) {
	rb := uint64(rowBytes(dt, cols))
	limit := min(d.Limits().MaxStorageBufferBindingSize, d.Limits().MaxBufferSize)
	maxRows := int(limit / rb)
	odd := dt.Size() == 2 && cols%2 == 1
	if odd {
		maxRows &^= 1
	}
	if maxRows <= 0 {
		return 0, fmt.Errorf("one row of %d %s values does not fit in a %d-byte binding", cols, dt, limit)
	}
	parts := (rows + maxRows - 1) / maxRows
	per := (rows + parts - 1) / parts
	if odd {
		per = min(per+per%2, maxRows)
	}
	return per, nil
}

// UploadMatrix uploads a [rows, cols] matrix of dtype dt from raw, its
// little-endian elements in row-major order (as in a safetensors file).
func UploadMatrix(s *gpu.Scope, label string, dt weights.DType, rows, cols int, raw []byte) (*Matrix, error) {
	if !gpuDType(dt) {
		return nil, fmt.Errorf("matrix %q: the GPU kernels do not read %v", label, dt)
	}
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("matrix %q: shape [%d, %d]", label, rows, cols)
	}
	if want := rows * rowBytes(dt, cols); len(raw) != want {
		return nil, fmt.Errorf("matrix %q [%d, %d] %s: %d bytes, want %d", label, rows, cols, dt, len(raw), want)
	}
	per, err := partRows(s.Device(), rows, cols, dt)
	if err != nil {
		return nil, fmt.Errorf("matrix %q: %w", label, err)
	}
	return uploadParts(s, label, dt, rows, cols, raw, per)
}

// uploadParts uploads raw in parts of per rows (tests force small parts).
func uploadParts(s *gpu.Scope, label string, dt weights.DType, rows, cols int, raw []byte, per int) (*Matrix, error) {
	m := &Matrix{Label: label, Rows: rows, Cols: cols, DType: dt}
	rb := rowBytes(dt, cols)
	for r0 := 0; r0 < rows; r0 += per {
		n := min(per, rows-r0)
		name := label
		if per < rows {
			name = fmt.Sprintf("%s[%d:%d]", label, r0, r0+n)
		}
		buf, err := s.Upload(name, raw[r0*rb:(r0+n)*rb])
		if err != nil {
			return nil, err
		}
		m.Parts = append(m.Parts, MatrixPart{Buf: buf, Row0: r0, Rows: n})
	}
	return m, nil
}

// EncodeF32 converts float32 values to dt's little-endian bytes, rounding
// to nearest even.
func EncodeF32(dt weights.DType, data []float32) ([]byte, error) {
	switch dt {
	case weights.F32:
		return weights.F32Bytes(data), nil
	case weights.BF16:
		return weights.BF16Bytes(data), nil
	case weights.F16:
		return weights.F16Bytes(data), nil
	}
	return nil, fmt.Errorf("no float32 encoding to %v", dt)
}

// UploadMatrixF32 converts float32 values to dt and uploads them as a
// [rows, cols] matrix.
func UploadMatrixF32(s *gpu.Scope, label string, dt weights.DType, rows, cols int, data []float32) (*Matrix, error) {
	if len(data) != rows*cols {
		return nil, fmt.Errorf("matrix %q [%d, %d]: %d values", label, rows, cols, len(data))
	}
	raw, err := EncodeF32(dt, data)
	if err != nil {
		return nil, fmt.Errorf("matrix %q: %w", label, err)
	}
	return UploadMatrix(s, label, dt, rows, cols, raw)
}

// Slice returns a view of rows [row0, row0+rows) of m that shares m's
// buffers, e.g. the gate and up halves of a stacked gate_up matrix.
func (m *Matrix) Slice(row0, rows int) (*Matrix, error) {
	if row0 < 0 || rows <= 0 || row0+rows > m.Rows {
		return nil, fmt.Errorf("matrix %q has %d rows, cannot slice [%d, %d)", m.Label, m.Rows, row0, row0+rows)
	}
	v := &Matrix{Label: fmt.Sprintf("%s[%d:%d]", m.Label, row0, row0+rows), Rows: rows, Cols: m.Cols, DType: m.DType}
	for _, p := range m.Parts {
		lo, hi := max(p.Row0, row0), min(p.Row0+p.Rows, row0+rows)
		if lo >= hi {
			continue
		}
		v.Parts = append(v.Parts, MatrixPart{Buf: p.Buf, Row0: lo - row0, Rows: hi - lo, BufRow: p.BufRow + lo - p.Row0})
	}
	return v, nil
}

// Bytes returns the device memory the matrix takes.
func (m *Matrix) Bytes() uint64 { return uint64(m.Rows) * uint64(rowBytes(m.DType, m.Cols)) }

// check validates a matrix argument.
func (m *Matrix) check(role string) error {
	if m == nil {
		return fmt.Errorf("%s matrix is nil", role)
	}
	if !gpuDType(m.DType) || m.Rows <= 0 || m.Cols <= 0 || len(m.Parts) == 0 {
		return fmt.Errorf("%s matrix %q [%d, %d] %v is empty or of a type the kernels do not read", role, m.Label, m.Rows, m.Cols, m.DType)
	}
	covered := 0
	for _, p := range m.Parts {
		if p.Buf == nil {
			return fmt.Errorf("%s matrix %q has a part without a buffer", role, m.Label)
		}
		if p.Row0 != covered {
			return fmt.Errorf("%s matrix %q: parts do not tile its rows", role, m.Label)
		}
		covered += p.Rows
	}
	if covered != m.Rows {
		return fmt.Errorf("%s matrix %q: parts cover %d of %d rows", role, m.Label, covered, m.Rows)
	}
	return nil
}

// segment is a row range [r0, r0+n) of a product that lies inside one part
// of every matrix involved; it becomes one dispatch.
type segment struct {
	r0, n  int
	bufs   []*gpu.Buffer // per matrix: the buffer holding the rows
	bufRow []int         // per matrix: the first row of the segment inside it
}

// segments cuts [0, rows) at every part boundary of every matrix in ms
// (which all have the same row count). Matrices uploaded with the same shape
// and dtype split alike, so this is normally just the parts of ms[0].
func segments(ms ...*Matrix) []segment {
	cuts := []int{}
	for _, m := range ms {
		for _, p := range m.Parts {
			cuts = append(cuts, p.Row0)
		}
	}
	cuts = append(cuts, ms[0].Rows)
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	var segs []segment
	for i := 0; i+1 < len(cuts); i++ {
		s := segment{r0: cuts[i], n: cuts[i+1] - cuts[i]}
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

// vecLoads reports whether rows of cols elements of dt can be read in
// 16-byte loads: every row then starts on a 16-byte boundary.
func vecLoads(dt weights.DType, cols int) bool {
	if dt == weights.F32 {
		return cols%4 == 0
	}
	return cols%8 == 0
}
