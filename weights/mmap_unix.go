//go:build unix

package weights

import (
	"fmt"
	"math"
	"syscall"
)

// loadFile maps the file at path read-only into memory. The mapping is
// demand-paged, so opening a multi-gigabyte checkpoint costs no reading
// until tensors are touched, and pages are shared with the page cache rather
// than copied. release unmaps it; after that, any slice of data faults.
//
// The file must not be truncated while mapped: the kernel would deliver
// SIGBUS on access to the vanished pages, which Go cannot turn into an error.
func loadFile(path string) (data []byte, release func() error, err error) {
	// Opened as a regular file first: a FIFO would block open forever.
	f, err := openRegular(path)
	if err != nil {
		return nil, nil, err
	}
	// The mapping stays valid after the descriptor is closed.
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := fi.Size()
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("not a regular file")
	}
	if size == 0 {
		// mmap rejects empty mappings; an empty file is reported as too
		// short by the header parser.
		return []byte{}, func() error { return nil }, nil
	}
	if size > math.MaxInt {
		return nil, nil, fmt.Errorf("file of %d bytes is too large to map on this platform", size)
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mmap: %w", err)
	}
	return data, func() error { return syscall.Munmap(data) }, nil
}
