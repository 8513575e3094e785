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
// to f32 and compute in f32), or one of the GGUF block types (Q4_0, Q4_1,
// Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K), each row Cols/BlockSize blocks in
// the layout of wgsl/lib_quant.wgsl (the format's own bytes, each block
// padded to whole u32 words; see PackBlocks). It is split by rows into
// parts, each in its own buffer, so that no binding exceeds the device's
// maxStorageBufferBindingSize (Qwen3's 151936 × 1024 bf16 embedding is
// 311 MB, against 128 MiB on lavapipe). Kernels run one dispatch per part.
//
// A stack of matrices of different types (a GGUF's q, k and v projections,
// Q4_K and Q6_K in llama.cpp's Q4_K_M recipe) keeps each type in parts of
// its own: DType is then 0 and each part says its type.
type Matrix struct {
	Label string
	Rows  int
	Cols  int
	DType weights.DType // the type of every part; 0 when they differ
	Parts []MatrixPart
}

// MatrixPart holds rows [Row0, Row0+Rows) of its Matrix, starting at row
// BufRow of Buf (0 except in views made by Slice), of type DType.
type MatrixPart struct {
	Buf    *gpu.Buffer
	Row0   int
	Rows   int
	BufRow int
	DType  weights.DType
}

// gpuDType reports whether the kernels read matrices of dt.
func gpuDType(dt weights.DType) bool {
	return dt == weights.F32 || dt == weights.BF16 || dt == weights.F16 || dt.IsQuantized()
}

// rowBytes is the size on the device of one row of cols elements of dt.
func rowBytes(dt weights.DType, cols int) int {
	if dt.IsQuantized() {
		return cols / dt.BlockSize() * gpuBlockBytes(dt)
	}
	return cols * dt.Size()
}

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
// little-endian elements in row-major order (as in a safetensors file), or
// for a block type its blocks as in a GGUF file (rows of cols/BlockSize
// blocks), which are padded here to the kernels' layout.
func UploadMatrix(s *gpu.Scope, label string, dt weights.DType, rows, cols int, raw []byte) (*Matrix, error) {
	return UploadStack(s, label, cols, MatrixPiece{DType: dt, Rows: rows, Raw: raw})
}

// MatrixPiece is a run of rows of a stacked matrix, all of one type, in
// the file's bytes (see UploadMatrix).
type MatrixPiece struct {
	DType weights.DType
	Rows  int
	Raw   []byte
}

// UploadStack uploads the row-wise concatenation of pieces as one matrix
// (q, k and v stacked; gate and up stacked). Pieces of one type share
// parts; a change of type starts a new part.
func UploadStack(s *gpu.Scope, label string, cols int, pieces ...MatrixPiece) (*Matrix, error) {
	m := &Matrix{Label: label, Cols: cols}
	if len(pieces) == 0 || cols <= 0 {
		return nil, fmt.Errorf("matrix %q: no rows or %d columns", label, cols)
	}
	// Merge runs of one type, so that they split into parts as one matrix.
	var runs []MatrixPiece
	for _, p := range pieces {
		if !gpuDType(p.DType) {
			return nil, fmt.Errorf("matrix %q: the GPU kernels do not read %v", label, p.DType)
		}
		if p.Rows <= 0 {
			return nil, fmt.Errorf("matrix %q: shape [%d, %d]", label, p.Rows, cols)
		}
		if bs := p.DType.BlockSize(); cols%bs != 0 {
			return nil, fmt.Errorf("matrix %q [%d, %d] %v: rows are not whole blocks of %d", label, p.Rows, cols, p.DType, bs)
		}
		want, _ := p.DType.DataBytes([]int{p.Rows, cols})
		if len(p.Raw) != want {
			return nil, fmt.Errorf("matrix %q [%d, %d] %s: %d bytes, want %d", label, p.Rows, cols, p.DType, len(p.Raw), want)
		}
		if n := len(runs); n > 0 && runs[n-1].DType == p.DType {
			runs[n-1].Rows += p.Rows
			runs[n-1].Raw = append(runs[n-1].Raw[:len(runs[n-1].Raw):len(runs[n-1].Raw)], p.Raw...)
			continue
		}
		runs = append(runs, p)
	}
	m.DType = runs[0].DType
	for _, r := range runs {
		if r.DType != m.DType {
			m.DType = 0
		}
		per, err := partRows(s.Device(), r.Rows, cols, r.DType)
		if err != nil {
			return nil, fmt.Errorf("matrix %q: %w", label, err)
		}
		raw := r.Raw
		if r.DType.IsQuantized() {
			raw = PackBlocks(r.DType, raw)
		}
		if err := uploadParts(s, m, r.DType, r.Rows, raw, per); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// uploadParts appends rows [m.Rows, m.Rows+rows) of type dt to m in parts
// of per rows (tests force small parts); raw is in the device layout.
func uploadParts(s *gpu.Scope, m *Matrix, dt weights.DType, rows int, raw []byte, per int) error {
	rb := rowBytes(dt, m.Cols)
	base := m.Rows
	for r0 := 0; r0 < rows; r0 += per {
		n := min(per, rows-r0)
		name := m.Label
		if per < rows || base > 0 {
			name = fmt.Sprintf("%s[%d:%d]", m.Label, base+r0, base+r0+n)
		}
		buf, err := s.Upload(name, raw[r0*rb:(r0+n)*rb])
		if err != nil {
			return err
		}
		m.Parts = append(m.Parts, MatrixPart{Buf: buf, Row0: base + r0, Rows: n, DType: dt})
	}
	m.Rows += rows
	return nil
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
	v := &Matrix{Label: fmt.Sprintf("%s[%d:%d]", m.Label, row0, row0+rows), Rows: rows, Cols: m.Cols}
	for _, p := range m.Parts {
		lo, hi := max(p.Row0, row0), min(p.Row0+p.Rows, row0+rows)
		if lo >= hi {
			continue
		}
		v.Parts = append(v.Parts, MatrixPart{Buf: p.Buf, Row0: lo - row0, Rows: hi - lo, BufRow: p.BufRow + lo - p.Row0, DType: p.DType})
	}
	v.DType = v.Parts[0].DType
	for _, p := range v.Parts {
		if p.DType != v.DType {
			v.DType = 0
		}
	}
	return v, nil
}

// Bytes returns the device memory the matrix takes.
func (m *Matrix) Bytes() uint64 {
	n := uint64(0)
	for _, p := range m.Parts {
		n += uint64(p.Rows) * uint64(rowBytes(p.DType, m.Cols))
	}
	return n
}

// Types lists the types of the matrix's parts, each once, in order.
func (m *Matrix) Types() []weights.DType {
	var ts []weights.DType
	for _, p := range m.Parts {
		if !slices.Contains(ts, p.DType) {
			ts = append(ts, p.DType)
		}
	}
	return ts
}

// check validates a matrix argument.
func (m *Matrix) check(role string) error {
	if m == nil {
		return fmt.Errorf("%s matrix is nil", role)
	}
	if m.Rows <= 0 || m.Cols <= 0 || len(m.Parts) == 0 {
		return fmt.Errorf("%s matrix %q [%d, %d] is empty", role, m.Label, m.Rows, m.Cols)
	}
	covered := 0
	for _, p := range m.Parts {
		if p.Buf == nil {
			return fmt.Errorf("%s matrix %q has a part without a buffer", role, m.Label)
		}
		if !gpuDType(p.DType) || m.Cols%p.DType.BlockSize() != 0 || (m.DType != 0 && p.DType != m.DType) {
			return fmt.Errorf("%s matrix %q [%d, %d]: a part of type %v, which the kernels do not read here", role, m.Label, m.Rows, m.Cols, p.DType)
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
	bufs   []*gpu.Buffer   // per matrix: the buffer holding the rows
	bufRow []int           // per matrix: the first row of the segment inside it
	dts    []weights.DType // per matrix: the type of those rows
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
					s.dts = append(s.dts, p.DType)
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
