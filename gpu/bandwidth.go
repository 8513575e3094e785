package gpu

import (
	"fmt"
	"time"
)

// copyParams mirrors Params in wgsl/copy.wgsl.
type copyParams struct {
	N          uint32
	_, _, _pad uint32
}

// CopyBandwidth measures the device's memory bandwidth with a vec4 copy
// kernel, counting bytes read plus bytes written, the way the anchors in
// docs/PERFORMANCE.md count. Many copies run in one pass and the time of a
// short batch is subtracted from a long one, which cancels the submit
// round trip. It needs two buffers of up to 256 MiB.
func (d *Device) CopyBandwidth() (float64, error) {
	size := min(uint64(256<<20), d.Limits().MaxStorageBufferBindingSize, d.Limits().MaxBufferSize) &^ 15
	n := int(size / 16)
	x, err := d.NewBuffer("bandwidth.x", size)
	if err != nil {
		return 0, err
	}
	defer x.Release()
	y, err := d.NewBuffer("bandwidth.y", size)
	if err != nil {
		return 0, err
	}
	defer y.Release()
	k, err := d.Kernel("copy", nil)
	if err != nil {
		return 0, err
	}
	op, err := k.Op("copy", copyParams{N: uint32(n)}, Groups1D(ceilDiv(n, 256)), Bind(x), Bind(y))
	if err != nil {
		return 0, err
	}
	defer op.Release()
	batch := func(reps int) (time.Duration, error) {
		r := d.NewRecorder()
		for range reps {
			r.Run(op)
		}
		start := time.Now()
		err := r.Submit()
		return time.Since(start), err
	}
	if _, err := batch(2); err != nil { // warm-up
		return 0, err
	}
	best := 0.0
	for range 3 {
		short, err := batch(5)
		if err != nil {
			return 0, err
		}
		long, err := batch(25)
		if err != nil {
			return 0, err
		}
		if per := (long - short).Seconds() / 20; per > 0 {
			best = max(best, 2*float64(size)/per)
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("gpu: copy bandwidth: no positive timing")
	}
	return best, nil
}
