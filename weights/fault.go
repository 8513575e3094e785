package weights

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
)

// A File is memory-mapped, so a checkpoint truncated (or on a network
// file system that fails) while it is open makes the next read of a
// vanished page fault: SIGBUS, which kills the process with a goroutine
// dump unless the reading goroutine asked the runtime to turn faults into
// panics. Detach reads a tensor's bytes once in such a goroutine and
// hands back a copy in ordinary memory, so that everything after it (the
// finite check, the conversion, the upload by the GPU driver, whose C code
// no recover could protect) reads memory that cannot fault.

// Detach returns the tensor with its bytes copied out of the file's
// mapping. A fault while copying (the file shrank under the mapping) is
// an error naming the file and the tensor, not a crash.
func (t *Tensor) Detach() (*Tensor, error) {
	raw, err := copyGuarded(t.Raw)
	if err != nil {
		return nil, t.errorf("the file changed while being read (truncated or replaced?): %v", err)
	}
	d := *t
	d.Shape = slices.Clone(t.Shape)
	d.Raw = raw
	return &d, nil
}

// copyGuarded copies src with memory faults turned into an error. It runs
// in the calling goroutine, the one debug.SetPanicOnFault covers.
func copyGuarded(src []byte) (dst []byte, err error) {
	dst = make([]byte, len(src))
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			re, ok := r.(runtime.Error)
			if !ok || !isFault(re) {
				panic(r)
			}
			dst, err = nil, fmt.Errorf("memory fault reading the mapped file (%v)", re)
		}
	}()
	copy(dst, src)
	return dst, nil
}

// isFault tells a memory fault from other runtime errors: the runtime's
// fault errors carry the faulting address.
func isFault(e runtime.Error) bool {
	_, ok := e.(interface{ Addr() uintptr })
	return ok
}
