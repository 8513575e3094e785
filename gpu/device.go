// Package gpu is qwgpu's WebGPU runtime, and nothing model-specific: it
// opens a device, compiles WGSL into cached pipelines (Kernel), holds
// buffers and prepared dispatches (Op) in scopes that free them together,
// and records many dispatches into one compute pass per step (Recorder),
// optionally timing each one. The kernels themselves live in gpu/kernels.
//
// Every import of go-webgpu stays inside this package so that the binding can
// be swapped. Errors carry the driver's message; sizes are checked against the
// device's limits before wgpu sees them, because several wgpu-native failures
// abort the process instead of returning.
package gpu

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// Options selects the device to open.
type Options struct {
	// Backend is "vulkan", "metal", "dx12", "gl", or "" for the platform's
	// primary backends (Vulkan, Metal, DX12) and, failing those, GL.
	Backend string
	// Adapter is "" for the best adapter (discrete before integrated before
	// CPU), a decimal index into ListAdapters(Backend), or a case-insensitive
	// substring of the adapter's name.
	Adapter string
	// Profile records a GPU timestamp before and after every op, one compute
	// pass per op; see Recorder.Timings. It needs timestamp queries.
	Profile bool
}

// Limits are the device limits that qwgpu's kernels and buffers depend on.
type Limits struct {
	MaxBufferSize                     uint64 // bytes in one buffer
	MaxStorageBufferBindingSize       uint64 // bytes one storage binding may span
	MaxUniformBufferBindingSize       uint64
	MinStorageBufferOffsetAlignment   uint32 // a binding's offset must be a multiple of this
	MaxStorageBuffersPerShaderStage   uint32
	MaxComputeWorkgroupStorageSize    uint32 // bytes of var<workgroup>
	MaxComputeInvocationsPerWorkgroup uint32
	MaxComputeWorkgroupSizeX          uint32
	MaxComputeWorkgroupsPerDimension  uint32
}

// AdapterInfo describes one adapter as ListAdapters reports it.
type AdapterInfo struct {
	Index    int    // position in ListAdapters(Backend)
	Name     string // e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
	Driver   string // driver description
	Backend  string // "vulkan", "metal", "dx12", "gl", …
	Type     string // "discrete", "integrated", "cpu", "unknown"
	Limits   Limits // what the adapter offers
	Features []string
}

func (a AdapterInfo) String() string {
	return fmt.Sprintf("%d: %s (%s, %s)", a.Index, a.Name, a.Backend, a.Type)
}

// Device is an open WebGPU device with its queue, its compiled kernels and
// the objects created on it. It is safe for use by one goroutine at a time.
type Device struct {
	instFlags wgpu.InstanceBackend // the shared instance this device holds
	adapter   *wgpu.Adapter
	dev       *wgpu.Device
	queue     *wgpu.Queue

	info       AdapterInfo
	limits     Limits
	profile    bool
	timestamps bool

	// uncaptured receives errors raised outside any error scope; Submit
	// reports them.
	uncaptured errorSlot

	mu      sync.Mutex
	kernels map[string]*Kernel
	scopes  map[*Scope]struct{}   // every scope not yet released
	pending map[*Pending]struct{} // every started step not yet waited for
	staging stagingPool
	closed  bool
}

var backendFlags = map[string]wgpu.InstanceBackend{
	"":       wgpu.InstanceBackend_Primary,
	"vulkan": wgpu.InstanceBackend_Vulkan,
	"metal":  wgpu.InstanceBackend_Metal,
	"dx12":   wgpu.InstanceBackend_DX12,
	"gl":     wgpu.InstanceBackend_GL,
}

func backendName(b wgpu.BackendType) string {
	switch b {
	case wgpu.BackendType_Vulkan:
		return "vulkan"
	case wgpu.BackendType_Metal:
		return "metal"
	case wgpu.BackendType_D3D12:
		return "dx12"
	case wgpu.BackendType_D3D11:
		return "dx11"
	case wgpu.BackendType_OpenGL, wgpu.BackendType_OpenGLES:
		return "gl"
	}
	return strings.ToLower(b.String())
}

func adapterTypeName(t wgpu.AdapterType) string {
	switch t {
	case wgpu.AdapterType_DiscreteGPU:
		return "discrete"
	case wgpu.AdapterType_IntegratedGPU:
		return "integrated"
	case wgpu.AdapterType_CPU:
		return "cpu"
	}
	return "unknown"
}

func limitsFrom(l wgpu.Limits) Limits {
	return Limits{
		MaxBufferSize:                     l.MaxBufferSize,
		MaxStorageBufferBindingSize:       l.MaxStorageBufferBindingSize,
		MaxUniformBufferBindingSize:       l.MaxUniformBufferBindingSize,
		MinStorageBufferOffsetAlignment:   l.MinStorageBufferOffsetAlignment,
		MaxStorageBuffersPerShaderStage:   l.MaxStorageBuffersPerShaderStage,
		MaxComputeWorkgroupStorageSize:    l.MaxComputeWorkgroupStorageSize,
		MaxComputeInvocationsPerWorkgroup: l.MaxComputeInvocationsPerWorkgroup,
		MaxComputeWorkgroupSizeX:          l.MaxComputeWorkgroupSizeX,
		MaxComputeWorkgroupsPerDimension:  l.MaxComputeWorkgroupsPerDimension,
	}
}

// Instances are shared per backend set and reference-counted: wgpu-native
// frees a device's memory only when its instance goes, so an instance that
// lived forever kept ~26 MiB per closed device (100 open/close cycles grew
// a process by 2.6 GiB). It must not go while anything else uses it: on
// GL, releasing an instance terminates the process-wide EGL display, which
// kills every other GL device of the process (seen as a BadDisplay panic).
var (
	instMu    sync.Mutex
	instances = map[wgpu.InstanceBackend]*sharedInstance{}
)

type sharedInstance struct {
	inst *wgpu.Instance
	refs int
}

// acquireInstance returns the instance for flags, creating it if needed
// (a GL one only once the GL probe came back: glUsable); each call that
// succeeds is paired with releaseInstance.
func acquireInstance(flags wgpu.InstanceBackend) (*wgpu.Instance, error) {
	if flags&wgpu.InstanceBackend_GL != 0 {
		if err := glUsable(); err != nil {
			return nil, fmt.Errorf("gpu: backend gl: %w", err)
		}
	}
	instMu.Lock()
	defer instMu.Unlock()
	si := instances[flags]
	if si == nil {
		si = &sharedInstance{inst: wgpu.CreateInstance(&wgpu.InstanceDescriptor{Backends: flags})}
		instances[flags] = si
	}
	si.refs++
	return si.inst, nil
}

func releaseInstance(flags wgpu.InstanceBackend) {
	instMu.Lock()
	defer instMu.Unlock()
	si := instances[flags]
	if si == nil {
		return
	}
	if si.refs--; si.refs == 0 {
		si.inst.Release()
		delete(instances, flags)
	}
}

// enumerate returns the adapters of backend and the instance flags it
// acquired; the caller releases the adapters and then the instance.
func enumerate(backend string) ([]*wgpu.Adapter, wgpu.InstanceBackend, error) {
	flags, ok := backendFlags[strings.ToLower(backend)]
	if !ok {
		return nil, 0, fmt.Errorf("gpu: unknown backend %q (want vulkan, metal, dx12, gl or empty)", backend)
	}
	inst, err := acquireInstance(flags)
	if err != nil {
		return nil, 0, err
	}
	adapters := inst.EnumerateAdapters(nil)
	if len(adapters) == 0 && backend == "" {
		// No primary backend: GL, the last of the platform's backends (the
		// stats line and `qwgpu info` say which adapter runs).
		releaseInstance(flags)
		if err := glUsable(); err != nil {
			return nil, 0, fmt.Errorf("gpu: no adapter on the platform's default backends, and GL, the fallback, is unusable: %w", err)
		}
		flags = wgpu.InstanceBackend_GL
		if inst, err = acquireInstance(flags); err != nil {
			return nil, 0, err
		}
		adapters = inst.EnumerateAdapters(nil)
	}
	return adapters, flags, nil
}

func describe(i int, a *wgpu.Adapter) AdapterInfo {
	p := a.GetProperties()
	info := AdapterInfo{
		Index:   i,
		Name:    p.Name,
		Driver:  p.DriverDescription,
		Backend: backendName(p.BackendType),
		Type:    adapterTypeName(p.AdapterType),
		Limits:  limitsFrom(a.GetLimits().Limits),
	}
	for _, f := range a.EnumerateFeatures() {
		info.Features = append(info.Features, f.String())
	}
	return info
}

// ListAdapters returns the adapters that backend ("" for all primary
// backends) offers, in the order Options.Adapter indexes them.
func ListAdapters(backend string) ([]AdapterInfo, error) {
	adapters, flags, err := enumerate(backend)
	if err != nil {
		return nil, err
	}
	defer releaseInstance(flags)
	infos := make([]AdapterInfo, len(adapters))
	for i, a := range adapters {
		infos[i] = describe(i, a)
		a.Release()
	}
	return infos, nil
}

// existingAdapters lists every adapter on every backend, for error messages.
func existingAdapters() string {
	var all []string
	for _, b := range []string{"vulkan", "metal", "dx12", "gl"} {
		infos, err := ListAdapters(b)
		if err != nil {
			all = append(all, fmt.Sprintf("%s unusable", b))
		}
		for _, a := range infos {
			all = append(all, fmt.Sprintf("%s %d: %s (%s)", b, a.Index, a.Name, a.Type))
		}
	}
	if len(all) == 0 {
		return "none on any backend"
	}
	return strings.Join(all, "; ")
}

// pick chooses the adapter that sel names, or the best one when sel is "".
func pick(infos []AdapterInfo, sel string) (int, bool) {
	if sel == "" {
		rank := func(a AdapterInfo) int {
			r := map[string]int{"discrete": 0, "integrated": 1, "unknown": 2, "cpu": 3}[a.Type] * 2
			if a.Backend == "gl" {
				r++ // GL lacks timestamps and is slower to drive
			}
			return r
		}
		best := 0
		for i, a := range infos {
			if rank(a) < rank(infos[best]) {
				best = i
			}
		}
		return best, true
	}
	if i, err := strconv.Atoi(sel); err == nil {
		return i, i >= 0 && i < len(infos)
	}
	for i, a := range infos {
		if strings.Contains(strings.ToLower(a.Name), strings.ToLower(sel)) {
			return i, true
		}
	}
	return 0, false
}

// requiredLimits asks for what the adapter offers of the limits qwgpu uses.
// Every other limit stays at the WebGPU default.
func requiredLimits(a wgpu.Limits) wgpu.Limits {
	l := wgpu.DefaultLimits()
	// The H100's Vulkan adapter reports maxBufferSize = 2^64-1, which is the
	// "undefined" sentinel of webgpu.h and so leaves the 256 MiB default:
	// ask for a concrete value instead.
	l.MaxBufferSize = min(a.MaxBufferSize, 1<<40)
	// wgpu 0.17 keeps the binding size as a u32 internally.
	l.MaxStorageBufferBindingSize = min(a.MaxStorageBufferBindingSize, math.MaxUint32)
	l.MaxStorageBuffersPerShaderStage = a.MaxStorageBuffersPerShaderStage
	l.MinStorageBufferOffsetAlignment = a.MinStorageBufferOffsetAlignment
	l.MinUniformBufferOffsetAlignment = a.MinUniformBufferOffsetAlignment
	l.MaxComputeWorkgroupStorageSize = a.MaxComputeWorkgroupStorageSize
	l.MaxComputeInvocationsPerWorkgroup = a.MaxComputeInvocationsPerWorkgroup
	l.MaxComputeWorkgroupSizeX = a.MaxComputeWorkgroupSizeX
	l.MaxComputeWorkgroupSizeY = a.MaxComputeWorkgroupSizeY
	l.MaxComputeWorkgroupSizeZ = a.MaxComputeWorkgroupSizeZ
	l.MaxComputeWorkgroupsPerDimension = a.MaxComputeWorkgroupsPerDimension
	return l
}

// Open opens the adapter that opt selects with the adapter's own limits for
// buffer and binding sizes, workgroup memory and workgroup size, and with
// timestamp queries where the adapter has them.
func Open(opt Options) (_ *Device, err error) {
	adapters, flags, err := enumerate(opt.Backend)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			releaseInstance(flags)
		}
	}()
	infos := make([]AdapterInfo, len(adapters))
	for i, a := range adapters {
		infos[i] = describe(i, a)
	}
	release := func() {
		for _, a := range adapters {
			a.Release()
		}
	}
	where := "backend " + opt.Backend
	if opt.Backend == "" {
		where = "the platform's default backends"
	}
	if len(adapters) == 0 {
		release()
		return nil, fmt.Errorf("gpu: no adapter on %s; adapters that exist: %s", where, existingAdapters())
	}
	idx, ok := pick(infos, opt.Adapter)
	if !ok {
		names := make([]string, len(infos))
		for i, a := range infos {
			names[i] = a.String()
		}
		release()
		return nil, fmt.Errorf("gpu: no adapter %q on %s; adapters there: %s", opt.Adapter, where, strings.Join(names, "; "))
	}
	adapter := adapters[idx]
	for i, a := range adapters {
		if i != idx {
			a.Release()
		}
	}

	info := infos[idx]
	req := requiredLimits(adapter.GetLimits().Limits)
	var features []wgpu.FeatureName
	timestamps := adapter.HasFeature(wgpu.FeatureName_TimestampQuery)
	if timestamps {
		features = append(features, wgpu.FeatureName_TimestampQuery)
	}
	if opt.Profile && !timestamps {
		adapter.Release()
		return nil, fmt.Errorf("gpu: profile mode needs timestamp queries, which %s (%s) lacks", info.Name, info.Backend)
	}
	dev, err := adapter.RequestDevice(&wgpu.DeviceDescriptor{
		Label:            "qwgpu",
		RequiredFeatures: features,
		RequiredLimits:   &wgpu.RequiredLimits{Limits: req},
	})
	if err != nil {
		adapter.Release()
		return nil, fmt.Errorf("gpu: opening %s (%s): %w", info.Name, info.Backend, err)
	}
	d := &Device{
		instFlags:  flags,
		adapter:    adapter,
		dev:        dev,
		queue:      dev.GetQueue(),
		info:       info,
		limits:     limitsFrom(dev.GetLimits().Limits),
		profile:    opt.Profile,
		timestamps: timestamps,
		uncaptured: newErrorSlot(),
		kernels:    map[string]*Kernel{},
		scopes:     map[*Scope]struct{}{},
		pending:    map[*Pending]struct{}{},
	}
	setUncaptured(dev, d.uncaptured)
	// A request that wgpu silently ignores leaves the 128/256 MiB defaults,
	// which would surface much later as a refused buffer: check here.
	if d.limits.MaxBufferSize < req.MaxBufferSize || d.limits.MaxStorageBufferBindingSize < req.MaxStorageBufferBindingSize {
		err := fmt.Errorf("gpu: %s granted maxBufferSize %d and maxStorageBufferBindingSize %d, asked for %d and %d",
			info.Name, d.limits.MaxBufferSize, d.limits.MaxStorageBufferBindingSize, req.MaxBufferSize, req.MaxStorageBufferBindingSize)
		d.Close()
		return nil, err
	}
	return d, nil
}

// Info describes the device's adapter.
func (d *Device) Info() AdapterInfo { return d.info }

// Limits returns the limits the device was granted.
func (d *Device) Limits() Limits { return d.limits }

// Profiling reports whether the device was opened with Options.Profile.
func (d *Device) Profiling() bool { return d.profile }

var errClosed = errors.New("gpu: device is closed")

// Close releases every scope not yet released, the compiled kernels, and
// then the device itself. The device is unusable afterwards.
func (d *Device) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	scopes, pending := mapsKeys(d.scopes), mapsKeys(d.pending)
	d.mu.Unlock()

	d.drain()
	for _, s := range scopes {
		s.Release()
	}
	// Steps started and never waited for have run (drain): free them; a
	// later Wait reports the closed device.
	for _, p := range pending {
		p.release()
	}
	d.mu.Lock()
	d.closed = true
	kernels := d.kernels
	d.kernels = nil
	d.mu.Unlock()
	for _, k := range kernels {
		k.release()
	}
	d.staging.free()
	waitIdle(d.dev, d.queue)
	d.queue.Release()
	d.dev.Release()
	d.adapter.Release()
	d.uncaptured.free()
	releaseInstance(d.instFlags)
}

// drain waits until the queue has finished everything submitted so far,
// then pushes an empty submission through it, so that no submission is
// still in the driver's hands when Close destroys objects (lavapipe's queue
// thread crashed on objects destroyed under a running pass).
func (d *Device) drain() {
	waitIdle(d.dev, d.queue)
	enc, err := d.dev.CreateCommandEncoder(nil)
	if err != nil {
		return
	}
	defer enc.Release()
	cmd, err := enc.Finish(nil)
	if err != nil {
		return
	}
	defer cmd.Release()
	d.queue.Submit(cmd)
	waitIdle(d.dev, d.queue)
}

func mapsKeys[K comparable, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

func (d *Device) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}
