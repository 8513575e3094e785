package weights

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// GGUF layout (version 3, little endian): magic "GGUF", u32 version, u64
// tensor count, u64 metadata count, the metadata entries (string key, u32
// value type, value), the tensor infos (string name, u32 dimension count,
// u64 ne[] with ne[0] the fastest-varying dimension, u32 ggml type, u64
// offset into the data section), padding to general.alignment, the data.
// Strings are a u64 byte length and the bytes, without a terminator.

// GGUFType is the type of a GGUF metadata value.
type GGUFType uint32

// The GGUF metadata value types.
const (
	GGUFUint8 GGUFType = iota
	GGUFInt8
	GGUFUint16
	GGUFInt16
	GGUFUint32
	GGUFInt32
	GGUFFloat32
	GGUFBool
	GGUFString
	GGUFArray
	GGUFUint64
	GGUFInt64
	GGUFFloat64
)

var ggufTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
	"bool", "string", "array", "uint64", "int64", "float64"}

// ggufScalarSizes are the stored sizes of the fixed-size types; a string
// takes at least its 8-byte length.
var ggufScalarSizes = [...]int{1, 1, 2, 2, 4, 4, 4, 1, 8, 0, 8, 8, 8}

func (t GGUFType) String() string {
	if int(t) < len(ggufTypeNames) {
		return ggufTypeNames[t]
	}
	return fmt.Sprintf("type %d", uint32(t))
}

// GGUFKV is one metadata entry. Value holds, by Type: uint64 for the
// unsigned integers, int64 for the signed ones, float64 for both floats,
// bool, string; for an array (Type GGUFArray, element type Elem) a slice
// of one of those.
type GGUFKV struct {
	Key   string
	Type  GGUFType
	Elem  GGUFType
	Value any
}

// GGUFTensorInfo is one tensor entry of a GGUF header.
type GGUFTensorInfo struct {
	Name string
	// TypeID is the ggml type id as stored; DType is 0 when this package
	// knows the type's size but cannot decode it (the IQ types, Q2_K, ...).
	TypeID uint32
	DType  DType
	// NE is the shape in ggml order, ne[0] the row length; Shape is the
	// same reversed, the Hugging Face (row-major) shape.
	NE    []uint64
	Shape []int
	// Offset is where the data starts, relative to the data section; Size
	// its length in bytes.
	Offset, Size int64
}

// TypeName returns the ggml name of the tensor's type.
func (ti GGUFTensorInfo) TypeName() string { return GGMLTypeName(ti.TypeID) }

// GGUFHeader is a validated GGUF header.
type GGUFHeader struct {
	Version   uint32
	KVs       []GGUFKV
	Tensors   []GGUFTensorInfo
	Alignment int64
	// DataStart is the file offset of the data section.
	DataStart int64
}

// Limits of the reader, beyond what the file size already bounds: ggml
// tensors have at most 4 dimensions.
const ggufMaxDims = 4

// ggufDefaultAlignment applies when general.alignment is absent.
const ggufDefaultAlignment = 32

// ggufReader reads the header fields in order, each read checked against
// what is left of the file.
type ggufReader struct {
	data []byte
	pos  int
}

var errShort = errors.New("file ends inside the header")

func (r *ggufReader) bytes(n uint64) ([]byte, error) {
	if n > uint64(len(r.data)-r.pos) {
		return nil, errShort
	}
	b := r.data[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

func (r *ggufReader) u32() (uint32, error) {
	b, err := r.bytes(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (r *ggufReader) u64() (uint64, error) {
	b, err := r.bytes(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

func (r *ggufReader) str() (string, error) {
	n, err := r.u64()
	if err != nil {
		return "", err
	}
	if n > uint64(len(r.data)-r.pos) {
		return "", fmt.Errorf("string of %d bytes runs past the end of the file", n)
	}
	b, _ := r.bytes(n)
	return string(b), nil
}

// left is the number of unread bytes.
func (r *ggufReader) left() uint64 { return uint64(len(r.data) - r.pos) }

// ParseGGUF parses and validates the header of a GGUF file whose whole
// content is data: every count, string and array length against the bytes
// that remain, every tensor's dimensions, type, size, alignment and place
// inside the data section, and that no two tensors overlap. Errors are
// *Error without a path (the caller adds it).
func ParseGGUF(data []byte) (*GGUFHeader, error) {
	h, err := parseGGUF(data)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, &Error{Err: err}
	}
	return h, nil
}

func parseGGUF(data []byte) (*GGUFHeader, error) {
	r := &ggufReader{data: data}
	magic, err := r.bytes(4)
	if err != nil || string(magic) != "GGUF" {
		return nil, errors.New("not a GGUF file (no GGUF magic)")
	}
	version, err := r.u32()
	if err != nil {
		return nil, errShort
	}
	switch {
	case version == 2 || version == 3:
	case version != 0 && bits.ReverseBytes32(version) <= 3:
		return nil, errors.New("big-endian GGUF files are not supported")
	default:
		return nil, fmt.Errorf("GGUF version %d is not supported (want 2 or 3)", version)
	}
	nTensors, err := r.u64()
	if err != nil {
		return nil, errShort
	}
	nKV, err := r.u64()
	if err != nil {
		return nil, errShort
	}
	// The smallest entry is an empty key, its type and a one-byte value; the
	// smallest tensor info an empty name, one dimension, type and offset.
	// Checking the counts against what is left bounds every allocation.
	if nKV > r.left()/(8+4+1) {
		return nil, fmt.Errorf("%d metadata entries cannot fit in the %d bytes left", nKV, r.left())
	}
	h := &GGUFHeader{Version: version, KVs: make([]GGUFKV, 0, nKV), Alignment: ggufDefaultAlignment}
	keys := make(map[string]bool, nKV)
	for i := range nKV {
		kv, err := r.kv()
		if err != nil {
			if kv.Key != "" {
				return nil, fmt.Errorf("metadata key %q: %w", kv.Key, err)
			}
			return nil, fmt.Errorf("metadata entry %d: %w", i, err)
		}
		if keys[kv.Key] {
			return nil, fmt.Errorf("metadata key %q appears twice", kv.Key)
		}
		keys[kv.Key] = true
		h.KVs = append(h.KVs, kv)
		if kv.Key == "general.alignment" {
			a, ok := kv.Value.(uint64)
			if !ok || kv.Type != GGUFUint32 {
				return nil, fmt.Errorf("metadata key \"general.alignment\": want a uint32, got %s", kv.Type)
			}
			if a == 0 || a&(a-1) != 0 || a > 1<<30 {
				return nil, fmt.Errorf("metadata key \"general.alignment\": %d is not a power of two up to 2^30", a)
			}
			h.Alignment = int64(a)
		}
	}
	if nTensors > r.left()/(8+4+8+4+8) {
		return nil, fmt.Errorf("%d tensors cannot fit in the %d bytes left", nTensors, r.left())
	}
	h.Tensors = make([]GGUFTensorInfo, 0, nTensors)
	names := make(map[string]bool, nTensors)
	for i := range nTensors {
		ti, err := r.tensorInfo()
		if err != nil {
			if ti.Name != "" {
				return nil, &Error{Tensor: ti.Name, Err: err}
			}
			return nil, fmt.Errorf("tensor %d: %w", i, err)
		}
		if names[ti.Name] {
			return nil, &Error{Tensor: ti.Name, Err: errors.New("listed twice")}
		}
		names[ti.Name] = true
		h.Tensors = append(h.Tensors, ti)
	}
	// The data section starts at the next multiple of the alignment.
	start := (int64(r.pos) + h.Alignment - 1) / h.Alignment * h.Alignment
	h.DataStart = start
	if len(h.Tensors) == 0 {
		return h, nil
	}
	if start > int64(len(data)) {
		return nil, fmt.Errorf("data section at byte %d starts past the end of the %d-byte file", start, len(data))
	}
	dataSize := int64(len(data)) - start
	for _, ti := range h.Tensors {
		if ti.Offset%h.Alignment != 0 {
			return nil, &Error{Tensor: ti.Name, Err: fmt.Errorf("offset %d is not a multiple of the alignment %d", ti.Offset, h.Alignment)}
		}
		if ti.Offset > dataSize || ti.Size > dataSize-ti.Offset {
			return nil, &Error{Tensor: ti.Name, Err: fmt.Errorf("data [%d, %d) runs past the %d bytes of the data section", ti.Offset, ti.Offset+ti.Size, dataSize)}
		}
	}
	byOffset := slices.Clone(h.Tensors)
	slices.SortFunc(byOffset, func(a, b GGUFTensorInfo) int {
		if a.Offset != b.Offset {
			return int(min(max(a.Offset-b.Offset, -1), 1))
		}
		return int(min(max(a.Size-b.Size, -1), 1))
	})
	for i := 1; i < len(byOffset); i++ {
		a, b := byOffset[i-1], byOffset[i]
		if b.Size > 0 && a.Offset+a.Size > b.Offset {
			return nil, &Error{Tensor: b.Name, Err: fmt.Errorf("data [%d, %d) overlaps tensor %q [%d, %d)", b.Offset, b.Offset+b.Size, a.Name, a.Offset, a.Offset+a.Size)}
		}
	}
	return h, nil
}

// kv reads one metadata entry.
func (r *ggufReader) kv() (GGUFKV, error) {
	var kv GGUFKV
	key, err := r.str()
	if err != nil {
		return kv, err
	}
	kv.Key = key
	t, err := r.u32()
	if err != nil {
		return kv, err
	}
	kv.Type = GGUFType(t)
	if kv.Type == GGUFArray {
		e, err := r.u32()
		if err != nil {
			return kv, err
		}
		kv.Elem = GGUFType(e)
		kv.Value, err = r.array(kv.Elem)
		return kv, err
	}
	kv.Value, err = r.scalar(kv.Type)
	return kv, err
}

// scalar reads one value of a non-array type.
func (r *ggufReader) scalar(t GGUFType) (any, error) {
	if t == GGUFString {
		return r.str()
	}
	if t == GGUFArray || int(t) >= len(ggufScalarSizes) {
		return nil, fmt.Errorf("unknown value type %d", uint32(t))
	}
	b, err := r.bytes(uint64(ggufScalarSizes[t]))
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	switch t {
	case GGUFUint8:
		return uint64(b[0]), nil
	case GGUFInt8:
		return int64(int8(b[0])), nil
	case GGUFUint16:
		return uint64(le.Uint16(b)), nil
	case GGUFInt16:
		return int64(int16(le.Uint16(b))), nil
	case GGUFUint32:
		return uint64(le.Uint32(b)), nil
	case GGUFInt32:
		return int64(int32(le.Uint32(b))), nil
	case GGUFUint64:
		return le.Uint64(b), nil
	case GGUFInt64:
		return int64(le.Uint64(b)), nil
	case GGUFFloat32:
		return float64(math.Float32frombits(le.Uint32(b))), nil
	case GGUFFloat64:
		return math.Float64frombits(le.Uint64(b)), nil
	case GGUFBool:
		if b[0] > 1 {
			return nil, fmt.Errorf("bool value %d is neither 0 nor 1", b[0])
		}
		return b[0] == 1, nil
	}
	return nil, fmt.Errorf("unknown value type %d", uint32(t))
}

// array reads an array's length and elements into a typed slice.
func (r *ggufReader) array(elem GGUFType) (any, error) {
	if elem == GGUFArray {
		return nil, errors.New("arrays of arrays are not supported")
	}
	if int(elem) >= len(ggufScalarSizes) {
		return nil, fmt.Errorf("unknown array element type %d", uint32(elem))
	}
	n, err := r.u64()
	if err != nil {
		return nil, err
	}
	if n > r.left()/uint64(ggufScalarSizes[elem]) {
		return nil, fmt.Errorf("array of %d %s values cannot fit in the %d bytes left", n, elem, r.left())
	}
	var (
		us   []uint64
		is   []int64
		fs   []float64
		bs   []bool
		strs []string
	)
	for range n {
		v, err := r.scalar(elem)
		if err != nil {
			return nil, err
		}
		switch v := v.(type) {
		case uint64:
			us = append(us, v)
		case int64:
			is = append(is, v)
		case float64:
			fs = append(fs, v)
		case bool:
			bs = append(bs, v)
		case string:
			strs = append(strs, v)
		}
	}
	switch elem {
	case GGUFUint8, GGUFUint16, GGUFUint32, GGUFUint64:
		return nonNil(us), nil
	case GGUFInt8, GGUFInt16, GGUFInt32, GGUFInt64:
		return nonNil(is), nil
	case GGUFFloat32, GGUFFloat64:
		return nonNil(fs), nil
	case GGUFBool:
		return nonNil(bs), nil
	}
	return nonNil(strs), nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// tensorInfo reads one tensor entry and checks its dimensions and type.
func (r *ggufReader) tensorInfo() (GGUFTensorInfo, error) {
	var ti GGUFTensorInfo
	name, err := r.str()
	if err != nil {
		return ti, err
	}
	ti.Name = name
	nd, err := r.u32()
	if err != nil {
		return ti, err
	}
	if nd == 0 || nd > ggufMaxDims {
		return ti, fmt.Errorf("%d dimensions (want 1 to %d)", nd, ggufMaxDims)
	}
	ti.NE = make([]uint64, nd)
	for i := range ti.NE {
		if ti.NE[i], err = r.u64(); err != nil {
			return ti, err
		}
		if ti.NE[i] > math.MaxInt32 {
			return ti, fmt.Errorf("dimension ne[%d] = %d is too large", i, ti.NE[i])
		}
	}
	if ti.TypeID, err = r.u32(); err != nil {
		return ti, err
	}
	off, err := r.u64()
	if err != nil {
		return ti, err
	}
	typ, ok := ggmlTypes[ti.TypeID]
	if !ok {
		return ti, fmt.Errorf("unknown ggml type %d", ti.TypeID)
	}
	ti.DType = typ.dtype
	ti.Shape = make([]int, nd)
	for i, d := range ti.NE {
		ti.Shape[int(nd)-1-i] = int(d)
	}
	n, ok := numel(ti.Shape)
	if !ok {
		return ti, fmt.Errorf("ne %v has too many elements", ti.NE)
	}
	if ti.NE[0]%uint64(typ.block) != 0 {
		return ti, fmt.Errorf("row length ne[0] = %d is not a multiple of the %s block of %d", ti.NE[0], typ.name, typ.block)
	}
	if n/typ.block > math.MaxInt64/typ.bytes {
		return ti, fmt.Errorf("ne %v of %s is too many bytes", ti.NE, typ.name)
	}
	ti.Size = int64(n / typ.block * typ.bytes)
	if off > math.MaxInt64 {
		return ti, fmt.Errorf("offset %d is too large", off)
	}
	ti.Offset = int64(off)
	return ti, nil
}
