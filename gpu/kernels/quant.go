package kernels

import (
	"encoding/binary"
	"math"

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
//	Q4_1  20, Q5_1 24, Q5_K 176: as in the file
//
// Q4_K (144 bytes in the file) is the exception: its 16-byte header becomes
// 32 bytes, d and dmin widened to f32 and the 6-bit scales and minimums one
// to a byte, so that a kernel decodes a sub-block's scales with a few byte
// extractions instead of two f16 widenings and the 6-bit unpacking (the
// layout: lib_quant.wgsl; packQ4K). Its quants follow unchanged: 160 bytes.
//
// That costs 2–11% over the file (Q4_0 and Q4_K the most).

// q4kDeviceBytes is the device size of a Q4_K block (packQ4K).
const q4kDeviceBytes = 160

// gpuBlockBytes is the device size of one block of a quantized type.
func gpuBlockBytes(dt weights.DType) int {
	if dt == weights.Q4_K {
		return q4kDeviceBytes
	}
	return (dt.BlockBytes() + 3) &^ 3
}

// padAt is where a block of dt gets its padding: right after the f16
// scale d (which is at the end of a Q6_K block).
func padAt(dt weights.DType) int {
	if dt == weights.Q6_K {
		return dt.BlockBytes()
	}
	return 2
}

// PackBlocks returns blocks of dt (whole blocks, as in a GGUF file) in the
// device layout: Q4_K unpacked by packQ4K, the others padded to
// gpuBlockBytes as described above. Types whose blocks are already whole
// words come back as they are.
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
		if dt == weights.Q4_K {
			packQ4K(dst, src)
			continue
		}
		copy(dst, src[:at])
		copy(dst[at+gb-bb:], src[at:])
	}
	return out
}

// packQ4K writes the 144-byte Q4_K block src into the 160 bytes of dst:
// two 16-byte headers, header h (0, 1) holding d and dmin as f32 (every
// f16 is exact in f32) and the scales of groups 2h and 2h+1 (a group: the
// 64 values of sub-blocks 2g and 2g+1), each a word of bytes sc(2g), m(2g),
// sc(2g+1), m(2g+1); then the 128 bytes of quants.
func packQ4K(dst, src []byte) {
	d := weights.F16ToFloat32(binary.LittleEndian.Uint16(src))
	dmin := weights.F16ToFloat32(binary.LittleEndian.Uint16(src[2:]))
	scales := src[4:16]
	for h := range 2 {
		hd := dst[16*h : 16*h+16]
		binary.LittleEndian.PutUint32(hd, math.Float32bits(d))
		binary.LittleEndian.PutUint32(hd[4:], math.Float32bits(dmin))
		for k := range 2 {
			g := 2*h + k
			hd[8+4*k], hd[9+4*k] = weights.ScaleMinK4(2*g, scales)
			hd[10+4*k], hd[11+4*k] = weights.ScaleMinK4(2*g+1, scales)
		}
	}
	copy(dst[32:], src[16:144])
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
