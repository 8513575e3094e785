package weights

import (
	"errors"
	"io/fs"
	"maps"
	"slices"
)

// File is one safetensors file opened with [Open]. On Unix systems it is
// memory-mapped read-only; elsewhere it is read into memory.
//
// A File may be read from several goroutines at once, but Close must not run
// concurrently with any other method or with use of its tensors.
type File struct {
	path      string
	data      []byte
	release   func() error
	dataStart int64
	infos     map[string]TensorInfo
	names     []string
	metadata  map[string]string
}

// Open opens and validates the safetensors file at path. The path is used
// as given in error messages.
func Open(path string) (*File, error) {
	data, release, err := loadFile(path)
	if err != nil {
		return nil, &Error{Path: path, Err: stripPath(err)}
	}
	infos, metadata, dataStart, err := parseHeader(path, data, int64(len(data)))
	if err != nil {
		release()
		return nil, err
	}
	f := &File{
		path:      path,
		data:      data,
		release:   release,
		dataStart: dataStart,
		infos:     make(map[string]TensorInfo, len(infos)),
		names:     make([]string, len(infos)),
		metadata:  metadata,
	}
	for i, ti := range infos {
		f.infos[ti.Name] = ti
		f.names[i] = ti.Name
	}
	return f, nil
}

// stripPath drops the path that *fs.PathError repeats, since [Error]
// already names the file.
func stripPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Close releases the file's memory. Tensors obtained from it must not be
// used afterwards: on Unix their bytes are unmapped and touching them
// crashes the program. Closing an already closed File does nothing.
func (f *File) Close() error {
	if f.release == nil {
		return nil
	}
	err := f.release()
	f.release = nil
	f.data = nil
	if err != nil {
		return &Error{Path: f.path, Err: err}
	}
	return nil
}

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Names returns the names of all tensors in the file, sorted.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Metadata returns a copy of the header's "__metadata__" map, or nil if the
// header has none.
func (f *File) Metadata() map[string]string { return maps.Clone(f.metadata) }

// Info returns the header entry of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	ti, ok := f.infos[name]
	if ok {
		ti.Shape = slices.Clone(ti.Shape)
	}
	return ti, ok
}

// Tensor returns the named tensor. Its Raw bytes alias the file's memory and
// are valid until Close.
func (f *File) Tensor(name string) (*Tensor, error) {
	if f.release == nil {
		return nil, &Error{Path: f.path, Tensor: name, Err: errors.New("file is closed")}
	}
	ti, ok := f.infos[name]
	if !ok {
		return nil, &Error{Path: f.path, Tensor: name, Err: ErrNotFound}
	}
	lo, hi := f.dataStart+ti.Begin, f.dataStart+ti.End
	return &Tensor{
		Name:  ti.Name,
		File:  f.path,
		DType: ti.DType,
		Shape: slices.Clone(ti.Shape),
		// The capacity limit keeps an append on Raw from reaching into the
		// next tensor's bytes.
		Raw: f.data[lo:hi:hi],
	}, nil
}
