package weights

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseGGUF feeds arbitrary bytes to ParseGGUF as a whole file. It must
// never panic, and whatever it accepts must be safe to use: every tensor
// inside the data section, aligned, sized by its type and shape, no two
// tensors sharing a byte, and every decodable tensor decodable.
func FuzzParseGGUF(f *testing.F) {
	f.Add(sampleGGUF())
	if data, err := os.ReadFile(filepath.Join(ggufDir, "tiny-tied-f32-q4_0.gguf")); err == nil {
		f.Add(data[:min(len(data), 4096)])
	}
	var b ggufBuilder
	b.header(3, 1, 1).str("k").u32(uint32(GGUFArray)).u32(uint32(GGUFString)).u64(2).str("x").str("yz")
	b.tensor("k4", 12, 0, 256).pad(32).data(144)
	f.Add(b.Bytes())

	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseGGUF(data)
		if err != nil {
			if h != nil {
				t.Fatalf("error %v came with a header", err)
			}
			return
		}
		if h.Alignment <= 0 || h.Alignment&(h.Alignment-1) != 0 || h.DataStart%h.Alignment != 0 {
			t.Fatalf("alignment %d, data start %d", h.Alignment, h.DataStart)
		}
		dataSize := int64(len(data)) - h.DataStart
		seen := map[string]bool{}
		for i, ti := range h.Tensors {
			if seen[ti.Name] {
				t.Fatalf("tensor %q listed twice", ti.Name)
			}
			seen[ti.Name] = true
			if ti.Offset < 0 || ti.Offset%h.Alignment != 0 || ti.Size < 0 || ti.Offset+ti.Size > dataSize {
				t.Fatalf("tensor %q [%d, +%d) outside %d bytes of data", ti.Name, ti.Offset, ti.Size, dataSize)
			}
			typ := ggmlTypes[ti.TypeID]
			n := 1.0 // float64 so that an overflow cannot hide
			for _, d := range ti.NE {
				n *= float64(d)
			}
			if n/float64(typ.block)*float64(typ.bytes) != float64(ti.Size) {
				t.Fatalf("tensor %q: %s %v is not %d bytes", ti.Name, typ.name, ti.NE, ti.Size)
			}
			for _, o := range h.Tensors[:i] {
				if ti.Size > 0 && o.Size > 0 && max(ti.Offset, o.Offset) < min(ti.Offset+ti.Size, o.Offset+o.Size) {
					t.Fatalf("tensors %q and %q overlap", ti.Name, o.Name)
				}
			}
			if ti.DType == 0 {
				continue
			}
			lo := h.DataStart + ti.Offset
			tensor := &Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape, Raw: data[lo : lo+ti.Size]}
			if ti.DType.IsFloat() || ti.DType.IsQuantized() {
				if tensor.Numel() > 1<<20 {
					continue // valid but too big to decode in a fuzz run
				}
				if _, err := tensor.Float32(); err != nil {
					t.Fatalf("Float32 on accepted tensor: %v", err)
				}
				_ = tensor.CheckFinite()
			}
		}
	})
}
