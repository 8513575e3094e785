package gpu

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// Buffer is a storage buffer on the device (usable as a kernel binding and as
// the source or destination of copies). Sizes are in bytes, a multiple of 4.
type Buffer struct {
	d     *Device
	buf   *wgpu.Buffer
	size  uint64
	label string
}

// Size returns the buffer's size in bytes.
func (b *Buffer) Size() uint64 { return b.size }

// Label returns the name the buffer was created with.
func (b *Buffer) Label() string { return b.label }

// Release frees the buffer. Ops that bind it must be released first.
func (b *Buffer) Release() {
	if b == nil || b.buf == nil {
		return
	}
	b.d.untrack(b, nil)
	b.buf.Release()
	b.buf = nil
}

const storageUsage = wgpu.BufferUsage_Storage | wgpu.BufferUsage_CopySrc | wgpu.BufferUsage_CopyDst

func align4(n uint64) uint64 { return (n + 3) &^ 3 }

// checkSize refuses sizes the device cannot allocate before wgpu sees them.
func (d *Device) checkSize(label string, size uint64) error {
	if size == 0 {
		return fmt.Errorf("gpu: buffer %q: size 0", label)
	}
	if size > d.limits.MaxBufferSize {
		return fmt.Errorf("gpu: buffer %q: %d bytes exceeds the device's maxBufferSize %d", label, size, d.limits.MaxBufferSize)
	}
	return nil
}

// NewBuffer allocates a zero-filled buffer of size bytes (rounded up to 4).
func (d *Device) NewBuffer(label string, size uint64) (*Buffer, error) {
	return d.createBuffer(label, align4(size), nil)
}

// UploadBytes creates a buffer holding data (zero-padded to a multiple of 4).
func (d *Device) UploadBytes(label string, data []byte) (*Buffer, error) {
	return d.createBuffer(label, align4(uint64(len(data))), data)
}

// createBuffer makes a storage buffer of size bytes, holding data when it
// is not nil. Such a buffer is mapped at creation and data copied straight
// into the driver's memory, instead of through a second staging copy as
// WriteBuffer does.
func (d *Device) createBuffer(label string, size uint64, data []byte) (*Buffer, error) {
	if err := d.checkSize(label, size); err != nil {
		return nil, err
	}
	var buf *wgpu.Buffer
	err := scoped(d.dev, func() (err error) {
		desc := &wgpu.BufferDescriptor{Label: label, Size: size, Usage: storageUsage, MappedAtCreation: data != nil}
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
	b := &Buffer{d: d, buf: buf, size: size, label: label}
	if err := d.track(b, nil); err != nil {
		buf.Release()
		return nil, err
	}
	return b, nil
}

// UploadF32 creates a buffer holding data as little-endian float32.
func (d *Device) UploadF32(label string, data []float32) (*Buffer, error) {
	return d.UploadBytes(label, f32Bytes(data))
}

// UploadU32 creates a buffer holding data as little-endian uint32 (token ids).
func (d *Device) UploadU32(label string, data []uint32) (*Buffer, error) {
	return d.UploadBytes(label, u32Bytes(data))
}

// WriteBytes queues a write of data at byte offset of b; it lands before the
// next submitted step. offset and len(data) must be multiples of 4.
func (d *Device) WriteBytes(b *Buffer, offset uint64, data []byte) error {
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

// WriteF32 queues a write of data starting at float32 element offsetElems.
func (d *Device) WriteF32(b *Buffer, offsetElems int, data []float32) error {
	return d.WriteBytes(b, uint64(offsetElems)*4, f32Bytes(data))
}

// WriteU32 queues a write of data starting at uint32 element offsetElems.
func (d *Device) WriteU32(b *Buffer, offsetElems int, data []uint32) error {
	return d.WriteBytes(b, uint64(offsetElems)*4, u32Bytes(data))
}

// ReadBytes copies size bytes at offset of b back to the host. It submits a
// copy and waits for it: use Recorder.Read to read inside a step instead.
func (d *Device) ReadBytes(b *Buffer, offset, size uint64) ([]byte, error) {
	r := d.NewRecorder()
	rb := r.Read(b, offset, size)
	if err := r.Submit(); err != nil {
		return nil, err
	}
	return rb.Bytes(), nil
}

// ReadF32 reads n float32 values starting at element offsetElems.
func (d *Device) ReadF32(b *Buffer, offsetElems, n int) ([]float32, error) {
	raw, err := d.ReadBytes(b, uint64(offsetElems)*4, uint64(n)*4)
	if err != nil {
		return nil, err
	}
	return bytesF32(raw), nil
}

// ReadU32 reads n uint32 values starting at element offsetElems.
func (d *Device) ReadU32(b *Buffer, offsetElems, n int) ([]uint32, error) {
	raw, err := d.ReadBytes(b, uint64(offsetElems)*4, uint64(n)*4)
	if err != nil {
		return nil, err
	}
	return bytesU32(raw), nil
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

func f32Bytes(v []float32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

func u32Bytes(v []uint32) []byte {
	out := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(out[4*i:], x)
	}
	return out
}

func bytesF32(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func bytesU32(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}
