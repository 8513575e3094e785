package gpu

// A few wgpu-native entry points that go-webgpu v0.17.1 does not expose
// safely, called directly. go-webgpu links libwgpu_native.a; this file only
// declares the functions it needs (the enums are C ints, ABI-compatible with
// uint32_t), so it does not depend on where the module cache keeps wgpu.h.
//
//  - Error scopes for out-of-memory errors: go-webgpu wraps each
//    creation call in a validation scope only, so an out-of-memory error would
//    otherwise go to the uncaptured-error handler, which aborts the process.
//  - An uncaptured-error callback that records the error instead of aborting.
//  - Buffer mapping whose callback writes into C memory: go-webgpu's MapAsync
//    hands C the address of a Go variable that nothing keeps alive.

/*
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct WGPUDeviceImpl* WGPUDevice;
typedef struct WGPUBufferImpl* WGPUBuffer;
typedef struct WGPUQueueImpl* WGPUQueue;
typedef void (*WGPUQueueWorkDoneCallback)(uint32_t status, void * userdata);
void wgpuQueueOnSubmittedWorkDone(WGPUQueue queue, WGPUQueueWorkDoneCallback callback, void * userdata);
typedef void (*WGPUErrorCallback)(uint32_t type, char const * message, void * userdata);
typedef void (*WGPUBufferMapCallback)(uint32_t status, void * userdata);

void wgpuDevicePushErrorScope(WGPUDevice device, uint32_t filter);
void wgpuDevicePopErrorScope(WGPUDevice device, WGPUErrorCallback callback, void * userdata);
void wgpuDeviceSetUncapturedErrorCallback(WGPUDevice device, WGPUErrorCallback callback, void * userdata);
void wgpuBufferMapAsync(WGPUBuffer buffer, uint32_t mode, size_t offset, size_t size, WGPUBufferMapCallback callback, void * userdata);

// qwgpu_error receives one error; the first one wins.
typedef struct {
	uint32_t type;
	char *message;
} qwgpu_error;

static void qwgpu_on_error(uint32_t type, char const * message, void * userdata) {
	qwgpu_error *e = (qwgpu_error *)userdata;
	if (type == 0 || e->type != 0) {
		return;
	}
	e->type = type;
	e->message = strdup(message ? message : "(no message)");
}

static void qwgpu_push_scope(void *device, uint32_t filter) {
	wgpuDevicePushErrorScope((WGPUDevice)device, filter);
}

static void qwgpu_pop_scope(void *device, qwgpu_error *e) {
	wgpuDevicePopErrorScope((WGPUDevice)device, qwgpu_on_error, e);
}

static void qwgpu_set_uncaptured(void *device, qwgpu_error *e) {
	wgpuDeviceSetUncapturedErrorCallback((WGPUDevice)device, qwgpu_on_error, e);
}

static void qwgpu_on_map(uint32_t status, void * userdata) {
	*(uint32_t *)userdata = status;
}

static void qwgpu_on_work_done(uint32_t status, void * userdata) {
	*(uint32_t *)userdata = status;
}

static void qwgpu_work_done(void *queue, uint32_t *status) {
	*status = 0xffffffffu;
	wgpuQueueOnSubmittedWorkDone((WGPUQueue)queue, qwgpu_on_work_done, status);
}

static void qwgpu_map_read(void *buffer, size_t offset, size_t size, uint32_t *status) {
	*status = 0xffffffffu;
	wgpuBufferMapAsync((WGPUBuffer)buffer, 1, offset, size, qwgpu_on_map, status);
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// Error filters and types of webgpu.h.
// wgpu-native 0.17 panics on the Internal filter, so it is not used.
const (
	filterValidation  = 0
	filterOutOfMemory = 1
)

var errorTypeNames = map[uint32]string{1: "validation", 2: "out of memory", 3: "internal", 4: "unknown", 5: "device lost"}

// deviceRef returns the C handle inside a *wgpu.Device. go-webgpu v0.17.1
// declares `type Device struct { ref C.WGPUDevice }`; the version is pinned in
// go.mod, and every scoped call (TestErrorsAreReturned among them) goes
// through it.
func deviceRef(d *wgpu.Device) unsafe.Pointer {
	return *(*unsafe.Pointer)(unsafe.Pointer(d))
}

// bufferRef returns the C handle inside a *wgpu.Buffer, declared in v0.17.1
// as `struct { deviceRef C.WGPUDevice; ref C.WGPUBuffer }`.
func bufferRef(b *wgpu.Buffer) unsafe.Pointer {
	fields := (*[2]unsafe.Pointer)(unsafe.Pointer(b))
	return fields[1]
}

// queueRef returns the C handle inside a *wgpu.Queue, declared in v0.17.1
// as `struct { deviceRef C.WGPUDevice; ref C.WGPUQueue }`.
func queueRef(q *wgpu.Queue) unsafe.Pointer {
	fields := (*[2]unsafe.Pointer)(unsafe.Pointer(q))
	return fields[1]
}

// waitIdle blocks until the queue has finished everything submitted so
// far. It never uses wgpu's blocking poll: in wgpu 0.17 that waits at most
// 5 seconds (wgpu-core's cleanup wait) and then carries on as if the work
// were done, and lavapipe's queue thread crashed every time a pass ran
// past it (reproduced with a 5.5 s pass). Instead a work-done callback
// writes into C memory and non-blocking polls watch for it: spinning for
// the first milliseconds keeps a decode step's latency low, sleeping
// after that keeps a long pass from burning a core.
func waitIdle(dev *wgpu.Device, queue *wgpu.Queue) {
	waitDone(dev, workDone(queue))
}

// workDone asks to be told when everything submitted to queue so far has
// finished; waitDone waits for that and frees the status.
func workDone(queue *wgpu.Queue) doneFlag {
	status := (*C.uint32_t)(C.malloc(4))
	C.qwgpu_work_done(queueRef(queue), status)
	return doneFlag{status}
}

// doneFlag is C memory the work-done callback writes into.
type doneFlag struct{ status *C.uint32_t }

func waitDone(dev *wgpu.Device, f doneFlag) {
	status := f.status
	start := time.Now()
	for *status == 0xffffffff {
		dev.Poll(false, nil)
		if time.Since(start) > 2*time.Millisecond {
			time.Sleep(50 * time.Microsecond)
		}
	}
	C.free(unsafe.Pointer(status))
}

// errorSlot is C memory that one error callback writes into.
type errorSlot struct{ c *C.qwgpu_error }

func newErrorSlot() errorSlot {
	return errorSlot{(*C.qwgpu_error)(C.calloc(1, C.size_t(unsafe.Sizeof(C.qwgpu_error{}))))}
}

// take returns the recorded error, if any, and clears the slot.
func (s errorSlot) take() error {
	if s.c == nil || s.c._type == 0 {
		return nil
	}
	typ := uint32(s.c._type)
	msg := C.GoString(s.c.message)
	C.free(unsafe.Pointer(s.c.message))
	s.c._type, s.c.message = 0, nil
	name := errorTypeNames[typ]
	if name == "" {
		name = fmt.Sprintf("type %d", typ)
	}
	return fmt.Errorf("wgpu %s error: %s", name, msg)
}

func (s errorSlot) free() {
	if s.c != nil {
		s.take()
		C.free(unsafe.Pointer(s.c))
	}
}

// scoped runs fn inside validation and out-of-memory error scopes
// and returns the first error fn returned or a scope caught. go-webgpu scopes
// validation around most calls itself; the outer scopes catch the rest.
func scoped(dev *wgpu.Device, fn func() error) error {
	ref := deviceRef(dev)
	C.qwgpu_push_scope(ref, filterOutOfMemory)
	C.qwgpu_push_scope(ref, filterValidation)
	err := fn()
	slot := newErrorSlot()
	defer slot.free()
	C.qwgpu_pop_scope(ref, slot.c)
	C.qwgpu_pop_scope(ref, slot.c)
	if err != nil {
		return err
	}
	return slot.take()
}

// setUncaptured routes errors outside any scope into slot instead of the
// default handler, which panics inside wgpu-native.
func setUncaptured(dev *wgpu.Device, slot errorSlot) {
	C.qwgpu_set_uncaptured(deviceRef(dev), slot.c)
}

// mapRead maps [offset, offset+size) of a MapRead buffer, polling the device
// until the mapping callback has run.
func mapRead(dev *wgpu.Device, buf *wgpu.Buffer, offset, size uint64) error {
	status := (*C.uint32_t)(C.malloc(4))
	if err := scoped(dev, func() error {
		C.qwgpu_map_read(bufferRef(buf), C.size_t(offset), C.size_t(size), status)
		return nil
	}); err != nil {
		// The callback may still be pending and write into status: leave
		// the four bytes allocated rather than risk a write after free.
		return err
	}
	defer C.free(unsafe.Pointer(status))
	// mapRead follows waitIdle, so the callback normally comes at the first
	// polls; the bound only guards against a driver that never calls.
	for i := 0; *status == 0xffffffff; i++ {
		if i == 100000 {
			return fmt.Errorf("mapping a readback buffer: no answer from the driver")
		}
		dev.Poll(false, nil)
		if i > 100 {
			time.Sleep(10 * time.Microsecond)
		}
	}
	if *status != 0 {
		return fmt.Errorf("mapping a readback buffer failed (status %d)", uint32(*status))
	}
	return nil
}
