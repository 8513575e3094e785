package weights

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
)

// WriteGGUF writes a GGUF v3 file: the metadata entries in order, then the
// tensors in order, each with its Hugging Face shape stored reversed (ne[0]
// the row length) and its data aligned to general.alignment (32 unless an
// entry sets it). Quantized tensors' Data are their blocks, rows back to
// back. Everything is checked first, so it never writes a file that
// [OpenGGUF] would reject.
func WriteGGUF(w io.Writer, kvs []GGUFKV, tensors []WriteTensor) error {
	header, align, err := encodeGGUFHeader(kvs, tensors)
	if err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	pad := make([]byte, align)
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
		if n := len(t.Data) % align; n != 0 {
			if _, err := w.Write(pad[:align-n]); err != nil {
				return err
			}
		}
	}
	return nil
}

// WriteGGUFFile writes a GGUF file at path, as [WriteGGUF] does. On failure
// the partial file is removed.
func WriteGGUFFile(path string, kvs []GGUFKV, tensors []WriteTensor) error {
	if _, _, err := encodeGGUFHeader(kvs, tensors); err != nil {
		return labelPath(err, path)
	}
	return writeFile(path, func(w io.Writer) error { return WriteGGUF(w, kvs, tensors) })
}

// encodeGGUFHeader returns everything before the data section, padded to
// the alignment, and the alignment.
func encodeGGUFHeader(kvs []GGUFKV, tensors []WriteTensor) ([]byte, int, error) {
	var b bytes.Buffer
	le := binary.LittleEndian
	u32 := func(v uint32) { binary.Write(&b, le, v) }
	u64 := func(v uint64) { binary.Write(&b, le, v) }
	str := func(s string) { u64(uint64(len(s))); b.WriteString(s) }

	b.WriteString("GGUF")
	u32(3)
	u64(uint64(len(tensors)))
	u64(uint64(len(kvs)))
	align := ggufDefaultAlignment
	keys := map[string]bool{}
	for _, kv := range kvs {
		if keys[kv.Key] {
			return nil, 0, &Error{Err: fmt.Errorf("metadata key %q given twice", kv.Key)}
		}
		keys[kv.Key] = true
		if kv.Key == "general.alignment" {
			a, ok := kv.Value.(uint64)
			if !ok || kv.Type != GGUFUint32 || a == 0 || a&(a-1) != 0 || a > 1<<30 {
				return nil, 0, &Error{Err: fmt.Errorf("metadata key \"general.alignment\": want a uint32 power of two, got %s %v", kv.Type, kv.Value)}
			}
			align = int(a)
		}
		str(kv.Key)
		u32(uint32(kv.Type))
		var err error
		if kv.Type == GGUFArray {
			u32(uint32(kv.Elem))
			err = encodeGGUFArray(&b, kv.Elem, kv.Value)
		} else {
			err = encodeGGUFScalar(&b, kv.Type, kv.Value)
		}
		if err != nil {
			return nil, 0, &Error{Err: fmt.Errorf("metadata key %q: %v", kv.Key, err)}
		}
	}
	names := map[string]bool{}
	var offset uint64
	for _, t := range tensors {
		id, ok := GGMLTypeID(t.DType)
		switch {
		case t.Name == "":
			return nil, 0, &Error{Err: fmt.Errorf("tensor with an empty name")}
		case names[t.Name]:
			return nil, 0, &Error{Tensor: t.Name, Err: fmt.Errorf("written twice")}
		case !ok:
			return nil, 0, &Error{Tensor: t.Name, Err: fmt.Errorf("dtype %v has no GGUF type", t.DType)}
		case len(t.Shape) == 0 || len(t.Shape) > ggufMaxDims:
			return nil, 0, &Error{Tensor: t.Name, Err: fmt.Errorf("shape %v: GGUF tensors have 1 to %d dimensions", t.Shape, ggufMaxDims)}
		}
		names[t.Name] = true
		want, ok := t.DType.DataBytes(t.Shape)
		if !ok || len(t.Data) != want {
			return nil, 0, &Error{Tensor: t.Name, Err: fmt.Errorf("%d bytes of data do not match %v %v", len(t.Data), t.DType, t.Shape)}
		}
		str(t.Name)
		u32(uint32(len(t.Shape)))
		ne := slices.Clone(t.Shape)
		slices.Reverse(ne)
		for _, d := range ne {
			u64(uint64(d))
		}
		u32(id)
		u64(offset)
		offset += (uint64(len(t.Data)) + uint64(align) - 1) / uint64(align) * uint64(align)
	}
	for b.Len()%align != 0 {
		b.WriteByte(0)
	}
	return b.Bytes(), align, nil
}

func encodeGGUFScalar(b *bytes.Buffer, t GGUFType, v any) error {
	le := binary.LittleEndian
	bad := func() error { return fmt.Errorf("value %v (%T) is not a %s", v, v, t) }
	switch t {
	case GGUFUint8, GGUFUint16, GGUFUint32, GGUFUint64:
		u, ok := v.(uint64)
		limit := map[GGUFType]uint64{GGUFUint8: math.MaxUint8, GGUFUint16: math.MaxUint16, GGUFUint32: math.MaxUint32, GGUFUint64: math.MaxUint64}[t]
		if !ok || u > limit {
			return bad()
		}
		var buf [8]byte
		le.PutUint64(buf[:], u)
		b.Write(buf[:ggufScalarSizes[t]])
	case GGUFInt8, GGUFInt16, GGUFInt32, GGUFInt64:
		i, ok := v.(int64)
		bits := 8 * ggufScalarSizes[t]
		if !ok || bits < 64 && (i < -1<<(bits-1) || i >= 1<<(bits-1)) {
			return bad()
		}
		var buf [8]byte
		le.PutUint64(buf[:], uint64(i))
		b.Write(buf[:ggufScalarSizes[t]])
	case GGUFFloat32:
		f, ok := v.(float64)
		if !ok {
			return bad()
		}
		binary.Write(b, le, math.Float32bits(float32(f)))
	case GGUFFloat64:
		f, ok := v.(float64)
		if !ok {
			return bad()
		}
		binary.Write(b, le, math.Float64bits(f))
	case GGUFBool:
		x, ok := v.(bool)
		if !ok {
			return bad()
		}
		if x {
			b.WriteByte(1)
		} else {
			b.WriteByte(0)
		}
	case GGUFString:
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		binary.Write(b, le, uint64(len(s)))
		b.WriteString(s)
	default:
		return fmt.Errorf("unknown value type %d", uint32(t))
	}
	return nil
}

func encodeGGUFArray(b *bytes.Buffer, elem GGUFType, v any) error {
	var items []any
	switch v := v.(type) {
	case []uint64:
		for _, x := range v {
			items = append(items, x)
		}
	case []int64:
		for _, x := range v {
			items = append(items, x)
		}
	case []float64:
		for _, x := range v {
			items = append(items, x)
		}
	case []bool:
		for _, x := range v {
			items = append(items, x)
		}
	case []string:
		for _, x := range v {
			items = append(items, x)
		}
	default:
		return fmt.Errorf("array value %T is not a slice of uint64, int64, float64, bool or string", v)
	}
	binary.Write(b, binary.LittleEndian, uint64(len(items)))
	for _, x := range items {
		if err := encodeGGUFScalar(b, elem, x); err != nil {
			return err
		}
	}
	return nil
}
