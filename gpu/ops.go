package gpu

import "fmt"

// Helpers shared by the kernel wrappers (rmsnorm.go, matvec.go, …). Each
// wrapper validates shapes against its buffers before building ops, so a bad
// shape is a Go error naming the op rather than an out-of-bounds read that
// WebGPU would silently clamp.

// needF32 checks that b holds at least elems float32 (or u32) values and
// returns a binding of exactly those bytes.
func needF32(op, role string, b *Buffer, elems int) (Binding, error) {
	if b == nil {
		return Binding{}, fmt.Errorf("gpu: %s: %s buffer is nil", op, role)
	}
	if elems <= 0 {
		return Binding{}, fmt.Errorf("gpu: %s: %s has %d elements", op, role, elems)
	}
	if need := uint64(elems) * 4; b.size < need {
		return Binding{}, fmt.Errorf("gpu: %s: %s buffer %q has %d bytes, needs %d (%d values)", op, role, b.label, b.size, need, elems)
	}
	return Binding{Buf: b, Size: uint64(elems) * 4}, nil
}

// distinct refuses a buffer bound twice when one binding is written:
// WebGPU forbids a writable storage binding aliasing another binding.
func distinct(op string, bufs map[string]*Buffer) error {
	seen := map[*Buffer]string{}
	for role, b := range bufs {
		if b == nil {
			continue
		}
		if other, ok := seen[b]; ok {
			return fmt.Errorf("gpu: %s: %s and %s are the same buffer %q; the output may not alias an input here", op, other, role, b.label)
		}
		seen[b] = role
	}
	return nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// tune overrides kernel layouts for benchmarks that sweep them; zero values
// mean the automatic choice.
var tune struct {
	matvecTPR   int // threads per row in matvec
	rmsnormWG   int // workgroup size in rmsnorm
	argmaxChunk int // elements per workgroup in argmax's partial pass
	matmulBK    int // columns staged per step in matmul
}
