package weights

import (
	"math"
	"testing"
)

// FuzzParseHeader feeds arbitrary bytes to ParseHeader as a whole file. It
// must never panic, and whatever it accepts must be safe to slice: every
// tensor inside the data section, sized by its shape, and no two tensors
// sharing a byte.
func FuzzParseHeader(f *testing.F) {
	f.Add(encode(f, sampleTensors(), map[string]string{"format": "pt"}))
	f.Add(encode(f, []WriteTensor{
		{Name: "s", DType: F64, Data: make([]byte, 8)},
		{Name: "e", DType: BOOL, Shape: []int{0, 5}},
		{Name: "h", DType: F16, Shape: []int{2, 1, 2}, Data: F16Bytes([]float32{1, 2, 3, 4})},
	}, nil))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}`, make([]byte, 6)))
	f.Add(rawFile(`{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 16})

	f.Fuzz(func(t *testing.T, data []byte) {
		fileSize := int64(len(data))
		infos, _, dataStart, err := ParseHeader(data, fileSize)
		if err != nil {
			if infos != nil || dataStart != 0 {
				t.Fatalf("error %v came with results", err)
			}
			return
		}
		if dataStart < 8 || dataStart > fileSize {
			t.Fatalf("data start %d outside the %d-byte file", dataStart, fileSize)
		}
		dataSize := fileSize - dataStart
		seen := make(map[string]bool)
		for i, ti := range infos {
			if seen[ti.Name] {
				t.Fatalf("tensor %q listed twice", ti.Name)
			}
			seen[ti.Name] = true
			if ti.Begin < 0 || ti.Begin > ti.End || ti.End > dataSize {
				t.Fatalf("tensor %q range [%d, %d] outside %d bytes of data", ti.Name, ti.Begin, ti.End, dataSize)
			}
			size := ti.DType.Size()
			if size == 0 {
				t.Fatalf("tensor %q has invalid dtype %v", ti.Name, ti.DType)
			}
			n := 1.0 // in float64 so an overflowing shape cannot hide
			for _, d := range ti.Shape {
				if d < 0 {
					t.Fatalf("tensor %q has negative dimension", ti.Name)
				}
				n *= float64(d)
			}
			if n*float64(size) != float64(ti.End-ti.Begin) || ti.Numel()*size != int(ti.End-ti.Begin) {
				t.Fatalf("tensor %q: %v %v does not fill [%d, %d]", ti.Name, ti.DType, ti.Shape, ti.Begin, ti.End)
			}
			for _, other := range infos[:i] {
				// Byte ranges intersect; an empty tensor owns no bytes, so
				// it may sit anywhere, even inside another tensor's range.
				if max(ti.Begin, other.Begin) < min(ti.End, other.End) {
					t.Fatalf("tensors %q [%d, %d] and %q [%d, %d] overlap",
						ti.Name, ti.Begin, ti.End, other.Name, other.Begin, other.End)
				}
			}
			// Slicing exactly as File.Tensor does must be in range.
			lo, hi := dataStart+ti.Begin, dataStart+ti.End
			if hi > math.MaxInt || int(hi) > len(data) {
				t.Fatalf("tensor %q slice [%d:%d] beyond %d bytes", ti.Name, lo, hi, len(data))
			}
			tensor := &Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Raw: data[lo:hi:hi]}
			if ti.DType.IsFloat() {
				if _, err := tensor.Float32(); err != nil {
					t.Fatalf("Float32 on accepted tensor: %v", err)
				}
				_ = tensor.CheckFinite()
			}
		}
	})
}
