package kernels

import (
	"github.com/qwgpu/qwgpu/weights"
)

// The device layout of the GGUF block types (wgsl/lib_quant.wgsl decodes
// it): each block keeps the format's own bytes, in the format's order, and
// is padded to a whole number of u32 words so that a kernel reads the words
// of one block without straddling, and a row of blocks starts on a word.
// Where a block is not a multiple of 4 bytes its 2 bytes of padding follow
// its f16 scale d:
//
//	type  file bytes  device bytes  padding
//	Q4_0  18          20            after d (bytes 0-1): the quants start at word 1
//	Q5_0  22          24            after d: qh is word 1, the quants start at word 2
//	Q8_0  34          36            after d: the quants start at word 1
//	Q6_K  210         212           after d, the block's last field
//	Q4_1  20, Q5_1 24, Q4_K 144, Q5_K 176: as in the file
//
// That costs 2–11% over the file (Q4_0 the most), and nothing for the K
// types Qwen's Q4_K_M and Q5_K_M files mostly hold.

// gpuBlockBytes is the device size of one block of a quantized type.
func gpuBlockBytes(dt weights.DType) int { return (dt.BlockBytes() + 3) &^ 3 }

// padAt is where a block of dt gets its padding: right after the f16
// scale d (which is at the end of a Q6_K block).
func padAt(dt weights.DType) int {
	if dt == weights.Q6_K {
		return dt.BlockBytes()
	}
	return 2
}

// PackBlocks returns blocks of dt (whole blocks, as in a GGUF file) in the
// device layout: each padded to gpuBlockBytes as described above. Types
// whose blocks are already whole words come back as they are.
func PackBlocks(dt weights.DType, raw []byte) []byte {
	bb, gb := dt.BlockBytes(), gpuBlockBytes(dt)
	if bb == gb {
		return raw
	}
	n := len(raw) / bb
	out := make([]byte, n*gb)
	at := padAt(dt)
	for i := 0; i < n; i++ {
		src, dst := raw[i*bb:(i+1)*bb], out[i*gb:(i+1)*gb]
		copy(dst, src[:at])
		copy(dst[at+gb-bb:], src[at:])
	}
	return out
}

// QuantFn names one weight array a shader decodes with lib_quant.wgsl:
// {{template "quant" .}} with it defines qhead_<Arr>, qvals_<Arr> and
// qload_<Arr> for blocks of Fmt in the storage array Arr.
type QuantFn struct {
	Fmt string // Q4_0 … Q6_K
	Arr string // the array<u32> binding's name
}

// quantShape returns what a kernel needs to walk blocks of dt: values and
// device words per block.
func quantShape(dt weights.DType) (bs, words int) {
	return dt.BlockSize(), gpuBlockBytes(dt) / 4
}

// MatrixBytes is the device memory a [rows, cols] matrix of dt takes
// (block types in whole padded blocks; rows not whole blocks count as if
// they were).
func MatrixBytes(dt weights.DType, rows, cols int) int64 {
	if dt.IsQuantized() {
		bs := dt.BlockSize()
		return int64(rows) * int64((cols+bs-1)/bs) * int64(gpuBlockBytes(dt))
	}
	return int64(rows) * int64(cols) * int64(dt.Size())
}
