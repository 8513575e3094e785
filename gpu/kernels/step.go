package kernels

import (
	"encoding/binary"
	"fmt"
)

// StepRow is one row (token) of a step: the KV cache slot of its sequence
// and its position there. Kernels that write or read the cache take both
// from the step uniform, so one prepared op serves every step.
type StepRow struct{ Slot, Pos int }

// StepBytes is the size of the step uniform (struct Step in
// wgsl/lib_step.wgsl) for steps of up to maxRows rows.
func StepBytes(maxRows int) uint64 { return 16 + 16*uint64(maxRows) }

// EncodeStep lays out the step uniform for rows: the row count, the most
// cache rows any row attends to (its position + 1), and each row's slot
// and position. Only the bytes of the rows given are returned; the rest of
// the buffer is not read.
func EncodeStep(rows []StepRow) ([]byte, error) {
	out := make([]byte, StepBytes(len(rows)))
	keys := 0
	for i, r := range rows {
		if r.Slot < 0 || r.Pos < 0 {
			return nil, fmt.Errorf("step row %d: slot %d, position %d", i, r.Slot, r.Pos)
		}
		keys = max(keys, r.Pos+1)
		binary.LittleEndian.PutUint32(out[16+16*i:], uint32(r.Slot))
		binary.LittleEndian.PutUint32(out[20+16*i:], uint32(r.Pos))
	}
	binary.LittleEndian.PutUint32(out[0:], uint32(len(rows)))
	binary.LittleEndian.PutUint32(out[4:], uint32(keys))
	return out, nil
}

// Keys is the extent's key count for rows: the longest attention.
func Keys(rows []StepRow) int {
	k := 0
	for _, r := range rows {
		k = max(k, r.Pos+1)
	}
	return k
}
