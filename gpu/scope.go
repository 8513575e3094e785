package gpu

import "fmt"

// Scope owns the buffers and ops made through it and frees them all with
// one call to Release. An engine keeps everything it makes at load in one
// scope; a test or a temporary pass uses a scope of its own. Kernels are
// not owned by scopes: wgpu 0.17 never frees a pipeline, so the device
// caches each one for its whole life.
//
// A Scope is used by one goroutine at a time.
type Scope struct {
	d     *Device
	label string
	bufs  []*Buffer
	ops   []*Op
	done  bool
}

// NewScope starts an empty scope. Device.Close releases scopes their owners
// did not.
func (d *Device) NewScope(label string) *Scope {
	s := &Scope{d: d, label: label}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		d.scopes[s] = struct{}{}
	} else {
		s.done = true
	}
	return s
}

// Device is the device the scope's objects live on.
func (s *Scope) Device() *Device { return s.d }

// Release frees every op (bind group and params buffer) and then every
// buffer the scope made. Releasing twice does nothing. Work already
// submitted that uses them must have been waited for.
func (s *Scope) Release() {
	if s == nil || s.done {
		return
	}
	s.done = true
	for _, o := range s.ops {
		o.release()
	}
	for _, b := range s.bufs {
		b.release()
	}
	s.ops, s.bufs = nil, nil
	s.d.mu.Lock()
	delete(s.d.scopes, s)
	s.d.mu.Unlock()
}

func (s *Scope) usable() error {
	if s.d.isClosed() {
		return errClosed
	}
	if s.done {
		return fmt.Errorf("gpu: scope %q was released", s.label)
	}
	return nil
}
