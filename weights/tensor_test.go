package weights

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckFinite(t *testing.T) {
	const n = 40
	// Each dtype's encodings of NaN, +Inf and -Inf.
	specials := []struct {
		dtype         DType
		nan, pos, neg uint64
	}{
		{F32, 0x7FC00000, 0x7F800000, 0xFF800000},
		{F16, 0x7E00, 0x7C00, 0xFC00},
		{BF16, 0x7FC0, 0x7F80, 0xFF80},
		{F64, 0x7FF8000000000000, 0x7FF0000000000000, 0xFFF0000000000000},
	}
	for _, s := range specials {
		size := s.dtype.Size()
		build := func(at map[int]uint64) *Tensor {
			words := make([]uint64, n) // all zeros: finite
			for i, w := range at {
				words[i] = w
			}
			return &Tensor{Name: "x", File: "model.safetensors", DType: s.dtype, Shape: []int{n}, Raw: packed(size, words...)}
		}
		require.NoError(t, build(nil).CheckFinite(), "%v", s.dtype)
		require.EqualError(t, build(map[int]uint64{17: s.nan, 30: s.pos}).CheckFinite(),
			`weights: model.safetensors: tensor "x": NaN at element 17`, "%v", s.dtype)
		require.EqualError(t, build(map[int]uint64{3: s.pos, 17: s.nan}).CheckFinite(),
			`weights: model.safetensors: tensor "x": +Inf at element 3`, "%v", s.dtype)
		require.EqualError(t, build(map[int]uint64{39: s.neg}).CheckFinite(),
			`weights: model.safetensors: tensor "x": -Inf at element 39`, "%v", s.dtype)
	}
	ints := &Tensor{Name: "ids", DType: I32, Shape: []int{1}, Raw: packed(4, 0x7FC00000)}
	require.NoError(t, ints.CheckFinite(), "integers are always finite")
}

// TestLargeTensorsSplitAcrossGoroutines uses a tensor above the parallel
// threshold, so that chunk boundaries are exercised.
func TestLargeTensorsSplitAcrossGoroutines(t *testing.T) {
	// Four workers even on a smaller machine, so there are several chunks.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	n := parallelThreshold + 12345
	raw := make([]byte, 2*n)
	for i := range n {
		// bf16 pattern whose value is easy to state: element i is
		// (1 + (i%128)/128) × 2^((i/128)%64 - 32), never NaN or Inf.
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(127+(i/128)%64-32)<<7|uint16(i%128))
	}
	tensor := &Tensor{Name: "big", DType: BF16, Shape: []int{n}, Raw: raw}
	got, err := tensor.Float32()
	require.NoError(t, err)
	for i := range n {
		want := float32(math.Ldexp(1+float64(i%128)/128, (i/128)%64-32))
		if got[i] != want {
			require.Equal(t, want, got[i], "element %d", i)
		}
	}
	require.NoError(t, tensor.CheckFinite())

	// Two bad elements in different chunks: the earlier is reported
	// whichever goroutine finds its own first.
	binary.LittleEndian.PutUint16(raw[2*(n-5):], 0x7FC0)
	binary.LittleEndian.PutUint16(raw[2*(n/4+1):], 0xFF80)
	require.EqualError(t, tensor.CheckFinite(), `weights: tensor "big": -Inf at element `+strconv.Itoa(n/4+1))
}

func TestFloat32Into(t *testing.T) {
	tensor := &Tensor{Name: "w", File: "f.safetensors", DType: F16, Shape: []int{2, 2}, Raw: packed(2, 0x3C00, 0x0001, 0x7BFF, 0x8000)}
	dst := make([]float32, 4)
	require.NoError(t, tensor.Float32Into(dst))
	require.Equal(t, []float32{1, 0x1p-24, 65504, 0}, dst)
	require.True(t, math.Signbit(float64(dst[3])), "-0 keeps its sign")

	requireError(t, tensor.Float32Into(make([]float32, 3)), `weights: f.safetensors: tensor "w": destination has 3 elements, want 4`)
}

func TestConversionsRejectInconsistentTensors(t *testing.T) {
	// Hand-built tensors whose bytes disagree with their shape must give
	// errors, never index out of range.
	for _, tensor := range []*Tensor{
		{Name: "short", DType: F32, Shape: []int{4}, Raw: make([]byte, 15)},
		{Name: "long", DType: BF16, Shape: []int{4}, Raw: make([]byte, 9)},
		{Name: "negative", DType: I32, Shape: []int{-1}, Raw: nil},
		{Name: "overflow", DType: F32, Shape: []int{math.MaxInt / 2, 3}, Raw: nil},
		{Name: "no dtype", Shape: []int{1}, Raw: make([]byte, 4)},
	} {
		_, err := tensor.Float32()
		requireError(t, err, `tensor "`+tensor.Name+`"`)
		_, err = tensor.Int32()
		requireError(t, err, `tensor "`+tensor.Name+`"`)
		requireError(t, tensor.CheckFinite(), `tensor "`+tensor.Name+`"`)
		requireError(t, tensor.Float32Into(make([]float32, 4)), `tensor "`+tensor.Name+`"`)
	}
}

func TestInt32Range(t *testing.T) {
	big := &Tensor{Name: "ids", File: "g.safetensors", DType: I64, Shape: []int{3}, Raw: packed(8, 1, 5_000_000_000, 2)}
	_, err := big.Int32()
	require.EqualError(t, err, `weights: g.safetensors: tensor "ids": element 1 (5000000000) does not fit in int32`)

	low := &Tensor{Name: "ids", DType: I64, Shape: []int{2}, Raw: packed(8, i64(math.MinInt32), i64(math.MinInt32-1))}
	_, err = low.Int32()
	requireError(t, err, "element 1 (-2147483649) does not fit")

	huge := &Tensor{Name: "ids", DType: U64, Shape: []int{1}, Raw: packed(8, math.MaxUint64)}
	_, err = huge.Int32()
	requireError(t, err, "element 0 (18446744073709551615) does not fit")

	u32 := &Tensor{Name: "ids", DType: U32, Shape: []int{1}, Raw: packed(4, math.MaxInt32+1)}
	_, err = u32.Int32()
	requireError(t, err, "element 0 (2147483648) does not fit")
}

func TestFileLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	require.NoError(t, WriteFile(path, sampleTensors(), nil))
	f, err := Open(path)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, f.Names())
	require.Nil(t, f.Metadata())

	info, ok := f.Info("b")
	require.True(t, ok)
	require.Equal(t, TensorInfo{Name: "b", DType: F32, Shape: []int{3}, Begin: 16, End: 28}, info)

	b, err := f.Tensor("b")
	require.NoError(t, err)
	require.Equal(t, 12, cap(b.Raw), "Raw cannot be appended into the next tensor")
	v, err := b.Float32()
	require.NoError(t, err)
	require.Equal(t, []float32{-1, 0.5, 8}, v)

	_, err = f.Tensor("nope")
	require.EqualError(t, err, `weights: `+path+`: tensor "nope": not found`)
	require.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, f.Close())
	require.NoError(t, f.Close(), "second Close is a no-op")
	_, err = f.Tensor("a")
	require.EqualError(t, err, `weights: `+path+`: tensor "a": file is closed`)
}

// TestF16TensorAllValues checks the tensor conversion's fast path for normal
// halves against the general, separately verified F16ToFloat32, bit for bit
// over every encoding.
func TestF16TensorAllValues(t *testing.T) {
	words := make([]uint64, 1<<16)
	for i := range words {
		words[i] = uint64(i)
	}
	tensor := &Tensor{Name: "all", DType: F16, Shape: []int{1 << 16}, Raw: packed(2, words...)}
	got, err := tensor.Float32()
	require.NoError(t, err)
	for i, v := range got {
		want := F16ToFloat32(uint16(i))
		if math.Float32bits(v) != math.Float32bits(want) {
			require.Equal(t, math.Float32bits(want), math.Float32bits(v), "bits %#04x", i)
		}
	}
}
