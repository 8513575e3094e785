package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// versionLine is what `qwgpu --version` prints: the module version (a
// tag when installed with `go install ...@vX`, "(devel)" when built from a
// checkout), the commit the binary was built from and the Go toolchain.
func versionLine() string {
	version := "(unknown)"
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		version = info.Main.Version
	}
	return fmt.Sprintf("qwgpu %s, commit %s, %s %s/%s", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
