package gpu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// Binding is a range of a buffer bound to one of a kernel's bindings.
type Binding struct {
	Buf    *Buffer
	Offset uint64 // bytes; a multiple of Limits.MinStorageBufferOffsetAlignment
	Size   uint64 // bytes; 0 means to the end of the buffer
}

// Bind binds the whole buffer.
func Bind(b *Buffer) Binding { return Binding{Buf: b} }

// Groups is a dispatch size in workgroups.
type Groups struct{ X, Y, Z uint32 }

// MaxGroupsPerDim is the WebGPU default limit on workgroups per dimension,
// the value every adapter seen so far reports.
const MaxGroupsPerDim = 65535

// Groups1D spreads n workgroups over a 2-D grid when n exceeds
// MaxGroupsPerDim. The grid may hold up to X-1 more workgroups than n: a
// shader recovers its linear index as wid.x + wid.y * num_workgroups.x and
// returns when it is n or more.
func Groups1D(n int) Groups {
	if n <= MaxGroupsPerDim {
		return Groups{uint32(n), 1, 1}
	}
	y := (n + MaxGroupsPerDim - 1) / MaxGroupsPerDim
	x := (n + y - 1) / y
	return Groups{uint32(x), uint32(y), 1}
}

// Extent is how much work one step holds, for the dispatches whose size
// depends on it: Rows tokens, attending to at most Keys cache rows.
type Extent struct{ Rows, Keys int }

// Dispatch describes an op to prepare.
type Dispatch struct {
	// Label names the op in errors, e.g. "layer 3 o_proj".
	Label string
	// Role is what the op computes, the name profiles group timings by,
	// e.g. "o_proj" (default: Label).
	Role string
	// Params, when not nil, is a struct of 4-byte fields mirrored by the
	// shader's `@group(0) @binding(0) var<uniform> p: Params;`, padded to a
	// multiple of 16 bytes. It is written once, when the op is made.
	Params any
	// Bindings are the shader's bindings after the params (from 1, or from
	// 0 without Params) in order: storage buffers and uniform buffers.
	Bindings []Binding
	// Groups is the dispatch size, or, when Size is set, the size for the
	// largest step, checked against the device's limits up front.
	Groups Groups
	// Size, when set, gives the dispatch size of a step of the given
	// extent; it is called each time the op is recorded.
	Size func(Extent) Groups
}

// Op is one prepared dispatch: a kernel, its params and its bind group,
// built once and run any number of times by a Recorder. Its Scope frees it.
type Op struct {
	Label string
	Role  string

	k         *Kernel
	params    *wgpu.Buffer
	bindGroup *wgpu.BindGroup
	groups    Groups
	size      func(Extent) Groups
	bufs      []*Buffer // checked before each submit
}

// ParamsBytes encodes a params struct field by field, little-endian, the
// way the matching WGSL struct lays it out when every field is a 4-byte
// scalar (or an array of them) and the whole is padded to 16 bytes.
func ParamsBytes(params any) ([]byte, error) {
	var out bytes.Buffer
	if err := binary.Write(&out, binary.LittleEndian, params); err != nil {
		return nil, fmt.Errorf("params %T: %w", params, err)
	}
	if out.Len() == 0 || out.Len()%16 != 0 {
		return nil, fmt.Errorf("params %T: %d bytes, want a positive multiple of 16 (pad the struct)", params, out.Len())
	}
	return out.Bytes(), nil
}

// Op prepares a dispatch of k described by spec.
func (s *Scope) Op(k *Kernel, spec Dispatch) (*Op, error) {
	if k == nil {
		return nil, fmt.Errorf("gpu: op %s: nil kernel", spec.Label)
	}
	d := s.d
	fail := func(format string, args ...any) (*Op, error) {
		return nil, fmt.Errorf("gpu: op %s (%s): %s", spec.Label, k.name, fmt.Sprintf(format, args...))
	}
	if err := s.usable(); err != nil {
		return nil, err
	}
	if k.d != d {
		return fail("kernel compiled on another device")
	}
	var raw []byte
	if spec.Params != nil {
		var err error
		if raw, err = ParamsBytes(spec.Params); err != nil {
			return fail("%v", err)
		}
		if uint64(len(raw)) > d.limits.MaxUniformBufferBindingSize {
			return fail("params are %d bytes, over the uniform binding limit %d", len(raw), d.limits.MaxUniformBufferBindingSize)
		}
	}
	if err := d.checkGroups(spec.Groups); err != nil {
		return fail("%v", err)
	}
	storage := 0
	var entries []wgpu.BindGroupEntry
	next := uint32(0)
	if raw != nil {
		entries = append(entries, wgpu.BindGroupEntry{Binding: 0, Size: uint64(len(raw))})
		next = 1
	}
	bufs := make([]*Buffer, len(spec.Bindings))
	for i, b := range spec.Bindings {
		n := next + uint32(i)
		if err := b.Buf.usable(d); err != nil {
			return fail("binding %d: %v", n, err)
		}
		size := b.Size
		if size == 0 && b.Offset < b.Buf.size {
			size = b.Buf.size - b.Offset
		}
		limit, align := d.limits.MaxStorageBufferBindingSize, uint64(d.limits.MinStorageBufferOffsetAlignment)
		if b.Buf.uniform {
			limit = d.limits.MaxUniformBufferBindingSize
		} else {
			storage++
		}
		switch {
		case b.Offset%align != 0:
			return fail("binding %d (%s): offset %d is not a multiple of %d", n, b.Buf.label, b.Offset, align)
		case size == 0 || size%4 != 0 || b.Offset+size > b.Buf.size:
			return fail("binding %d (%s): range [%d, +%d) does not fit its %d bytes in words", n, b.Buf.label, b.Offset, size, b.Buf.size)
		case size > limit:
			return fail("binding %d (%s): %d bytes exceeds the device's binding limit %d", n, b.Buf.label, size, limit)
		}
		entries = append(entries, wgpu.BindGroupEntry{Binding: n, Buffer: b.Buf.buf, Offset: b.Offset, Size: size})
		bufs[i] = b.Buf
	}
	if storage > int(d.limits.MaxStorageBuffersPerShaderStage) {
		return fail("%d storage bindings, over the device's %d", storage, d.limits.MaxStorageBuffersPerShaderStage)
	}

	role := spec.Role
	if role == "" {
		role = spec.Label
	}
	o := &Op{Label: spec.Label, Role: role, k: k, groups: spec.Groups, size: spec.Size, bufs: bufs}
	err := scoped(d.dev, func() (err error) {
		if raw != nil {
			o.params, err = d.dev.CreateBuffer(&wgpu.BufferDescriptor{
				Label: spec.Label + " params",
				Size:  uint64(len(raw)),
				Usage: wgpu.BufferUsage_Uniform | wgpu.BufferUsage_CopyDst,
			})
			if err != nil {
				return err
			}
			if err := d.queue.WriteBuffer(o.params, 0, raw); err != nil {
				return err
			}
			entries[0].Buffer = o.params
		}
		o.bindGroup, err = d.dev.CreateBindGroup(&wgpu.BindGroupDescriptor{Label: spec.Label, Layout: k.layout, Entries: entries})
		return err
	})
	if err != nil {
		o.release()
		if strings.Contains(err.Error(), "number of bindings defined in the bind group layout") {
			// The layout is derived from the shader, which leaves out
			// bindings it never uses; a kernel must read its params.
			return fail("%v\n(wgpu leaves bindings the shader does not use, params included, out of its layout: is one unused?)", err)
		}
		return fail("%v", err)
	}
	s.ops = append(s.ops, o)
	return o, nil
}

func (d *Device) checkGroups(g Groups) error {
	lim := d.limits.MaxComputeWorkgroupsPerDimension
	if g.X > lim || g.Y > lim || g.Z > lim {
		return fmt.Errorf("dispatch %d×%d×%d exceeds %d workgroups per dimension (use Groups1D)", g.X, g.Y, g.Z, lim)
	}
	return nil
}

// GroupsFor returns the op's dispatch size for a step of extent e.
func (o *Op) GroupsFor(e Extent) Groups {
	if o.size != nil {
		return o.size(e)
	}
	return o.groups
}

func (o *Op) release() {
	if o.bindGroup != nil {
		o.bindGroup.Release()
		o.bindGroup = nil
	}
	if o.params != nil {
		o.params.Release()
		o.params = nil
	}
}
