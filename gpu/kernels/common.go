// Package kernels holds qwgpu's compute kernels: for each, the Go wrapper
// that checks its arguments against the device and prepares its dispatches
// (gpu.Op), next to the WGSL template it renders (wgsl/<name>.wgsl) and a
// test against the CPU reference. Each kernel's template variables are a
// typed struct (…Vars) declared beside its wrapper.
//
// Shapes are checked here, before wgpu sees them: an out-of-bounds access
// is silently clamped by WebGPU, so a wrong shape would give wrong numbers
// instead of an error.
package kernels

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
)

// need reports why b cannot serve as a binding of at least size bytes on d.
func need(d *gpu.Device, what string, b *gpu.Buffer, size uint64) error {
	if b == nil {
		return fmt.Errorf("%s buffer is nil", what)
	}
	if size == 0 {
		return fmt.Errorf("%s: empty", what)
	}
	if b.Size() < size {
		return fmt.Errorf("%s %q: %d bytes, needs at least %d", what, b.Label(), b.Size(), size)
	}
	if lim := d.Limits().MaxStorageBufferBindingSize; size > lim {
		return fmt.Errorf("%s: %d bytes past the device's %d-byte binding limit", what, size, lim)
	}
	return nil
}

// noAlias refuses a written buffer that is also bound elsewhere in the same
// dispatch (WebGPU forbids a writable binding aliasing another one);
// read-only bindings may share a buffer.
func noAlias(written []*gpu.Buffer, bound ...*gpu.Buffer) error {
	for _, w := range written {
		n := 0
		for _, b := range bound {
			if b == w {
				n++
			}
		}
		if n > 1 {
			return fmt.Errorf("buffer %q is written and bound %d times; an output may not alias another binding", w.Label(), n)
		}
	}
	return nil
}

// checkWorkgroup reports whether a kernel's workgroup arrays and
// storage-buffer count fit the device.
func checkWorkgroup(d *gpu.Device, kernel string, wgBytes, storageBuffers int) error {
	if lim := d.Limits().MaxComputeWorkgroupStorageSize; uint64(wgBytes) > uint64(lim) {
		return fmt.Errorf("%s needs %d bytes of workgroup memory, the device has %d", kernel, wgBytes, lim)
	}
	if lim := d.Limits().MaxStorageBuffersPerShaderStage; uint64(storageBuffers) > uint64(lim) {
		return fmt.Errorf("%s binds %d storage buffers, the device allows %d", kernel, storageBuffers, lim)
	}
	return nil
}

// smallWorkgroupArrays reports whether kernels on d must keep their
// workgroup arrays to a few hundred elements. naga 0.13's GLSL backend
// zero-initialises each workgroup array with a constructor of one argument
// per element, which Mesa compiles in time growing with the square of the
// length (llvmpipe, at the first dispatch: 256 floats 0.2 s, 1024 floats
// 2.9 s, 2048 floats 18 s). SPIR-V, MSL and HLSL zero them in one step.
func smallWorkgroupArrays(d *gpu.Device) bool { return d.Info().Backend == "gl" }

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func nextPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// tuneKnobs overrides kernel layouts for sweeps (QWGPU_TUNE, tune.go);
// zero values mean the automatic choice.
type tuneKnobs struct {
	matvecTPR     int          // threads per row group in matvec
	matvecR       int          // rows per thread group in matvec
	matvecWG      int          // matvec workgroup size
	matvecCPT     int          // consecutive quant chunks a matvec thread takes
	matvecWide    int          // -1: Q4_K and Q5_K matvecs read word chunks, not quads
	matvecQSum    int          // -1: one-token Q8_0 matvecs scale every value (not MatVecVars.Q8Sum)
	matvecNorm    int          // the largest batch whose matvecs normalise x themselves (matvecNormRows; 0: 8, -1: none)
	matvecXReg    int          // rows a workgroup of the x-in-registers matvec of block types for one token (MatVecVars.XReg; 0: 4 for Q4_K, off for the others; -1: off)
	matvecXG      int          // rows whose loads the XReg matvec issues together (0: 4)
	matvecXFold   int          // -1: the XReg matvec scales every Q4_K value instead of summing the quants unscaled (MatVecVars.XFold)
	matvecRed1    int          // -1: the matvec sums a group's partials through a tree, not one thread an output (MatVecVars.Red1)
	matvecMaxR    int          // the most rows matvecLayout gives a thread group (0: 2)
	matvecMinRows int          // matvec_xreg applies to dispatches of at least this many rows only
	matvecMinCols int          // … and to rows of at least this many values
	rmsnormWG     int          // workgroup size in rmsnorm
	argmaxChunk   int          // elements per workgroup in argmax's partial pass
	matmulBK      int          // columns staged per step in matmul
	matmulTile    matmulTile   // matmul tiling
	decodeChunk   int          // rows per attention_decode tile (threads per workgroup)
	decodeSplits  int          // the most attention_decode workgroups per kv head and sequence
	decodeLanes   int          // threads that read one key row together in attention_decode
	decodeUnroll  int          // -1: attention_decode loads a row's keys and values one after another (not AttentionVars.AUNROLL)
	decodeQReg    int          // -1: attention_decode reloads a lane's query values per key unit (not AttentionVars.QREG)
	qkvTPR        int          // threads per weight row in qkv_norm_rope decode
	qkvWG         int          // qkv_norm_rope decode workgroup size
	prefillTiles  prefillTiles // attention_prefill tiles
}

var tune tuneKnobs
