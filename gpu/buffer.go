package gpu

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// Buffer is a buffer on the device: a storage buffer (a kernel binding and
// the source or destination of copies) or, made with Scope.Uniform, a
// uniform buffer the host rewrites between steps. Sizes are in bytes, a
// multiple of 4. The Scope that made it frees it.
type Buffer struct {
	d       *Device
	buf     *wgpu.Buffer
	size    uint64
	label   string
	uniform bool
}

// Size returns the buffer's size in bytes.
func (b *Buffer) Size() uint64 { return b.size }

// Label returns the name the buffer was created with.
func (b *Buffer) Label() string { return b.label }

func (b *Buffer) release() {
	if b.buf != nil {
		b.buf.Release()
		b.buf = nil
	}
}

const (
	storageUsage = wgpu.BufferUsage_Storage | wgpu.BufferUsage_CopySrc | wgpu.BufferUsage_CopyDst
	uniformUsage = wgpu.BufferUsage_Uniform | wgpu.BufferUsage_CopyDst
)

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// Buffer allocates a zero-filled storage buffer of size bytes (rounded up
// to 4).
func (s *Scope) Buffer(label string, size uint64) (*Buffer, error) {
	return s.create(label, align4(size), nil, false)
}

// Upload creates a storage buffer holding data (zero-padded to a multiple
// of 4). The buffer is mapped at creation and data copied straight into the
// driver's memory, instead of through a second staging copy as Write does.
func (s *Scope) Upload(label string, data []byte) (*Buffer, error) {
	return s.create(label, align4(uint64(len(data))), data, false)
}

// Uniform allocates a zero-filled uniform buffer of size bytes (a multiple
// of 16), for values the host writes each step.
func (s *Scope) Uniform(label string, size uint64) (*Buffer, error) {
	if size == 0 || size%16 != 0 {
		return nil, fmt.Errorf("gpu: uniform %q: %d bytes, want a positive multiple of 16", label, size)
	}
	if size > s.d.limits.MaxUniformBufferBindingSize {
		return nil, fmt.Errorf("gpu: uniform %q: %d bytes exceeds the device's %d-byte uniform binding limit", label, size, s.d.limits.MaxUniformBufferBindingSize)
	}
	return s.create(label, size, nil, true)
}

func (s *Scope) create(label string, size uint64, data []byte, uniform bool) (*Buffer, error) {
	if err := s.usable(); err != nil {
		return nil, err
	}
	d := s.d
	if size == 0 {
		return nil, fmt.Errorf("gpu: buffer %q: size 0", label)
	}
	if size > d.limits.MaxBufferSize {
		return nil, fmt.Errorf("gpu: buffer %q: %d bytes exceeds the device's maxBufferSize %d", label, size, d.limits.MaxBufferSize)
	}
	usage := storageUsage
	if uniform {
		usage = uniformUsage
	}
	var buf *wgpu.Buffer
	err := scoped(d.dev, func() (err error) {
		desc := &wgpu.BufferDescriptor{Label: label, Size: size, Usage: usage, MappedAtCreation: data != nil}
		if buf, err = d.dev.CreateBuffer(desc); err != nil || data == nil {
			return err
		}
		copy(buf.GetMappedRange(0, uint(size)), data)
		return buf.Unmap()
	})
	if err != nil {
		if buf != nil {
			buf.Release()
		}
		return nil, fmt.Errorf("gpu: buffer %q (%d bytes): %w", label, size, err)
	}
	b := &Buffer{d: d, buf: buf, size: size, label: label, uniform: uniform}
	s.bufs = append(s.bufs, b)
	return b, nil
}

// Write queues a write of data at byte offset of b; it lands before the
// next submitted step (and after every step already submitted). offset and
// len(data) must be multiples of 4.
func (d *Device) Write(b *Buffer, offset uint64, data []byte) error {
	if err := b.usable(d); err != nil {
		return err
	}
	if offset%4 != 0 || len(data)%4 != 0 {
		return fmt.Errorf("gpu: write to %q: offset %d and length %d must be multiples of 4", b.label, offset, len(data))
	}
	if offset+uint64(len(data)) > b.size {
		return fmt.Errorf("gpu: write to %q: [%d, %d) is past its %d bytes", b.label, offset, offset+uint64(len(data)), b.size)
	}
	if len(data) == 0 {
		return nil
	}
	return scoped(d.dev, func() error { return d.queue.WriteBuffer(b.buf, offset, data) })
}

// Read copies size bytes at offset of b back to the host. It submits a
// copy and waits for it: use Recorder.Read to read inside a step instead.
func (d *Device) Read(b *Buffer, offset, size uint64) ([]byte, error) {
	r := d.NewRecorder(Extent{})
	rb := r.Read(b, offset, size)
	if err := r.Submit(); err != nil {
		return nil, err
	}
	return rb.Bytes(), nil
}

// ReadF32 reads n float32 values starting at element offsetElems.
func (d *Device) ReadF32(b *Buffer, offsetElems, n int) ([]float32, error) {
	raw, err := d.Read(b, uint64(offsetElems)*4, uint64(n)*4)
	if err != nil {
		return nil, err
	}
	return BytesF32(raw), nil
}

// usable reports why b cannot be used on d, if it cannot.
func (b *Buffer) usable(d *Device) error {
	switch {
	case b == nil:
		return fmt.Errorf("gpu: nil buffer")
	case b.buf == nil:
		return fmt.Errorf("gpu: buffer %q was released", b.label)
	case b.d != d:
		return fmt.Errorf("gpu: buffer %q belongs to another device", b.label)
	case d.isClosed():
		return errClosed
	}
	return nil
}

// BytesF32 decodes little-endian float32 values.
func BytesF32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// BytesU32 decodes little-endian uint32 values.
func BytesU32(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}
