package weights

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// GGUFFile is one GGUF file opened with [OpenGGUF]: memory-mapped on Unix
// like [File], with the same rules for concurrent use and Close.
type GGUFFile struct {
	GGUFHeader
	path    string
	data    []byte
	release func() error
	kvs     map[string]int // key -> index in KVs
	tensors map[string]int // name -> index in Tensors
}

// OpenGGUF opens and validates the GGUF file at path (see [ParseGGUF]). The
// path is used as given in error messages.
func OpenGGUF(path string) (*GGUFFile, error) {
	// OpenRegular refuses FIFOs and devices before the mapping opens them.
	f, err := OpenRegular(path)
	if err != nil {
		return nil, &Error{Err: err}
	}
	f.Close()
	data, release, err := loadFile(path)
	if err != nil {
		return nil, &Error{Path: path, Err: stripPath(err)}
	}
	h, err := ParseGGUF(data)
	if err != nil {
		release()
		return nil, labelPath(err, path)
	}
	g := &GGUFFile{GGUFHeader: *h, path: path, data: data, release: release,
		kvs: make(map[string]int, len(h.KVs)), tensors: make(map[string]int, len(h.Tensors))}
	for i, kv := range h.KVs {
		g.kvs[kv.Key] = i
	}
	for i, ti := range h.Tensors {
		g.tensors[ti.Name] = i
	}
	return g, nil
}

// Close releases the file's memory; tensors from it must not be used
// afterwards. Closing twice does nothing.
func (g *GGUFFile) Close() error {
	if g.release == nil {
		return nil
	}
	err := g.release()
	g.release, g.data = nil, nil
	if err != nil {
		return &Error{Path: g.path, Err: err}
	}
	return nil
}

// Path returns the path the file was opened with.
func (g *GGUFFile) Path() string { return g.path }

// Lookup returns the metadata entry with the given key.
func (g *GGUFFile) Lookup(key string) (GGUFKV, bool) {
	i, ok := g.kvs[key]
	if !ok {
		return GGUFKV{}, false
	}
	return g.KVs[i], true
}

// Info returns the header entry of the named tensor (GGUF name).
func (g *GGUFFile) Info(name string) (GGUFTensorInfo, bool) {
	i, ok := g.tensors[name]
	if !ok {
		return GGUFTensorInfo{}, false
	}
	ti := g.Tensors[i]
	ti.NE, ti.Shape = slices.Clone(ti.NE), slices.Clone(ti.Shape)
	return ti, true
}

// Tensor returns the named tensor (GGUF name) in the Hugging Face shape,
// its Raw bytes aliasing the mapping. A tensor whose type this package can
// list but not decode gets an error naming the type.
func (g *GGUFFile) Tensor(name string) (*Tensor, error) {
	if g.release == nil {
		return nil, &Error{Path: g.path, Tensor: name, Err: errors.New("file is closed")}
	}
	ti, ok := g.Info(name)
	if !ok {
		return nil, &Error{Path: g.path, Tensor: name, Err: ErrNotFound}
	}
	if ti.DType == 0 {
		return nil, &Error{Path: g.path, Tensor: name, Err: fmt.Errorf("tensor type %s is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)", ti.TypeName())}
	}
	lo := g.DataStart + ti.Offset
	hi := lo + ti.Size
	return &Tensor{Name: name, File: g.path, DType: ti.DType, Shape: ti.Shape, Raw: g.data[lo:hi:hi]}, nil
}

// keyError is the error for a metadata key that is missing or mistyped.
func (g *GGUFFile) keyError(key, format string, args ...any) error {
	return &Error{Path: g.path, Err: fmt.Errorf("metadata key %q: %s", key, fmt.Sprintf(format, args...))}
}

// Uint returns an integer metadata value (any integer type) that is not
// negative.
func (g *GGUFFile) Uint(key string) (uint64, error) {
	kv, ok := g.Lookup(key)
	if !ok {
		return 0, g.keyError(key, "missing")
	}
	switch v := kv.Value.(type) {
	case uint64:
		return v, nil
	case int64:
		if v >= 0 {
			return uint64(v), nil
		}
		return 0, g.keyError(key, "%d is negative", v)
	}
	return 0, g.keyError(key, "want an integer, got %s", kv.Type)
}

// Int returns an integer metadata value as an int, which must fit in
// [0, limit].
func (g *GGUFFile) Int(key string, limit int) (int, error) {
	v, err := g.Uint(key)
	if err != nil {
		return 0, err
	}
	if v > uint64(limit) {
		return 0, g.keyError(key, "%d is above %d", v, limit)
	}
	return int(v), nil
}

// Float returns a floating-point (or integer) metadata value.
func (g *GGUFFile) Float(key string) (float64, error) {
	kv, ok := g.Lookup(key)
	if !ok {
		return 0, g.keyError(key, "missing")
	}
	switch v := kv.Value.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, g.keyError(key, "%v is not finite", v)
		}
		return v, nil
	case uint64:
		return float64(v), nil
	case int64:
		return float64(v), nil
	}
	return 0, g.keyError(key, "want a number, got %s", kv.Type)
}

// String returns a string metadata value.
func (g *GGUFFile) String(key string) (string, error) {
	kv, ok := g.Lookup(key)
	if !ok {
		return "", g.keyError(key, "missing")
	}
	if s, ok := kv.Value.(string); ok {
		return s, nil
	}
	return "", g.keyError(key, "want a string, got %s", kv.Type)
}

// Bool returns a bool metadata value.
func (g *GGUFFile) Bool(key string) (bool, error) {
	kv, ok := g.Lookup(key)
	if !ok {
		return false, g.keyError(key, "missing")
	}
	if b, ok := kv.Value.(bool); ok {
		return b, nil
	}
	return false, g.keyError(key, "want a bool, got %s", kv.Type)
}

// Strings returns an array-of-strings metadata value.
func (g *GGUFFile) Strings(key string) ([]string, error) {
	kv, ok := g.Lookup(key)
	if !ok {
		return nil, g.keyError(key, "missing")
	}
	if s, ok := kv.Value.([]string); ok {
		return s, nil
	}
	return nil, g.keyError(key, "want an array of strings, got %s", describeGGUFType(kv))
}

// Ints returns an array-of-integers metadata value (any integer element
// type), each element fitting in an int32.
func (g *GGUFFile) Ints(key string) ([]int32, error) {
	kv, ok := g.Lookup(key)
	if !ok {
		return nil, g.keyError(key, "missing")
	}
	var out []int32
	switch v := kv.Value.(type) {
	case []int64:
		out = make([]int32, len(v))
		for i, x := range v {
			if x < math.MinInt32 || x > math.MaxInt32 {
				return nil, g.keyError(key, "element %d (%d) does not fit in int32", i, x)
			}
			out[i] = int32(x)
		}
	case []uint64:
		out = make([]int32, len(v))
		for i, x := range v {
			if x > math.MaxInt32 {
				return nil, g.keyError(key, "element %d (%d) does not fit in int32", i, x)
			}
			out[i] = int32(x)
		}
	default:
		return nil, g.keyError(key, "want an array of integers, got %s", describeGGUFType(kv))
	}
	return out, nil
}

func describeGGUFType(kv GGUFKV) string {
	if kv.Type == GGUFArray {
		return "an array of " + kv.Elem.String()
	}
	return kv.Type.String()
}
