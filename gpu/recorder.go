package gpu

import (
	"encoding/binary"
	"fmt"

	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// Recorder collects one step's work: ops, buffer copies and readbacks.
// Start encodes the ops into ONE command encoder and ONE compute pass (a
// pass costs ~61 µs on an H100 against ~4.5 µs per dispatch inside a pass)
// and submits it. A copy ends the pass it follows, so copies are best
// grouped. In profile mode each op gets its own pass between two
// timestamps.
type Recorder struct {
	d       *Device
	extent  Extent
	cmds    []command
	reads   []*Readback
	timings []OpTiming
}

type command struct {
	op     *Op
	groups Groups
	copy   *copyCmd
}

type copyCmd struct {
	dst, src       *Buffer
	dstOff, srcOff uint64
	size           uint64
}

// OpTiming is the GPU time of one op in profile mode.
type OpTiming struct {
	Label string
	Role  string
	Nanos float64 // timestamp ticks, which are nanoseconds on NVIDIA and lavapipe
}

// Readback receives bytes copied at the end of a step; they are valid once
// the step has been waited for without error.
type Readback struct {
	buf          *Buffer
	offset, size uint64
	data         []byte
}

// Bytes returns the bytes read back.
func (r *Readback) Bytes() []byte { return r.data }

// F32 returns the bytes read back as float32 values.
func (r *Readback) F32() []float32 { return BytesF32(r.data) }

// U32 returns the bytes read back as uint32 values.
func (r *Readback) U32() []uint32 { return BytesU32(r.data) }

// NewRecorder starts an empty step of extent e, which sizes the ops whose
// dispatch depends on the step (Dispatch.Size).
func (d *Device) NewRecorder(e Extent) *Recorder { return &Recorder{d: d, extent: e} }

// Run appends ops to the step in order.
func (r *Recorder) Run(ops ...*Op) {
	for _, o := range ops {
		r.cmds = append(r.cmds, command{op: o, groups: o.GroupsFor(r.extent)})
	}
}

// Copy appends a copy of size bytes from src at srcOff to dst at dstOff.
// Offsets and size must be multiples of 4.
func (r *Recorder) Copy(dst *Buffer, dstOff uint64, src *Buffer, srcOff, size uint64) {
	r.cmds = append(r.cmds, command{copy: &copyCmd{dst: dst, src: src, dstOff: dstOff, srcOff: srcOff, size: size}})
}

// Read asks for size bytes at offset of b to be copied back after the step's
// work. Offset and size must be multiples of 4.
func (r *Recorder) Read(b *Buffer, offset, size uint64) *Readback {
	rb := &Readback{buf: b, offset: offset, size: size}
	r.reads = append(r.reads, rb)
	return rb
}

// Len returns the number of ops and copies recorded.
func (r *Recorder) Len() int { return len(r.cmds) }

// Timings returns the per-op GPU times of the last step waited for in
// profile mode, in the order the ops ran; nil otherwise.
func (r *Recorder) Timings() []OpTiming { return r.timings }

// check validates the step before anything is encoded: a validation error
// at Queue.Submit aborts the process inside wgpu-native.
func (r *Recorder) check() error {
	d := r.d
	if d.isClosed() {
		return errClosed
	}
	for i, c := range r.cmds {
		if c.op != nil {
			o := c.op
			if o.bindGroup == nil {
				return fmt.Errorf("gpu: step item %d: op %s was released", i, o.Label)
			}
			if o.k.d != d {
				return fmt.Errorf("gpu: step item %d: op %s belongs to another device", i, o.Label)
			}
			for _, b := range o.bufs {
				if err := b.usable(d); err != nil {
					return fmt.Errorf("gpu: step item %d: op %s: %w", i, o.Label, err)
				}
			}
			if err := d.checkGroups(c.groups); err != nil {
				return fmt.Errorf("gpu: step item %d: op %s: %w", i, o.Label, err)
			}
			continue
		}
		cp := c.copy
		for _, b := range []*Buffer{cp.dst, cp.src} {
			if err := b.usable(d); err != nil {
				return fmt.Errorf("gpu: step item %d: copy: %w", i, err)
			}
		}
		if cp.size%4 != 0 || cp.dstOff%4 != 0 || cp.srcOff%4 != 0 ||
			cp.srcOff+cp.size > cp.src.size || cp.dstOff+cp.size > cp.dst.size {
			return fmt.Errorf("gpu: step item %d: copy %d bytes %s@%d → %s@%d is out of range or not in words",
				i, cp.size, cp.src.label, cp.srcOff, cp.dst.label, cp.dstOff)
		}
		if cp.src == cp.dst {
			return fmt.Errorf("gpu: step item %d: copy within one buffer (%s)", i, cp.src.label)
		}
	}
	for _, rb := range r.reads {
		if err := rb.buf.usable(d); err != nil {
			return fmt.Errorf("gpu: readback: %w", err)
		}
		if rb.size == 0 || rb.size%4 != 0 || rb.offset%4 != 0 || rb.offset+rb.size > rb.buf.size {
			return fmt.Errorf("gpu: readback of %s: [%d, +%d) is out of range or not in words", rb.buf.label, rb.offset, rb.size)
		}
	}
	if r.profiling() && r.nOps()+1 > maxQueries {
		return fmt.Errorf("gpu: profile mode times at most %d ops per step, got %d", maxQueries-1, r.nOps())
	}
	return nil
}

// maxQueries is wgpu's limit on queries in one query set.
const maxQueries = 8192

func (r *Recorder) profiling() bool { return r.d.profile && r.d.timestamps }

func (r *Recorder) nOps() int {
	n := 0
	for _, c := range r.cmds {
		if c.op != nil {
			n++
		}
	}
	return n
}

// Submit encodes, submits and waits for the step, then fills in its
// readbacks. The recorder is empty afterwards and can record the next step.
func (r *Recorder) Submit() error {
	p, err := r.Start()
	if err != nil {
		return err
	}
	return p.Wait()
}

// Pending is a submitted step that has not been waited for.
type Pending struct {
	r        *Recorder
	cmds     []command
	reads    []*Readback
	offsets  []uint64
	done     doneFlag // set by the queue's work-done callback
	enc      *wgpu.CommandEncoder
	cmdBuf   *wgpu.CommandBuffer
	staging  *stagingBuf
	queries  *wgpu.QuerySet
	resolved *wgpu.Buffer
	size     uint64 // bytes of staging used
	tsOffset uint64
	nQueries int
	waited   bool
}

// release frees the step's objects once; Device.Close calls it for steps
// never waited for.
func (p *Pending) release() {
	d := p.r.d
	d.mu.Lock()
	delete(d.pending, p)
	d.mu.Unlock()
	if p.cmdBuf != nil {
		p.cmdBuf.Release()
		p.cmdBuf = nil
	}
	if p.enc != nil {
		p.enc.Release()
		p.enc = nil
	}
	if p.queries != nil {
		p.queries.Release()
		p.queries = nil
	}
	if p.resolved != nil {
		p.resolved.Release()
		p.resolved = nil
	}
	if p.staging != nil {
		d.staging.put(d, p.staging)
		p.staging = nil
	}
}

// Start encodes and submits the step without waiting, so that the host
// can prepare and submit the next step while the GPU runs this one (the
// queue runs submissions in order, and queue writes made after Start land
// after this step). Wait must be called on the result before its
// readbacks are used; the recorder is free to record the next step at
// once.
func (r *Recorder) Start() (*Pending, error) {
	defer func() { r.cmds, r.reads = nil, nil }()
	if err := r.check(); err != nil {
		return nil, err
	}
	d := r.d
	r.timings = nil
	if err := d.uncaptured.take(); err != nil {
		return nil, fmt.Errorf("gpu: earlier error: %w", err)
	}
	p := &Pending{r: r, cmds: r.cmds, reads: r.reads}

	// Staging layout: readbacks one after another, then the timestamps.
	p.offsets = make([]uint64, len(r.reads))
	for i, rb := range r.reads {
		p.offsets[i] = p.size
		p.size += rb.size
	}
	if r.profiling() {
		p.nQueries = r.nOps() + 1
	}
	p.tsOffset = (p.size + 7) &^ 7
	if p.nQueries > 0 {
		p.size = p.tsOffset + 8*uint64(p.nQueries)
	}

	err := scoped(d.dev, func() (err error) {
		if p.enc, err = d.dev.CreateCommandEncoder(&wgpu.CommandEncoderDescriptor{Label: "qwgpu step"}); err != nil {
			return err
		}
		if p.nQueries > 0 {
			if p.queries, err = d.dev.CreateQuerySet(&wgpu.QuerySetDescriptor{Label: "qwgpu timestamps", Type: wgpu.QueryType_Timestamp, Count: uint32(p.nQueries)}); err != nil {
				return err
			}
			if p.resolved, err = d.dev.CreateBuffer(&wgpu.BufferDescriptor{Label: "qwgpu timestamps", Size: 8 * uint64(p.nQueries), Usage: wgpu.BufferUsage_QueryResolve | wgpu.BufferUsage_CopySrc}); err != nil {
				return err
			}
		}
		if p.size > 0 {
			if p.staging, err = d.staging.get(d, p.size); err != nil {
				return err
			}
		}
		if err := r.encode(p.enc, p.queries); err != nil {
			return err
		}
		for i, rb := range r.reads {
			if err := p.enc.CopyBufferToBuffer(rb.buf.buf, rb.offset, p.staging.buf, p.offsets[i], rb.size); err != nil {
				return err
			}
		}
		if p.nQueries > 0 {
			if err := p.enc.ResolveQuerySet(p.queries, 0, uint32(p.nQueries), p.resolved, 0); err != nil {
				return err
			}
			if err := p.enc.CopyBufferToBuffer(p.resolved, 0, p.staging.buf, p.tsOffset, 8*uint64(p.nQueries)); err != nil {
				return err
			}
		}
		p.cmdBuf, err = p.enc.Finish(nil)
		return err
	})
	if err != nil {
		p.release()
		return nil, fmt.Errorf("gpu: encoding step: %w", err)
	}
	d.queue.Submit(p.cmdBuf)
	p.done = workDone(d.queue)
	d.mu.Lock()
	d.pending[p] = struct{}{}
	d.mu.Unlock()
	return p, nil
}

// Wait blocks until the step has run, then fills in its readbacks (and,
// in profile mode, the recorder's timings). Waiting also lets wgpu free
// the step's resources: submitting without waiting grows memory.
func (p *Pending) Wait() error {
	if p.waited {
		return fmt.Errorf("gpu: step waited for twice")
	}
	p.waited = true
	d := p.r.d
	if d.isClosed() {
		return errClosed // Close waited for the step and freed it
	}
	defer p.release()
	waitDone(d.dev, p.done)
	if err := d.uncaptured.take(); err != nil {
		return fmt.Errorf("gpu: step: %w", err)
	}
	if p.staging == nil {
		return nil
	}
	if err := mapRead(d.dev, p.staging.buf, 0, p.size); err != nil {
		return fmt.Errorf("gpu: reading back: %w", err)
	}
	mapped := p.staging.buf.GetMappedRange(0, uint(p.size))
	for i, rb := range p.reads {
		rb.data = append([]byte(nil), mapped[p.offsets[i]:p.offsets[i]+rb.size]...)
	}
	if p.nQueries > 0 {
		ts := mapped[p.tsOffset:]
		timings := make([]OpTiming, 0, p.nQueries-1)
		prev := binary.LittleEndian.Uint64(ts)
		k := 1
		for _, c := range p.cmds {
			if c.op == nil {
				continue
			}
			t := binary.LittleEndian.Uint64(ts[8*k:])
			timings = append(timings, OpTiming{Label: c.op.Label, Role: c.op.Role, Nanos: float64(int64(t - prev))})
			prev = t
			k++
		}
		p.r.timings = timings
	}
	return p.staging.buf.Unmap()
}

// encode records the commands. Outside profile mode consecutive ops share one
// compute pass; in profile mode every op gets a pass followed by a timestamp.
func (r *Recorder) encode(enc *wgpu.CommandEncoder, queries *wgpu.QuerySet) error {
	var pass *wgpu.ComputePassEncoder
	var lastPipeline *wgpu.ComputePipeline
	endPass := func() error {
		if pass == nil {
			return nil
		}
		err := pass.End()
		pass.Release()
		pass, lastPipeline = nil, nil
		return err
	}
	query := uint32(0)
	if queries != nil {
		if err := enc.WriteTimestamp(queries, query); err != nil {
			return err
		}
		query++
	}
	for _, c := range r.cmds {
		if c.copy != nil {
			if err := endPass(); err != nil {
				return err
			}
			cp := c.copy
			if err := enc.CopyBufferToBuffer(cp.src.buf, cp.srcOff, cp.dst.buf, cp.dstOff, cp.size); err != nil {
				return err
			}
			continue
		}
		o := c.op
		if pass == nil {
			pass = enc.BeginComputePass(nil)
		}
		if o.k.pipeline != lastPipeline {
			pass.SetPipeline(o.k.pipeline)
			lastPipeline = o.k.pipeline
		}
		pass.SetBindGroup(0, o.bindGroup, nil)
		if g := c.groups; g.X > 0 && g.Y > 0 && g.Z > 0 {
			pass.DispatchWorkgroups(g.X, g.Y, g.Z)
		}
		if queries != nil {
			if err := endPass(); err != nil {
				return err
			}
			if err := enc.WriteTimestamp(queries, query); err != nil {
				return err
			}
			query++
		}
	}
	return endPass()
}

// stagingBuf is a MapRead buffer that readbacks are copied into.
type stagingBuf struct {
	buf  *wgpu.Buffer
	size uint64
}

// stagingPool keeps the readback buffers of finished steps for the next
// ones, so that a decode step allocates nothing: each step in flight takes
// one, and Wait gives it back.
type stagingPool struct {
	idle []*stagingBuf
}

// maxPooled bounds the idle staging buffers kept (two steps in flight need
// two; profiling and validation need a few more sizes).
const maxPooled = 4

func (p *stagingPool) get(d *Device, size uint64) (*stagingBuf, error) {
	d.mu.Lock()
	for i, s := range p.idle {
		if s.size >= size {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			d.mu.Unlock()
			return s, nil
		}
	}
	d.mu.Unlock()
	// Round up so that slightly different sizes share a buffer.
	size = max(4096, nextPow2u(size))
	buf, err := d.dev.CreateBuffer(&wgpu.BufferDescriptor{Label: "qwgpu readback", Size: size, Usage: wgpu.BufferUsage_MapRead | wgpu.BufferUsage_CopyDst})
	if err != nil {
		return nil, err
	}
	return &stagingBuf{buf: buf, size: size}, nil
}

func (p *stagingPool) put(d *Device, s *stagingBuf) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p.idle = append(p.idle, s)
	if len(p.idle) > maxPooled {
		// Drop the smallest.
		small := 0
		for i, b := range p.idle {
			if b.size < p.idle[small].size {
				small = i
			}
		}
		p.idle[small].buf.Release()
		p.idle = append(p.idle[:small], p.idle[small+1:]...)
	}
}

func (p *stagingPool) free() {
	for _, s := range p.idle {
		s.buf.Release()
	}
	p.idle = nil
}

func nextPow2u(n uint64) uint64 {
	p := uint64(1)
	for p < n {
		p <<= 1
	}
	return p
}
