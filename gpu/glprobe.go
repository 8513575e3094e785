package gpu

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// wgpu-native 0.17 sets up GL through EGL and unwraps the EGL display it
// asks for: where libEGL has no display to give (glvnd without a vendor
// library, e.g. __EGL_VENDOR_LIBRARY_FILENAMES naming a missing file), the
// first GL instance aborts the whole process from Rust, which no error
// scope catches. So before this process creates one, a child process does:
// the same program, re-run with glProbeEnv set, creates a GL instance in
// this package's init (before the program's main, whatever it is: qwgpu, a
// test binary, a program that embeds qwgpu) and exits. Only if the child
// comes back is GL used here; otherwise the GL backend is reported
// unusable, with the reason the child died of.

// glProbeEnv, set to "1", makes a program that links this package create a
// GL instance, list its adapters, print glProbeOK and exit.
const glProbeEnv = "QWGPU_GL_PROBE"

const glProbeOK = "qwgpu GL probe: instance created"

func init() {
	if os.Getenv(glProbeEnv) != "1" {
		return
	}
	inst := wgpu.CreateInstance(&wgpu.InstanceDescriptor{Backends: wgpu.InstanceBackend_GL})
	n := len(inst.EnumerateAdapters(nil))
	fmt.Printf("%s, %d adapters\n", glProbeOK, n)
	os.Exit(0)
}

var glCheck struct {
	once sync.Once
	err  error
}

// glUsable runs the GL probe once per process and says why GL cannot be
// used, or returns nil.
func glUsable() error {
	glCheck.once.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			glCheck.err = fmt.Errorf("cannot check that it starts safely (the probe needs this program's path): %v", err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, exe)
		cmd.Env = append(os.Environ(), glProbeEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err == nil && bytes.Contains(out, []byte(glProbeOK)) {
			return
		}
		glCheck.err = fmt.Errorf("wgpu-native aborts while setting up EGL (%s); check the EGL installation (libEGL and a vendor library such as Mesa's)", probeFailure(out, err))
	})
	return glCheck.err
}

// probeFailure says in a few words why the probe did not come back: the
// Rust panic's message and place when there is one.
func probeFailure(out []byte, err error) string {
	for _, l := range strings.Split(string(out), "\n") {
		// thread '<unnamed>' panicked at 'MESSAGE', PATH/wgpu-hal/src/gles/egl.rs:813:77
		if _, rest, ok := strings.Cut(l, "panicked at "); ok {
			msg, where, _ := strings.Cut(rest, "', ")
			if i := strings.Index(where, "wgpu-hal/"); i >= 0 {
				where = where[i:]
			}
			return fmt.Sprintf("%s at %s", strings.Trim(msg, "'"), where)
		}
	}
	if err != nil {
		return fmt.Sprintf("the probe process: %v", err)
	}
	return "the probe process printed no result"
}
