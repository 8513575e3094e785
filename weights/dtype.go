package weights

import (
	"fmt"
	"math"
	"strconv"
)

// DType is the element type of a tensor. The zero value is not a valid type.
type DType int

// The element types of the safetensors format that this package accepts.
// Others (for example the FP8 types "F8_E4M3" and "F8_E5M2") are rejected by
// [ParseDType] and therefore by [Open].
const (
	F32 DType = iota + 1
	F16
	BF16
	F64
	I32
	I64
	I16
	I8
	U8
	U16
	U32
	U64
	BOOL

	// Block-quantized types of the GGUF format (ggml's names). A tensor of
	// one of these is stored as rows of blocks: each block packs BlockSize
	// consecutive values of a row into BlockBytes bytes. They have no
	// safetensors name, so ParseDType never returns them.
	Q4_0
	Q4_1
	Q5_0
	Q5_1
	Q8_0
	Q4_K
	Q5_K
	Q6_K
)

var dtypeNames = [...]string{
	F32:  "F32",
	F16:  "F16",
	BF16: "BF16",
	F64:  "F64",
	I32:  "I32",
	I64:  "I64",
	I16:  "I16",
	I8:   "I8",
	U8:   "U8",
	U16:  "U16",
	U32:  "U32",
	U64:  "U64",
	BOOL: "BOOL",
	Q4_0: "Q4_0",
	Q4_1: "Q4_1",
	Q5_0: "Q5_0",
	Q5_1: "Q5_1",
	Q8_0: "Q8_0",
	Q4_K: "Q4_K",
	Q5_K: "Q5_K",
	Q6_K: "Q6_K",
}

var dtypeSizes = [...]int{
	F32:  4,
	F16:  2,
	BF16: 2,
	F64:  8,
	I32:  4,
	I64:  8,
	I16:  2,
	I8:   1,
	U8:   1,
	U16:  2,
	U32:  4,
	U64:  8,
	BOOL: 1,
}

// quantBlocks gives each quantized type its block: values per block and
// bytes per block, as ggml's block structs lay them out.
var quantBlocks = [...]struct{ size, bytes int }{
	Q4_0: {32, 18},   // f16 d, 16 bytes of 4-bit values
	Q4_1: {32, 20},   // f16 d, f16 m, 16 bytes of 4-bit values
	Q5_0: {32, 22},   // f16 d, 4 bytes of fifth bits, 16 bytes of nibbles
	Q5_1: {32, 24},   // f16 d, f16 m, fifth bits, nibbles
	Q8_0: {32, 34},   // f16 d, 32 int8 values
	Q4_K: {256, 144}, // f16 d, f16 dmin, 12 bytes of 6-bit scales and mins, 128 bytes of nibbles
	Q5_K: {256, 176}, // as Q4_K plus 32 bytes of fifth bits
	Q6_K: {256, 210}, // 128 bytes low nibbles, 64 bytes high 2 bits, 16 int8 scales, f16 d
}

func (d DType) valid() bool { return d >= F32 && d <= Q6_K }

// IsQuantized reports whether the type is one of the GGUF block types.
func (d DType) IsQuantized() bool { return d >= Q4_0 && d <= Q6_K }

// BlockSize returns how many consecutive values of a row one block holds:
// 1 for the plain types, 32 or 256 for the quantized ones, 0 for an
// invalid type.
func (d DType) BlockSize() int {
	switch {
	case d.IsQuantized():
		return quantBlocks[d].size
	case d.valid():
		return 1
	}
	return 0
}

// BlockBytes returns the bytes of one block: the element size for the
// plain types, 0 for an invalid type.
func (d DType) BlockBytes() int {
	switch {
	case d.IsQuantized():
		return quantBlocks[d].bytes
	case d.valid():
		return dtypeSizes[d]
	}
	return 0
}

// DataBytes returns the bytes a tensor of this type and (Hugging Face,
// row-major) shape occupies. For a quantized type the last dimension, the
// row, must be a whole number of blocks. It reports false for an invalid
// type, a negative dimension, a partial block or an overflow.
func (d DType) DataBytes(shape []int) (int, bool) {
	bs, bb := d.BlockSize(), d.BlockBytes()
	n, ok := numel(shape)
	if bs == 0 || !ok {
		return 0, false
	}
	if bs > 1 && (len(shape) == 0 || shape[len(shape)-1]%bs != 0) {
		return 0, false
	}
	blocks := n / bs
	if blocks > math.MaxInt/bb {
		return 0, false
	}
	return blocks * bb, true
}

// String returns the safetensors name of the type, such as "BF16".
func (d DType) String() string {
	if !d.valid() {
		return "DType(" + strconv.Itoa(int(d)) + ")"
	}
	return dtypeNames[d]
}

// Size returns the number of bytes of one element, or 0 for an invalid type
// and for the quantized types, whose elements have no size of their own
// (see BlockBytes).
func (d DType) Size() int {
	if !d.valid() || d.IsQuantized() {
		return 0
	}
	return dtypeSizes[d]
}

// IsFloat reports whether the type is a floating-point type. [Tensor.Float32]
// accepts these and the quantized types.
func (d DType) IsFloat() bool {
	return d == F32 || d == F16 || d == BF16 || d == F64
}

// ParseDType returns the type with the given safetensors name. Names are
// case-sensitive, as in the format. The error, `unknown dtype "Q4"`, has no
// package prefix because it is meant to be wrapped with the file and tensor
// it came from.
func ParseDType(s string) (DType, error) {
	for d := F32; d <= BOOL; d++ {
		if dtypeNames[d] == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown dtype %q", s)
}
