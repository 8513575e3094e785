//go:build !unix

package weights

import "io"

// loadFile reads the whole file at path into memory. Platforms without the
// unix mmap system call (Windows in particular, where mapping needs
// CreateFileMapping and is not worth the extra code for now) pay for reading
// every byte up front and hold a private copy of the file; tensors then alias
// that copy instead of a mapping, with the same lifetime rules.
func loadFile(path string) (data []byte, release func() error, err error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err = io.ReadAll(f)
	if err != nil {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
