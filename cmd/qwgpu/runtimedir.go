package main

import (
	"os"
	"path/filepath"
)

// Mesa's drivers (lavapipe, llvmpipe, and the GL paths of the hardware
// ones) print "XDG_RUNTIME_DIR is invalid or not set" on stderr, several
// times, when the variable is unset or does not name a private directory
// of this user. Nothing qwgpu does needs that directory; the message only
// drowns the one line qwgpu writes. So, before any GPU is opened, an
// invalid or missing XDG_RUNTIME_DIR is pointed at a private temporary
// directory, removed again on exit.

// ensureRuntimeDir sets XDG_RUNTIME_DIR when it is not usable and returns
// the cleanup to run on exit.
func ensureRuntimeDir() (cleanup func()) {
	if runtimeDirUsable(os.Getenv("XDG_RUNTIME_DIR")) {
		return func() {}
	}
	dir, err := os.MkdirTemp("", "qwgpu-runtime-")
	if err != nil {
		return func() {} // the warning is harmless; nothing else depends on it
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		os.Remove(dir)
		return func() {}
	}
	os.Setenv("XDG_RUNTIME_DIR", dir)
	return func() { os.RemoveAll(dir) }
}

// runtimeDirUsable is Mesa's test: an absolute path to a directory owned
// by this user and accessible to no one else.
func runtimeDirUsable(dir string) bool {
	if dir == "" || !filepath.IsAbs(dir) {
		return false
	}
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() || st.Mode().Perm()&0o077 != 0 {
		return false
	}
	return ownedByMe(st)
}
