package weights

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// MaxHeaderSize is the largest JSON header accepted, in bytes. Real headers
// are a few hundred kilobytes even for the largest models; the bound stops a
// corrupt length field from making the reader allocate or scan gigabytes.
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header key holding free-form string metadata.
const metadataKey = "__metadata__"

// TensorInfo describes one tensor as declared in a safetensors header.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	// Begin and End are the tensor's byte range, relative to the start of
	// the data section (which follows the header).
	Begin, End int64
}

// Numel returns the number of elements, the product of the shape (1 for a
// scalar with an empty shape).
func (ti TensorInfo) Numel() int {
	n, _ := numel(ti.Shape)
	return n
}

// numel multiplies out a shape, reporting false if a dimension is negative
// or the product does not fit an int.
func numel(shape []int) (int, bool) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			n = 0
		}
	}
	if n == 0 {
		// A zero dimension makes the others irrelevant, even ones whose
		// product alone would overflow.
		return 0, true
	}
	for _, d := range shape {
		if n > math.MaxInt/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

// ParseHeader validates the header of a safetensors file and returns its
// tensors sorted by name, its metadata (nil if absent) and the file offset at
// which the data section starts.
//
// data must hold at least the first 8+N bytes of the file, N being the
// header length, and fileSize is the size of the whole file. Every tensor is
// checked before anything is returned: known dtype, valid shape, byte range
// inside the data section and matching the shape, and no two tensors sharing
// bytes. ParseHeader never panics; it is the function fuzzed by the tests.
func ParseHeader(data []byte, fileSize int64) (infos []TensorInfo, metadata map[string]string, dataStart int64, err error) {
	return parseHeader("", data, fileSize)
}

// parseHeader is ParseHeader with the file path used to label errors.
func parseHeader(path string, data []byte, fileSize int64) ([]TensorInfo, map[string]string, int64, error) {
	fail := func(tensor, format string, args ...any) ([]TensorInfo, map[string]string, int64, error) {
		return nil, nil, 0, &Error{Path: path, Tensor: tensor, Err: fmt.Errorf(format, args...)}
	}
	if fileSize < 8 || len(data) < 8 {
		return fail("", "file is %d bytes, too short for the 8-byte header length", min(fileSize, int64(len(data))))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > MaxHeaderSize {
		return fail("", "header length %d exceeds the limit of %d bytes", n, MaxHeaderSize)
	}
	dataStart := 8 + int64(n)
	if dataStart > fileSize {
		return fail("", "header length %d runs past the end of the %d-byte file", n, fileSize)
	}
	if int64(len(data)) < dataStart {
		return fail("", "got %d bytes, need the whole %d-byte header", len(data), dataStart)
	}
	dataSize := fileSize - dataStart

	entries, metaRaw, err := splitHeader(data[8:dataStart])
	if err != nil {
		return nil, nil, 0, labelPath(err, path)
	}
	var metadata map[string]string
	if metaRaw != nil {
		if err := json.Unmarshal(metaRaw, &metadata); err != nil {
			return fail("", "%s must map strings to strings", metadataKey)
		}
	}

	infos := make([]TensorInfo, 0, len(entries))
	for _, e := range entries {
		ti, err := parseEntry(e.name, e.raw, dataSize)
		if err != nil {
			return fail(e.name, "%v", err)
		}
		infos = append(infos, ti)
	}

	// Sorting by start offset puts any overlapping pair next to each other.
	// Empty tensors own no bytes, so they cannot overlap anything.
	byBegin := make([]*TensorInfo, 0, len(infos))
	for i := range infos {
		if infos[i].End > infos[i].Begin {
			byBegin = append(byBegin, &infos[i])
		}
	}
	slices.SortFunc(byBegin, func(a, b *TensorInfo) int {
		if c := compareInt64(a.Begin, b.Begin); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	for i := 1; i < len(byBegin); i++ {
		prev, cur := byBegin[i-1], byBegin[i]
		if cur.Begin < prev.End {
			return fail(cur.Name, "data_offsets [%d, %d] overlap tensor %q [%d, %d]",
				cur.Begin, cur.End, prev.Name, prev.Begin, prev.End)
		}
	}

	slices.SortFunc(infos, func(a, b TensorInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, metadata, dataStart, nil
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type rawEntry struct {
	name string
	raw  json.RawMessage
}

// splitHeader checks that the header is a single JSON object with unique
// keys and splits it into tensor entries, in header order, and the raw
// metadata value (nil if absent). A streaming decoder is used rather than
// unmarshalling into a map because a map would silently keep only the last
// of two entries with the same name. Errors are *Error without a path.
func splitHeader(header []byte) ([]rawEntry, json.RawMessage, error) {
	fail := func(tensor string, err error) ([]rawEntry, json.RawMessage, error) {
		return nil, nil, &Error{Tensor: tensor, Err: err}
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	tok, err := dec.Token()
	if err != nil {
		return fail("", jsonError(err))
	}
	if tok != json.Delim('{') {
		return fail("", errors.New("header is not a JSON object"))
	}
	var entries []rawEntry
	var meta json.RawMessage
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail("", jsonError(err))
		}
		key, ok := tok.(string)
		if !ok {
			// Unreachable with a conforming decoder: object keys are strings.
			return fail("", errors.New("invalid JSON header: object key is not a string"))
		}
		if seen[key] {
			if key == metadataKey {
				return fail("", fmt.Errorf("%s appears twice in the header", key))
			}
			return fail(key, errors.New("appears twice in the header"))
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fail("", jsonError(err))
		}
		switch key {
		case metadataKey:
			meta = raw
		case "":
			return fail("", errors.New("header has a tensor with an empty name"))
		default:
			entries = append(entries, rawEntry{key, raw})
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return fail("", jsonError(err))
	}
	// Writers pad the header with spaces; anything else after the object
	// means the header is not what it claims to be.
	if _, err := dec.Token(); err != io.EOF {
		return fail("", errors.New("invalid JSON header: data after the top-level object"))
	}
	return entries, meta, nil
}

func jsonError(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errors.New("invalid JSON header: unexpected end of header")
	}
	return fmt.Errorf("invalid JSON header: %v", err)
}

// parseEntry validates one tensor entry against a data section of dataSize
// bytes. Errors do not name the tensor; the caller adds it.
func parseEntry(name string, raw json.RawMessage, dataSize int64) (TensorInfo, error) {
	ti := TensorInfo{Name: name}
	var fields map[string]json.RawMessage
	if !isJSONObject(raw) || json.Unmarshal(raw, &fields) != nil {
		return ti, errors.New("entry is not a JSON object")
	}

	// Keys are looked up exactly; encoding/json's struct decoding would also
	// accept "DTYPE" or "Shape", which other readers reject.
	dtypeRaw, ok := fields["dtype"]
	if !ok {
		return ti, errors.New("missing dtype")
	}
	var dtypeName string
	if json.Unmarshal(dtypeRaw, &dtypeName) != nil {
		return ti, errors.New("dtype is not a string")
	}
	dt, err := ParseDType(dtypeName)
	if err != nil {
		return ti, err
	}
	ti.DType = dt

	shapeRaw, ok := fields["shape"]
	if !ok {
		return ti, errors.New("missing shape")
	}
	dims, err := parseInts(shapeRaw, "shape")
	if err != nil {
		return ti, err
	}
	ti.Shape = make([]int, len(dims))
	for i, d := range dims {
		if d < 0 {
			return ti, fmt.Errorf("shape %v has negative dimension %d", dims, d)
		}
		if d > math.MaxInt {
			return ti, fmt.Errorf("shape %v has dimension %d too large for this platform", dims, d)
		}
		ti.Shape[i] = int(d)
	}
	n, ok := numel(ti.Shape)
	if !ok || int64(n) > math.MaxInt64/int64(dt.Size()) {
		return ti, fmt.Errorf("shape %v has too many elements", ti.Shape)
	}
	want := int64(n) * int64(dt.Size())

	offRaw, ok := fields["data_offsets"]
	if !ok {
		return ti, errors.New("missing data_offsets")
	}
	offs, err := parseInts(offRaw, "data_offsets")
	if err != nil {
		return ti, err
	}
	if len(offs) != 2 {
		return ti, fmt.Errorf("data_offsets %v should be [begin, end]", offs)
	}
	ti.Begin, ti.End = offs[0], offs[1]
	switch {
	case ti.Begin < 0:
		return ti, fmt.Errorf("data_offsets [%d, %d] start before the data", ti.Begin, ti.End)
	case ti.Begin > ti.End:
		return ti, fmt.Errorf("data_offsets [%d, %d] end before they begin", ti.Begin, ti.End)
	case ti.End > dataSize:
		return ti, fmt.Errorf("data_offsets [%d, %d] run past the end of the %d-byte data section", ti.Begin, ti.End, dataSize)
	case ti.End-ti.Begin != want:
		return ti, fmt.Errorf("data_offsets [%d, %d] hold %d bytes, but %s %v needs %d",
			ti.Begin, ti.End, ti.End-ti.Begin, dt, ti.Shape, want)
	}
	return ti, nil
}

func isJSONObject(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '{'
}

// parseInts decodes a JSON array of integers written in plain decimal, as
// every safetensors writer produces. Going through strconv rather than
// unmarshalling into []int64 gives errors that do not mention Go types.
func parseInts(raw json.RawMessage, field string) ([]int64, error) {
	var elems []json.RawMessage
	if !isJSONArray(raw) || json.Unmarshal(raw, &elems) != nil {
		return nil, fmt.Errorf("%s is not an array", field)
	}
	out := make([]int64, len(elems))
	for i, e := range elems {
		s := string(bytes.TrimSpace(e))
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if len(s) > 40 {
				s = s[:40] + "..."
			}
			return nil, fmt.Errorf("%s element %d (%s) is not an integer in range", field, i, strconv.Quote(s))
		}
		out[i] = v
	}
	return out, nil
}

func isJSONArray(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == '['
}
