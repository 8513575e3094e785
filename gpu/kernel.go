package gpu

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"text/template"

	"github.com/qwgpu/qwgpu/wgsl"
	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// Kernel is a compiled compute pipeline: one WGSL template rendered with one
// set of variables. Kernels are cached per device for its whole life, since
// wgpu 0.17 never frees a pipeline.
type Kernel struct {
	d        *Device
	name     string
	pipeline *wgpu.ComputePipeline
	layout   *wgpu.BindGroupLayout
}

// Name returns the cache key of the kernel: its shader and variables.
func (k *Kernel) Name() string { return k.name }

// Kernel compiles wgsl/<name>.wgsl rendered with vars (text/template; a
// missing variable is an error) with entry point "main", or returns the
// cached pipeline for the same name and vars.
func (d *Device) Kernel(name string, vars map[string]any) (*Kernel, error) {
	return d.KernelEntry(name, "main", vars)
}

// KernelEntry is Kernel for a shader file with several entry points.
func (d *Device) KernelEntry(name, entry string, vars map[string]any) (*Kernel, error) {
	key := cacheKey(name, entry, vars)
	if k := d.cached(key); k != nil {
		return k, nil
	}
	src, err := wgsl.Source(name)
	if err != nil {
		return nil, fmt.Errorf("gpu: %w", err)
	}
	code, err := render(name, src, vars)
	if err != nil {
		return nil, err
	}
	return d.compile(key, code, entry)
}

// KernelSource compiles WGSL text that is not in package wgsl, cached under
// key. It exists for tests and experiments.
func (d *Device) KernelSource(key, code, entry string) (*Kernel, error) {
	key = "source:" + key + ":" + entry
	if k := d.cached(key); k != nil {
		return k, nil
	}
	return d.compile(key, code, entry)
}

func (d *Device) cached(key string) *Kernel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.kernels[key]
}

// cacheKey spells name, entry and vars in a fixed order.
func cacheKey(name, entry string, vars map[string]any) string {
	keys := mapsKeys(vars)
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(name)
	if entry != "main" {
		b.WriteString(":" + entry)
	}
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, vars[k])
	}
	return b.String()
}

// templateFuncs are the integer helpers shader templates may use, e.g.
// {{mul .ROWS .TPR}} for a workgroup size that must be a literal.
var templateFuncs = template.FuncMap{
	"add": func(a, b int) int { return a + b },
	"sub": func(a, b int) int { return a - b },
	"mul": func(a, b int) int { return a * b },
	"div": func(a, b int) int { return a / b },
}

// render fills in a shader template.
func render(name, src string, vars map[string]any) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(templateFuncs).Parse(src)
	if err != nil {
		return "", fmt.Errorf("gpu: shader %s: template: %w", name, err)
	}
	var out bytes.Buffer
	if err := t.Execute(&out, vars); err != nil {
		return "", fmt.Errorf("gpu: shader %s: template: %w", name, err)
	}
	return out.String(), nil
}

func (d *Device) compile(key, code, entry string) (*Kernel, error) {
	if d.isClosed() {
		return nil, errClosed
	}
	var module *wgpu.ShaderModule
	var pipeline *wgpu.ComputePipeline
	err := scoped(d.dev, func() (err error) {
		module, err = d.dev.CreateShaderModule(&wgpu.ShaderModuleDescriptor{
			Label:          key,
			WGSLDescriptor: &wgpu.ShaderModuleWGSLDescriptor{Code: code},
		})
		if err != nil {
			return err
		}
		// A nil layout lets wgpu derive the bind group layout from the
		// shader, so bindings need no second description on the Go side.
		pipeline, err = d.dev.CreateComputePipeline(&wgpu.ComputePipelineDescriptor{
			Label:   key,
			Compute: wgpu.ProgrammableStageDescriptor{Module: module, EntryPoint: entry},
		})
		return err
	})
	if module != nil {
		module.Release()
	}
	if err != nil {
		if pipeline != nil {
			pipeline.Release()
		}
		return nil, fmt.Errorf("gpu: kernel %s: %w", key, err)
	}
	k := &Kernel{d: d, name: key, pipeline: pipeline, layout: pipeline.GetBindGroupLayout(0)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.kernels[key]; old != nil {
		// Compiled twice by racing callers: keep the first.
		k.release()
		return old, nil
	}
	d.kernels[key] = k
	return k, nil
}

func (k *Kernel) release() {
	k.layout.Release()
	k.pipeline.Release()
}

// Binding is a range of a buffer bound to a kernel's storage binding.
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

// Op is one prepared dispatch: a kernel, its params uniform and its bind
// group, built once and run any number of times by a Recorder.
type Op struct {
	Label string

	k          *Kernel
	params     *wgpu.Buffer
	paramsSize int
	bindGroup  *wgpu.BindGroup
	groups     Groups
	bufs       []*Buffer // kept alive for the bind group's sake
	owned      []*Buffer // scratch buffers released with the op
}

// paramsBytes encodes a params struct field by field, little-endian, the way
// the matching WGSL struct lays it out when every field is a 4-byte scalar
// (or an array of them) and the whole is padded to 16 bytes.
func paramsBytes(params any) ([]byte, error) {
	var out bytes.Buffer
	if err := binary.Write(&out, binary.LittleEndian, params); err != nil {
		return nil, fmt.Errorf("params %T: %w", params, err)
	}
	if out.Len() == 0 || out.Len()%16 != 0 {
		return nil, fmt.Errorf("params %T: %d bytes, want a positive multiple of 16 (pad the struct)", params, out.Len())
	}
	return out.Bytes(), nil
}

// Op prepares a dispatch of k over groups. params is a struct mirrored by the
// shader's `@group(0) @binding(0) var<uniform> p: Params;`; bindings are the
// storage buffers at @binding(1), @binding(2), … in order.
func (k *Kernel) Op(label string, params any, groups Groups, bindings ...Binding) (*Op, error) {
	d := k.d
	fail := func(format string, args ...any) (*Op, error) {
		return nil, fmt.Errorf("gpu: op %s (%s): %s", label, k.name, fmt.Sprintf(format, args...))
	}
	raw, err := paramsBytes(params)
	if err != nil {
		return fail("%v", err)
	}
	if uint64(len(raw)) > d.limits.MaxUniformBufferBindingSize {
		return fail("params are %d bytes, over the uniform binding limit %d", len(raw), d.limits.MaxUniformBufferBindingSize)
	}
	if err := d.checkGroups(groups); err != nil {
		return fail("%v", err)
	}
	if len(bindings) > int(d.limits.MaxStorageBuffersPerShaderStage) {
		return fail("%d storage bindings, over the device's %d", len(bindings), d.limits.MaxStorageBuffersPerShaderStage)
	}
	entries := []wgpu.BindGroupEntry{{Binding: 0, Size: uint64(len(raw))}}
	bufs := make([]*Buffer, len(bindings))
	for i, b := range bindings {
		if err := b.Buf.usable(d); err != nil {
			return fail("binding %d: %v", i+1, err)
		}
		size := b.Size
		if size == 0 && b.Offset < b.Buf.size {
			size = b.Buf.size - b.Offset
		}
		switch {
		case b.Offset%uint64(d.limits.MinStorageBufferOffsetAlignment) != 0:
			return fail("binding %d (%s): offset %d is not a multiple of %d", i+1, b.Buf.label, b.Offset, d.limits.MinStorageBufferOffsetAlignment)
		case size == 0 || size%4 != 0 || b.Offset+size > b.Buf.size:
			return fail("binding %d (%s): range [%d, +%d) does not fit its %d bytes in words", i+1, b.Buf.label, b.Offset, size, b.Buf.size)
		case size > d.limits.MaxStorageBufferBindingSize:
			return fail("binding %d (%s): %d bytes exceeds maxStorageBufferBindingSize %d", i+1, b.Buf.label, size, d.limits.MaxStorageBufferBindingSize)
		}
		entries = append(entries, wgpu.BindGroupEntry{Binding: uint32(i + 1), Buffer: b.Buf.buf, Offset: b.Offset, Size: size})
		bufs[i] = b.Buf
	}

	o := &Op{Label: label, k: k, paramsSize: len(raw), groups: groups, bufs: bufs}
	err = scoped(d.dev, func() (err error) {
		o.params, err = d.dev.CreateBuffer(&wgpu.BufferDescriptor{
			Label: label + " params",
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
		o.bindGroup, err = d.dev.CreateBindGroup(&wgpu.BindGroupDescriptor{Label: label, Layout: k.layout, Entries: entries})
		return err
	})
	if err != nil {
		o.Release()
		if strings.Contains(err.Error(), "number of bindings defined in the bind group layout") {
			// The layout is derived from the shader, which leaves out
			// bindings it never uses; a kernel must read its params.
			return fail("%v\n(wgpu leaves bindings the shader does not use, params included, out of its layout: is one unused?)", err)
		}
		return fail("%v", err)
	}
	if err := d.track(nil, o); err != nil {
		o.Release()
		return nil, err
	}
	return o, nil
}

func (d *Device) checkGroups(g Groups) error {
	lim := d.limits.MaxComputeWorkgroupsPerDimension
	if g.X > lim || g.Y > lim || g.Z > lim {
		return fmt.Errorf("dispatch %d×%d×%d exceeds %d workgroups per dimension (use Groups1D)", g.X, g.Y, g.Z, lim)
	}
	return nil
}

// SetParams replaces the op's params; the write lands before the next
// submitted step. All runs of the op within one step see the same params.
func (o *Op) SetParams(params any) error {
	if o.bindGroup == nil {
		return fmt.Errorf("gpu: op %s was released", o.Label)
	}
	raw, err := paramsBytes(params)
	if err != nil {
		return fmt.Errorf("gpu: op %s: %w", o.Label, err)
	}
	if len(raw) != o.paramsSize {
		return fmt.Errorf("gpu: op %s: params are %d bytes, the op was built with %d", o.Label, len(raw), o.paramsSize)
	}
	d := o.k.d
	return scoped(d.dev, func() error { return d.queue.WriteBuffer(o.params, 0, raw) })
}

// SetGroups changes the dispatch size, e.g. for a sequence length that grows.
func (o *Op) SetGroups(g Groups) error {
	if err := o.k.d.checkGroups(g); err != nil {
		return fmt.Errorf("gpu: op %s: %w", o.Label, err)
	}
	o.groups = g
	return nil
}

// Groups returns the dispatch size.
func (o *Op) Groups() Groups { return o.groups }

// Release frees the op's params buffer, bind group and scratch buffers.
func (o *Op) Release() {
	if o == nil {
		return
	}
	o.k.d.untrack(nil, o)
	if o.bindGroup != nil {
		o.bindGroup.Release()
		o.bindGroup = nil
	}
	if o.params != nil {
		o.params.Release()
		o.params = nil
	}
	for _, b := range o.owned {
		b.Release()
	}
	o.owned = nil
}

// ReleaseOps releases every op in ops.
func ReleaseOps(ops []*Op) {
	for _, o := range ops {
		o.Release()
	}
}
