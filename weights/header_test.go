package weights

import (
	"encoding/binary"
	"encoding/json"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseHeaderValid(t *testing.T) {
	file := encode(t, sampleTensors(), map[string]string{"format": "pt"})
	infos, meta, dataStart, err := ParseHeader(file, int64(len(file)))
	require.NoError(t, err)

	n := binary.LittleEndian.Uint64(file)
	require.Zero(t, n%8, "header is padded to a multiple of 8")
	require.Equal(t, int64(8+n), dataStart)
	require.Equal(t, int64(len(file))-dataStart, int64(16+12+8))
	require.Equal(t, map[string]string{"format": "pt"}, meta)
	require.Equal(t, []TensorInfo{
		{Name: "a", DType: F32, Shape: []int{2, 2}, Begin: 0, End: 16},
		{Name: "b", DType: F32, Shape: []int{3}, Begin: 16, End: 28},
		{Name: "c", DType: I32, Shape: []int{2}, Begin: 28, End: 36},
	}, infos)
	require.Equal(t, 4, infos[0].Numel())
}

func TestParseHeaderAcceptsEmptyAndScalarTensors(t *testing.T) {
	header := `{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},` +
		`"e":{"dtype":"BF16","shape":[0,3],"data_offsets":[4,4]},` +
		`"z":{"dtype":"F16","shape":[4611686018427387904,4611686018427387904,0],"data_offsets":[2,2]}}`
	file := rawFile(header, make([]byte, 4))
	infos, meta, _, err := ParseHeader(file, int64(len(file)))
	require.NoError(t, err)
	require.Nil(t, meta)
	require.Len(t, infos, 3)
	require.Equal(t, 0, infos[0].Numel(), "e") // sorted: e, s, z
	require.Equal(t, 1, infos[1].Numel(), "s")
	require.Equal(t, 0, infos[2].Numel(), "z")
}

func TestParseHeaderErrorsHaveNoPath(t *testing.T) {
	_, _, _, err := ParseHeader(rawFile(`{"x":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, []byte{0}), 65)
	require.EqualError(t, err, `weights: tensor "x": unknown dtype "Q4"`)
}

func TestOpenRejectsBadFiles(t *testing.T) {
	valid := encode(t, sampleTensors(), nil)
	n := int(binary.LittleEndian.Uint64(valid))
	withLength := func(length uint64) []byte {
		b := append([]byte(nil), valid...)
		binary.LittleEndian.PutUint64(b, length)
		return b
	}
	set := func(tensor, field string, v any) []byte {
		return editHeader(t, valid, func(h map[string]any) { entry(h, tensor)[field] = v })
	}
	drop := func(tensor, field string) []byte {
		return editHeader(t, valid, func(h map[string]any) { delete(entry(h, tensor), field) })
	}
	num := func(s string) json.Number { return json.Number(s) }
	const entryA = `"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}`

	cases := []struct {
		name   string
		file   []byte
		tensor string // tensor the message must name, if any
		want   string
	}{
		{"empty file", nil, "", "too short"},
		{"cut inside length", valid[:5], "", "too short"},
		{"cut after length", valid[:8], "", "runs past the end"},
		{"cut inside header", valid[:8+n/2], "", "runs past the end"},
		{"cut after header", valid[:8+n], "a", "run past the end of the 0-byte data"},
		{"cut inside data", valid[:8+n+20], "b", "run past the end of the 20-byte data"},
		{"cut last byte", valid[:len(valid)-1], "c", "run past the end of the 35-byte data"},
		{"header length beyond file", withLength(uint64(len(valid))), "", "runs past the end"},
		{"absurd header length", withLength(1 << 60), "", "exceeds the limit"},
		{"all-ones header length", withLength(^uint64(0)), "", "exceeds the limit"},
		{"invalid JSON", rawFile(`{"a":{"dtype":"F32",`, nil), "", "invalid JSON header"},
		{"bad JSON token", rawFile(`{"a" 1}`, nil), "", "invalid JSON header"},
		{"header is array", rawFile(`[1,2,3]`, nil), "", "not a JSON object"},
		{"header is string", rawFile(`"model"`, nil), "", "not a JSON object"},
		{"header is null", rawFile(`null`, nil), "", "not a JSON object"},
		{"empty header", rawFile(``, nil), "", "invalid JSON header"},
		{"data after object", rawFile(`{} {}`, nil), "", "data after the top-level object"},
		{"duplicate tensor", rawFile(`{`+entryA+`,`+entryA+`}`, make([]byte, 16)), "a", "appears twice in the header"},
		{"empty tensor name", rawFile(`{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), "", "empty name"},
		{"bad metadata", rawFile(`{"__metadata__":{"n":1}}`, nil), "", "__metadata__ must map strings to strings"},
		{"entry not object", rawFile(`{"a":[0,16]}`, make([]byte, 16)), "a", "entry is not a JSON object"},
		{"unknown dtype F8", set("a", "dtype", "F8_E4M3"), "a", `unknown dtype "F8_E4M3"`},
		{"unknown dtype Q4", set("b", "dtype", "Q4"), "b", `unknown dtype "Q4"`},
		{"lower-case dtype", set("b", "dtype", "f32"), "b", `unknown dtype "f32"`},
		{"dtype not string", set("a", "dtype", 4), "a", "dtype is not a string"},
		{"missing dtype", drop("a", "dtype"), "a", "missing dtype"},
		{"missing shape", drop("b", "shape"), "b", "missing shape"},
		{"shape not array", set("b", "shape", 3), "b", "shape is not an array"},
		{"negative shape", set("a", "shape", []any{-2, -2}), "a", "negative dimension -2"},
		{"fractional shape", set("b", "shape", []any{num("1.5"), 2}), "b", `shape element 0 ("1.5") is not an integer`},
		{"shape overflow", set("a", "shape", []any{num("4294967296"), num("4294967296"), 4}), "a", "too many elements"},
		{"missing offsets", drop("c", "data_offsets"), "c", "missing data_offsets"},
		{"one offset", set("c", "data_offsets", []any{28}), "c", "data_offsets [28] should be [begin, end]"},
		{"offsets beyond data", set("b", "data_offsets", []any{16, 1000}), "b", "data_offsets [16, 1000] run past the end of the 36-byte data"},
		{"offset beyond int64", set("b", "data_offsets", []any{16, num("99999999999999999999")}), "b", "not an integer in range"},
		{"negative offset", set("a", "data_offsets", []any{-4, 12}), "a", "start before the data"},
		{"reversed offsets", set("b", "data_offsets", []any{28, 16}), "b", "end before they begin"},
		{"overlap", set("b", "data_offsets", []any{8, 20}), "b", `data_offsets [8, 20] overlap tensor "a" [0, 16]`},
		{"same range", set("c", "data_offsets", []any{20, 28}), "c", `overlap tensor "b" [16, 28]`},
		{"size mismatch", set("a", "shape", []any{2, 3}), "a", "hold 16 bytes, but F32 [2 3] needs 24"},
		{"dtype size mismatch", set("a", "dtype", "F16"), "a", "hold 16 bytes, but F16 [2 2] needs 8"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeBytes(t, dir, "model.safetensors", c.file)
			f, err := Open(path)
			require.Nil(t, f)
			requireError(t, err, "weights: "+path+": ", c.want)
			t.Log(err)
			if c.tensor != "" {
				requireError(t, err, `tensor "`+c.tensor+`": `)
			} else {
				require.NotContains(t, err.Error(), "tensor \"")
			}
			// The pure parser agrees with Open.
			_, _, _, perr := ParseHeader(c.file, int64(len(c.file)))
			requireError(t, perr, c.want)
		})
	}
}

func TestOpenMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.safetensors")
	_, err := Open(path)
	requireError(t, err, "weights: "+path+": ")
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.Equal(t, 1, strings.Count(err.Error(), path), "the path is not repeated")
}

func TestOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir)
	requireError(t, err, "weights: "+dir+": ")
}

// A hostile tensor name must not break the one-line message format.
func TestErrorQuotesTensorName(t *testing.T) {
	file := rawFile(`{"bad\nname":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, []byte{0})
	_, _, _, err := ParseHeader(file, int64(len(file)))
	require.EqualError(t, err, `weights: tensor "bad\nname": unknown dtype "Q4"`)
}
