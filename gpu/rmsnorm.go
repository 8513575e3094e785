package gpu

import "fmt"

// rmsnormParams mirrors Params in wgsl/rmsnorm.wgsl.
type rmsnormParams struct {
	Rows uint32
	N    uint32
	NV   uint32 // n / VEC
	Eps  float32
}

// rmsnormMaxK is the most values of T one thread keeps in registers; longer
// rows are read twice instead.
const rmsnormMaxK = 8

// RMSNorm prepares out[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) · w for
// x and out [rows, n] and w [n], all float32. out may not alias x.
func (d *Device) RMSNorm(out, x, w *Buffer, rows, n int, eps float32) (*Op, error) {
	const op = "rmsnorm"
	if rows <= 0 || n <= 0 {
		return nil, fmt.Errorf("gpu: %s: shape [%d, %d]", op, rows, n)
	}
	if err := distinct(op, map[string]*Buffer{"out": out, "x": x}); err != nil {
		return nil, err
	}
	bx, err := needF32(op, "x", x, rows*n)
	if err != nil {
		return nil, err
	}
	bw, err := needF32(op, "w", w, n)
	if err != nil {
		return nil, err
	}
	bo, err := needF32(op, "out", out, rows*n)
	if err != nil {
		return nil, err
	}
	vec := 1
	if n%4 == 0 {
		vec = 4
	}
	nv := n / vec
	// One thread per value of T up to 256 threads; tiny rows still get a
	// full 32-wide group so the reduction tree stays a power of two.
	wg := min(256, max(32, nextPow2(nv)))
	if tune.rmsnormWG > 0 {
		wg = tune.rmsnormWG
	}
	k := ceilDiv(nv, wg)
	vars := map[string]any{"WG": wg, "VEC": vec, "T": "f32", "K": k, "CACHE": k <= rmsnormMaxK}
	if vec == 4 {
		vars["T"] = "vec4<f32>"
	}
	if k > rmsnormMaxK {
		vars["K"] = 0
	}
	kern, err := d.Kernel("rmsnorm", vars)
	if err != nil {
		return nil, err
	}
	params := rmsnormParams{Rows: uint32(rows), N: uint32(n), NV: uint32(nv), Eps: eps}
	return kern.Op(op, params, Groups1D(rows), bx, bw, bo)
}
