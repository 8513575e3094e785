package gpu

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DType is the element type of a weight matrix as stored on the device.
// BF16 and F16 stay packed two to a u32 (element 2k in the low half); naga
// 0.13 has no f16 type, so kernels unpack them to f32 and compute in f32.
type DType int

const (
	F32 DType = iota
	BF16
	F16
)

func (t DType) String() string {
	switch t {
	case F32:
		return "f32"
	case BF16:
		return "bf16"
	case F16:
		return "f16"
	}
	return fmt.Sprintf("DType(%d)", int(t))
}

// Size returns the bytes one element takes.
func (t DType) Size() int {
	if t == F32 {
		return 4
	}
	return 2
}

func (t DType) valid() bool { return t == F32 || t == BF16 || t == F16 }

// Matrix is a row-major weight matrix [Rows, Cols] split by rows into parts,
// each in its own buffer, so that no binding exceeds the device's
// maxStorageBufferBindingSize (Qwen3's 151936 × 1024 bf16 embedding is 311 MB,
// against 128 MiB on lavapipe). Kernels run one dispatch per part.
type Matrix struct {
	Label string
	Rows  int
	Cols  int
	DType DType
	Parts []MatrixPart
	view  bool // a Slice: the buffers belong to another Matrix
}

// MatrixPart holds rows [Row0, Row0+Rows) of its Matrix, starting at row
// BufRow of Buf (0 except in views made by Slice).
type MatrixPart struct {
	Buf    *Buffer
	Row0   int
	Rows   int
	BufRow int
}

// partRows returns how many rows of rowBytes fit in one binding, balanced so
// that the parts come out about equal. Packed half types with an odd number
// of columns need an even row count per part so that every part starts on a
// u32 boundary.
func (d *Device) partRows(rows, cols int, dt DType) (int, error) {
	rowBytes := uint64(cols) * uint64(dt.Size())
	limit := min(d.limits.MaxStorageBufferBindingSize, d.limits.MaxBufferSize)
	maxRows := int(limit / rowBytes)
	if dt != F32 && cols%2 == 1 {
		maxRows &^= 1
	}
	if maxRows <= 0 {
		return 0, fmt.Errorf("one row of %d %s values does not fit in a %d-byte binding", cols, dt, limit)
	}
	parts := (rows + maxRows - 1) / maxRows
	per := (rows + parts - 1) / parts
	if dt != F32 && cols%2 == 1 {
		per = min(per+per%2, maxRows)
	}
	return per, nil
}

// UploadMatrix uploads a [rows, cols] matrix of dtype dt from raw, the
// little-endian elements in row-major order (as in a safetensors file).
func (d *Device) UploadMatrix(label string, dt DType, rows, cols int, raw []byte) (*Matrix, error) {
	if !dt.valid() {
		return nil, fmt.Errorf("gpu: matrix %q: unknown dtype %v", label, dt)
	}
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("gpu: matrix %q: shape [%d, %d]", label, rows, cols)
	}
	if want := rows * cols * dt.Size(); len(raw) != want {
		return nil, fmt.Errorf("gpu: matrix %q [%d, %d] %s: %d bytes, want %d", label, rows, cols, dt, len(raw), want)
	}
	per, err := d.partRows(rows, cols, dt)
	if err != nil {
		return nil, fmt.Errorf("gpu: matrix %q: %w", label, err)
	}
	return d.uploadParts(label, dt, rows, cols, raw, per)
}

// uploadParts uploads raw in parts of per rows (tests force small parts).
func (d *Device) uploadParts(label string, dt DType, rows, cols int, raw []byte, per int) (*Matrix, error) {
	m := &Matrix{Label: label, Rows: rows, Cols: cols, DType: dt}
	rowBytes := cols * dt.Size()
	for r0 := 0; r0 < rows; r0 += per {
		n := min(per, rows-r0)
		name := label
		if per < rows {
			name = fmt.Sprintf("%s[%d:%d]", label, r0, r0+n)
		}
		buf, err := d.UploadBytes(name, raw[r0*rowBytes:(r0+n)*rowBytes])
		if err != nil {
			m.Release()
			return nil, err
		}
		m.Parts = append(m.Parts, MatrixPart{Buf: buf, Row0: r0, Rows: n})
	}
	return m, nil
}

// UploadMatrixF32 converts float32 values to dt (rounding to nearest even)
// and uploads them as a [rows, cols] matrix.
func (d *Device) UploadMatrixF32(label string, dt DType, rows, cols int, data []float32) (*Matrix, error) {
	if len(data) != rows*cols {
		return nil, fmt.Errorf("gpu: matrix %q [%d, %d]: %d values", label, rows, cols, len(data))
	}
	return d.UploadMatrix(label, dt, rows, cols, EncodeDType(dt, data))
}

// EncodeDType converts float32 values to dt's little-endian bytes, rounding
// to nearest even.
func EncodeDType(dt DType, data []float32) []byte {
	out := make([]byte, len(data)*dt.Size())
	for i, v := range data {
		switch dt {
		case BF16:
			binary.LittleEndian.PutUint16(out[2*i:], BF16Bits(v))
		case F16:
			binary.LittleEndian.PutUint16(out[2*i:], F16Bits(v))
		default:
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
	}
	return out
}

// BF16Bits rounds v to bfloat16 (nearest even) and returns its bits.
func BF16Bits(v float32) uint16 {
	b := math.Float32bits(v)
	if v != v { // keep NaN a NaN after truncation
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// BF16Value returns the float32 that bfloat16 bits h stand for.
func BF16Value(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// F16Bits rounds v to IEEE half precision (nearest even) and returns its bits.
// Values past the half range become ±Inf.
func F16Bits(v float32) uint16 {
	b := math.Float32bits(v)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23) & 0xff
	man := b & 0x7fffff
	switch {
	case exp == 0xff: // Inf or NaN
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127 > 15:
		return sign | 0x7c00
	case exp-127 >= -14: // normal half
		h := uint32(exp-127+15)<<10 | man>>13
		rest := man & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && h&1 == 1) {
			h++ // may carry into the exponent, which is still correct
		}
		return sign | uint16(h)
	case exp-127 >= -25: // subnormal half
		man |= 0x800000
		shift := uint(-14-(exp-127)) + 13
		h := man >> shift
		rest := man & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rest > half || (rest == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	return sign
}

// F16Value returns the float32 that half-precision bits h stand for.
func F16Value(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := int(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		// Subnormal: man · 2^-24.
		v := float32(man) * float32(1.0/(1<<24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | man<<13)
}

// Slice returns a view of rows [row0, row0+rows) of m that shares m's
// buffers, e.g. the gate and up halves of a stacked gate_up matrix.
// Releasing the view does nothing; m owns the buffers.
func (m *Matrix) Slice(row0, rows int) (*Matrix, error) {
	if row0 < 0 || rows <= 0 || row0+rows > m.Rows {
		return nil, fmt.Errorf("gpu: matrix %q has %d rows, cannot slice [%d, %d)", m.Label, m.Rows, row0, row0+rows)
	}
	v := &Matrix{Label: fmt.Sprintf("%s[%d:%d]", m.Label, row0, row0+rows), Rows: rows, Cols: m.Cols, DType: m.DType, view: true}
	for _, p := range m.Parts {
		lo, hi := max(p.Row0, row0), min(p.Row0+p.Rows, row0+rows)
		if lo >= hi {
			continue
		}
		v.Parts = append(v.Parts, MatrixPart{Buf: p.Buf, Row0: lo - row0, Rows: hi - lo, BufRow: p.BufRow + lo - p.Row0})
	}
	return v, nil
}

// Release frees the matrix's buffers (not for views made by Slice).
func (m *Matrix) Release() {
	if m == nil || m.view {
		return
	}
	for _, p := range m.Parts {
		p.Buf.Release()
	}
	m.Parts = nil
}

// Bytes returns the device memory the matrix takes.
func (m *Matrix) Bytes() uint64 {
	return uint64(m.Rows) * uint64(m.Cols) * uint64(m.DType.Size())
}
