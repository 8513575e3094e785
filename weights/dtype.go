package weights

import (
	"fmt"
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

func (d DType) valid() bool { return d >= F32 && d <= BOOL }

// String returns the safetensors name of the type, such as "BF16".
func (d DType) String() string {
	if !d.valid() {
		return "DType(" + strconv.Itoa(int(d)) + ")"
	}
	return dtypeNames[d]
}

// Size returns the number of bytes of one element, or 0 for an invalid type.
func (d DType) Size() int {
	if !d.valid() {
		return 0
	}
	return dtypeSizes[d]
}

// IsFloat reports whether the type is a floating-point type, that is,
// whether [Tensor.Float32] accepts it.
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
