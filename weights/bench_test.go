package weights

import (
	"testing"
)

// benchmarkFloat32 measures conversion of a 4M-element tensor, large
// enough to take the parallel path.
func benchmarkFloat32(b *testing.B, dtype DType) {
	const n = 4 << 20
	tensor := &Tensor{Name: "w", DType: dtype, Shape: []int{n}, Raw: make([]byte, n*dtype.Size())}
	for i := range tensor.Raw {
		tensor.Raw[i] = byte(i * 7 % 61) // small exponents: no NaN or Inf
	}
	dst := make([]float32, n)
	b.SetBytes(int64(len(tensor.Raw)))
	for b.Loop() {
		if err := tensor.Float32Into(dst); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFloat32FromF32(b *testing.B)  { benchmarkFloat32(b, F32) }
func BenchmarkFloat32FromBF16(b *testing.B) { benchmarkFloat32(b, BF16) }
func BenchmarkFloat32FromF16(b *testing.B)  { benchmarkFloat32(b, F16) }

func BenchmarkCheckFiniteBF16(b *testing.B) {
	const n = 4 << 20
	tensor := &Tensor{Name: "w", DType: BF16, Shape: []int{n}, Raw: make([]byte, 2*n)}
	b.SetBytes(int64(len(tensor.Raw)))
	for b.Loop() {
		if err := tensor.CheckFinite(); err != nil {
			b.Fatal(err)
		}
	}
}
