package gpu

import (
	"os"
	"strings"

	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// wgpu-native logs to stderr by default, e.g. "[wgpu] [Warn] No config
// found!" when a backend probe finds nothing. qwgpu reports every error
// itself (with the driver's message), and a one-line error must stay one
// line, so the log is off unless QWGPU_WGPU_LOG names a level (error,
// warn, info, debug, trace) for debugging.
func init() {
	levels := map[string]wgpu.LogLevel{
		"error": wgpu.LogLevel_Error, "warn": wgpu.LogLevel_Warn, "info": wgpu.LogLevel_Info,
		"debug": wgpu.LogLevel_Debug, "trace": wgpu.LogLevel_Trace,
	}
	level, ok := levels[strings.ToLower(os.Getenv("QWGPU_WGPU_LOG"))]
	if !ok {
		level = wgpu.LogLevel_Off
	}
	wgpu.SetLogLevel(level)
}
