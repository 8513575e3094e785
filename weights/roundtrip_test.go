package weights

import (
	"bytes"
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// packed builds little-endian bytes from unsigned words of the given width,
// so each dtype's test data is spelled out as explicit bit patterns.
func packed(width int, words ...uint64) []byte {
	var b []byte
	for _, w := range words {
		switch width {
		case 1:
			b = append(b, byte(w))
		case 2:
			b = binary.LittleEndian.AppendUint16(b, uint16(w))
		case 4:
			b = binary.LittleEndian.AppendUint32(b, uint32(w))
		case 8:
			b = binary.LittleEndian.AppendUint64(b, w)
		}
	}
	return b
}

func i64(v int64) uint64 { return uint64(v) }

func TestRoundTripEveryDType(t *testing.T) {
	// The same six float values, exactly representable in every float
	// type, spelled in each type's encoding.
	floats := []float32{1, -2, 0.5, 3.25, 0, 256}
	cases := []struct {
		dtype  DType
		data   []byte
		floats []float32 // Float32 result, or nil if it must fail
		ints   []int32   // Int32 result, or nil if it must fail
	}{
		{F32, packed(4, 0x3F800000, 0xC0000000, 0x3F000000, 0x40500000, 0, 0x43800000), floats, nil},
		{F16, packed(2, 0x3C00, 0xC000, 0x3800, 0x4280, 0, 0x5C00), floats, nil},
		{BF16, packed(2, 0x3F80, 0xC000, 0x3F00, 0x4050, 0, 0x4380), floats, nil},
		{F64, packed(8, 0x3FF0000000000000, 0xC000000000000000, 0x3FE0000000000000, 0x400A000000000000, 0, 0x4070000000000000), floats, nil},
		{I32, packed(4, 1, i64(-2), 7, 300, 0, i64(-100000)), nil, []int32{1, -2, 7, 300, 0, -100000}},
		{I64, packed(8, 1, i64(-2), 7, 300, 0, i64(math.MinInt32)), nil, []int32{1, -2, 7, 300, 0, math.MinInt32}},
		{I16, packed(2, 1, i64(-2), 7, 300, 0, i64(-32768)), nil, []int32{1, -2, 7, 300, 0, -32768}},
		{I8, packed(1, 1, i64(-2), 7, 100, 0, i64(-128)), nil, []int32{1, -2, 7, 100, 0, -128}},
		{U8, packed(1, 1, 2, 7, 255, 0, 128), nil, []int32{1, 2, 7, 255, 0, 128}},
		{U16, packed(2, 1, 2, 7, 65535, 0, 300), nil, []int32{1, 2, 7, 65535, 0, 300}},
		{U32, packed(4, 1, 2, 7, math.MaxInt32, 0, 300), nil, []int32{1, 2, 7, math.MaxInt32, 0, 300}},
		{U64, packed(8, 1, 2, 7, math.MaxInt32, 0, 300), nil, []int32{1, 2, 7, math.MaxInt32, 0, 300}},
		{BOOL, packed(1, 1, 0, 1, 1, 0, 0), nil, nil},
	}
	var tensors []WriteTensor
	for _, c := range cases {
		require.Len(t, c.data, 6*c.dtype.Size(), "%v test data", c.dtype)
		tensors = append(tensors, WriteTensor{Name: "t." + c.dtype.String(), DType: c.dtype, Shape: []int{2, 3}, Data: c.data})
	}
	tensors = append(tensors,
		WriteTensor{Name: "scalar", DType: F32, Data: packed(4, 0x40490FDB)}, // float32(pi)
		WriteTensor{Name: "empty", DType: BF16, Shape: []int{0, 4}},
	)
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	meta := map[string]string{"format": "pt", "note": "round trip"}
	require.NoError(t, WriteFile(path, tensors, meta))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, path, f.Path())
	require.Equal(t, meta, f.Metadata())
	require.Len(t, f.Names(), len(cases)+2)

	c, err := OpenCheckpoint(dir)
	require.NoError(t, err)
	defer c.Close()
	for _, tc := range cases {
		name := "t." + tc.dtype.String()
		tensor, err := c.Get(name, 2, 3)
		require.NoError(t, err, name)
		require.Equal(t, tc.dtype, tensor.DType)
		require.Equal(t, path, tensor.File)
		require.Equal(t, 6, tensor.Numel())
		require.Equal(t, tc.data, tensor.Raw, name)

		fs, err := tensor.Float32()
		if tc.floats != nil {
			require.NoError(t, err, name)
			require.Equal(t, tc.floats, fs, name)
			require.NoError(t, tensor.CheckFinite())
		} else {
			requireError(t, err, path, `tensor "`+name+`"`, "is not a float type")
		}
		is, err := tensor.Int32()
		if tc.ints != nil {
			require.NoError(t, err, name)
			require.Equal(t, tc.ints, is, name)
		} else {
			requireError(t, err, path, `tensor "`+name+`"`, "is not an integer type")
		}
	}

	scalar, err := c.Get("scalar")
	require.NoError(t, err)
	require.Empty(t, scalar.Shape)
	require.Equal(t, 1, scalar.Numel())
	v, err := scalar.Float32()
	require.NoError(t, err)
	require.Equal(t, []float32{math.Pi}, v)

	empty, err := c.Get("empty", 0, 4)
	require.NoError(t, err)
	require.Empty(t, empty.Raw)
	v, err = empty.Float32()
	require.NoError(t, err)
	require.Empty(t, v)
}

func TestWriteLayout(t *testing.T) {
	file := encode(t, []WriteTensor{{Name: "x", DType: BF16, Shape: []int{2}, Data: BF16Bytes([]float32{1, -2})}}, nil)
	header, data := splitFile(t, file)
	// 55 bytes of JSON padded with one space to 56.
	require.Equal(t, `{"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}} `, string(header))
	require.Equal(t, []byte{0x80, 0x3F, 0x00, 0xC0}, data)
}

func TestWriteKeepsOrder(t *testing.T) {
	file := encode(t, []WriteTensor{
		{Name: "z", DType: U8, Shape: []int{1}, Data: []byte{1}},
		{Name: "a", DType: U8, Shape: []int{1}, Data: []byte{2}},
	}, map[string]string{"k": "v"})
	header, data := splitFile(t, file)
	require.Less(t, bytes.Index(header, []byte(`"__metadata__"`)), bytes.Index(header, []byte(`"z"`)))
	require.Less(t, bytes.Index(header, []byte(`"z"`)), bytes.Index(header, []byte(`"a"`)))
	require.Equal(t, []byte{1, 2}, data)
}

func TestWriteRejectsBadTensors(t *testing.T) {
	ok := WriteTensor{Name: "x", DType: F32, Shape: []int{1}, Data: F32Bytes([]float32{1})}
	cases := []struct {
		name    string
		tensors []WriteTensor
		want    string
	}{
		{"short data", []WriteTensor{{Name: "x", DType: F32, Shape: []int{2}, Data: F32Bytes([]float32{1})}}, `tensor "x": 4 bytes of data, but F32 [2] needs 8`},
		{"duplicate", []WriteTensor{ok, ok}, `tensor "x": written twice`},
		{"reserved name", []WriteTensor{{Name: "__metadata__", DType: U8, Shape: []int{0}}}, "reserved"},
		{"empty name", []WriteTensor{{DType: U8, Shape: []int{0}}}, "empty name"},
		{"no dtype", []WriteTensor{{Name: "x", Shape: []int{0}}}, `tensor "x": invalid dtype DType(0)`},
		{"negative shape", []WriteTensor{{Name: "x", DType: U8, Shape: []int{-1}}}, `tensor "x": invalid shape [-1]`},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			requireError(t, Write(&buf, c.tensors, nil), c.want)
			require.Zero(t, buf.Len(), "nothing written on invalid input")
			path := filepath.Join(dir, "bad.safetensors")
			requireError(t, WriteFile(path, c.tensors, nil), "weights: "+path+": ", c.want)
			require.NoFileExists(t, path)
		})
	}
}

func TestParseDType(t *testing.T) {
	for _, c := range []struct {
		name string
		d    DType
		size int
	}{
		{"F32", F32, 4}, {"F16", F16, 2}, {"BF16", BF16, 2}, {"F64", F64, 8},
		{"I32", I32, 4}, {"I64", I64, 8}, {"I16", I16, 2}, {"I8", I8, 1},
		{"U8", U8, 1}, {"U16", U16, 2}, {"U32", U32, 4}, {"U64", U64, 8}, {"BOOL", BOOL, 1},
	} {
		d, err := ParseDType(c.name)
		require.NoError(t, err)
		require.Equal(t, c.d, d)
		require.Equal(t, c.name, d.String())
		require.Equal(t, c.size, d.Size())
	}
	for _, bad := range []string{"F8_E4M3", "F8_E5M2", "Q4", "f32", "", "float32"} {
		_, err := ParseDType(bad)
		require.EqualError(t, err, `unknown dtype "`+bad+`"`)
	}
	require.Equal(t, "DType(0)", DType(0).String())
	require.Zero(t, DType(99).Size())
}
