package weights

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckFitsF16(t *testing.T) {
	mk := func(dt DType, vals ...float32) *Tensor {
		var raw []byte
		switch dt {
		case F32:
			raw = F32Bytes(vals)
		case BF16:
			raw = BF16Bytes(vals)
		}
		return &Tensor{Name: "x", File: "m.safetensors", DType: dt, Shape: []int{len(vals)}, Raw: raw}
	}
	require.NoError(t, mk(F32, 1, -65504, 65519.9).CheckFitsF16(), "65519.9 rounds down to 65504")
	err := mk(F32, 1, 2, -65520).CheckFitsF16()
	require.ErrorContains(t, err, "element 2 is -65520")
	require.ErrorContains(t, err, `tensor "x"`)
	require.ErrorContains(t, mk(BF16, 0, 1e5).CheckFitsF16(), "element 1")
}
