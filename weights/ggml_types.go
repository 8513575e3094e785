package weights

import "strconv"

// ggmlType describes one tensor type id of the GGUF format: its ggml name,
// its block (values and bytes), and the DType this package decodes it as,
// or 0 when it only knows the size. Knowing the size of every type lets a
// reader validate and list a file whose other tensors it cannot decode.
type ggmlType struct {
	name         string
	block, bytes int
	dtype        DType
}

// ggmlTypes are the ids of ggml's enum ggml_type (ggml.h), stable across
// versions since they are stored in files.
var ggmlTypes = map[uint32]ggmlType{
	0:  {"F32", 1, 4, F32},
	1:  {"F16", 1, 2, F16},
	2:  {"Q4_0", 32, 18, Q4_0},
	3:  {"Q4_1", 32, 20, Q4_1},
	6:  {"Q5_0", 32, 22, Q5_0},
	7:  {"Q5_1", 32, 24, Q5_1},
	8:  {"Q8_0", 32, 34, Q8_0},
	9:  {"Q8_1", 32, 36, 0},
	10: {"Q2_K", 256, 84, 0},
	11: {"Q3_K", 256, 110, 0},
	12: {"Q4_K", 256, 144, Q4_K},
	13: {"Q5_K", 256, 176, Q5_K},
	14: {"Q6_K", 256, 210, Q6_K},
	15: {"Q8_K", 256, 292, 0},
	16: {"IQ2_XXS", 256, 66, 0},
	17: {"IQ2_XS", 256, 74, 0},
	18: {"IQ3_XXS", 256, 98, 0},
	19: {"IQ1_S", 256, 50, 0},
	20: {"IQ4_NL", 32, 18, 0},
	21: {"IQ3_S", 256, 110, 0},
	22: {"IQ2_S", 256, 82, 0},
	23: {"IQ4_XS", 256, 136, 0},
	24: {"I8", 1, 1, I8},
	25: {"I16", 1, 2, I16},
	26: {"I32", 1, 4, I32},
	27: {"I64", 1, 8, I64},
	28: {"F64", 1, 8, F64},
	29: {"IQ1_M", 256, 56, 0},
	30: {"BF16", 1, 2, BF16},
	34: {"TQ1_0", 256, 54, 0},
	35: {"TQ2_0", 256, 66, 0},
	39: {"MXFP4", 32, 17, 0},
}

// GGMLTypeName returns ggml's name of a GGUF tensor type id, such as
// "Q4_K", or "type 99" for an id this package does not know.
func GGMLTypeName(id uint32) string {
	if t, ok := ggmlTypes[id]; ok {
		return t.name
	}
	return "type " + strconv.FormatUint(uint64(id), 10)
}

// GGMLTypeID returns the GGUF type id of a DType, or false for a DType the
// format has no id for (BOOL and the unsigned integers).
func GGMLTypeID(d DType) (uint32, bool) {
	for id, t := range ggmlTypes {
		if t.dtype == d && d != 0 {
			return id, true
		}
	}
	return 0, false
}
