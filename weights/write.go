package weights

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
)

// WriteTensor is one tensor to be written by [Write].
type WriteTensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte // packed little-endian elements, Numel × DType.Size() bytes
}

// headerEntry is the JSON form of one tensor in the header; the field order
// matches what the reference writers produce.
type headerEntry struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// Write writes a safetensors file holding the tensors, in the given order,
// and the metadata (omitted if nil). The header is padded with spaces to a
// multiple of 8 bytes so that the data section, and with it every 8-byte
// aligned tensor, is aligned in a mapping. Write checks each tensor's data
// length against its dtype and shape, so it never produces a file that
// [Open] would reject.
func Write(w io.Writer, tensors []WriteTensor, metadata map[string]string) error {
	header, err := encodeHeader(tensors, metadata)
	if err != nil {
		return err
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("weights: write: %w", err)
	}
	if _, err := w.Write(header); err != nil {
		return fmt.Errorf("weights: write: %w", err)
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return fmt.Errorf("weights: write: %w", err)
		}
	}
	return nil
}

func encodeHeader(tensors []WriteTensor, metadata map[string]string) ([]byte, error) {
	fail := func(name, format string, args ...any) ([]byte, error) {
		return nil, &Error{Tensor: name, Err: fmt.Errorf(format, args...)}
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	// Map keys would come out sorted, losing the caller's order, so the
	// object is assembled by hand from individually encoded parts.
	writeKey := func(key string) {
		if buf.Len() > 1 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(key) // marshalling a string cannot fail
		buf.Write(k)
		buf.WriteByte(':')
	}
	if metadata != nil {
		writeKey(metadataKey)
		m, _ := json.Marshal(metadata) // map[string]string cannot fail
		buf.Write(m)
	}
	seen := make(map[string]bool, len(tensors))
	var offset int64
	for _, t := range tensors {
		switch {
		case t.Name == "":
			return fail("", "tensor with an empty name")
		case t.Name == metadataKey:
			return fail(t.Name, "name is reserved for metadata")
		case seen[t.Name]:
			return fail(t.Name, "written twice")
		case t.DType.Size() == 0:
			return fail(t.Name, "invalid dtype %v", t.DType)
		}
		seen[t.Name] = true
		n, ok := numel(t.Shape)
		if !ok || n > math.MaxInt/t.DType.Size() {
			return fail(t.Name, "invalid shape %v", t.Shape)
		}
		if want := n * t.DType.Size(); len(t.Data) != want {
			return fail(t.Name, "%d bytes of data, but %s %v needs %d", len(t.Data), t.DType, t.Shape, want)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{} // a scalar: JSON [] rather than null
		}
		writeKey(t.Name)
		e, err := json.Marshal(headerEntry{
			DType:       t.DType.String(),
			Shape:       shape,
			DataOffsets: [2]int64{offset, offset + int64(len(t.Data))},
		})
		if err != nil {
			return fail(t.Name, "%v", err)
		}
		buf.Write(e)
		offset += int64(len(t.Data))
	}
	buf.WriteByte('}')
	for buf.Len()%8 != 0 {
		buf.WriteByte(' ')
	}
	if buf.Len() > MaxHeaderSize {
		return nil, &Error{Err: fmt.Errorf("header of %d bytes exceeds the limit of %d", buf.Len(), MaxHeaderSize)}
	}
	return buf.Bytes(), nil
}

// WriteFile writes a safetensors file at path, as [Write] does. On failure
// the partial file is removed.
func WriteFile(path string, tensors []WriteTensor, metadata map[string]string) error {
	// Encoding the header first reports bad input without touching the
	// file system.
	if _, err := encodeHeader(tensors, metadata); err != nil {
		return labelPath(err, path)
	}
	return writeFile(path, func(w io.Writer) error { return Write(w, tensors, metadata) })
}

// writeFile creates path and fills it through write, buffered; on failure
// the partial file is removed. Errors name the path.
func writeFile(path string, write func(io.Writer) error) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return &Error{Path: path, Err: stripPath(err)}
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(path)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return labelPath(err, path)
	}
	if err := bw.Flush(); err != nil {
		return &Error{Path: path, Err: err}
	}
	if err := f.Close(); err != nil {
		return &Error{Path: path, Err: stripPath(err)}
	}
	return nil
}

// F32Bytes packs float32 values as little-endian F32 data.
func F32Bytes(x []float32) []byte {
	b := make([]byte, 0, 4*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// BF16Bytes packs float32 values as little-endian BF16 data, rounding each
// to nearest even as [Float32ToBF16] does.
func BF16Bytes(x []float32) []byte {
	b := make([]byte, 0, 2*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint16(b, Float32ToBF16(v))
	}
	return b
}

// F16Bytes packs float32 values as little-endian F16 data, rounding each to
// nearest even as [Float32ToF16] does.
func F16Bytes(x []float32) []byte {
	b := make([]byte, 0, 2*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint16(b, Float32ToF16(v))
	}
	return b
}

// I32Bytes packs int32 values as little-endian I32 data, as used for token
// ids in test files.
func I32Bytes(x []int32) []byte {
	b := make([]byte, 0, 4*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return b
}
