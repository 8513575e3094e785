// Package gputest opens GPU devices for tests outside package gpu, with
// the project's rules: QWGPU_TEST_BACKEND picks the backend (default: the
// platform's best), and without an adapter a test is skipped, or fails
// when QWGPU_REQUIRE_GPU=1 (CI sets it: lavapipe is installed there).
package gputest

import (
	"os"
	"testing"

	"github.com/qwgpu/qwgpu/gpu"
)

// Open opens a device on the test backend; the caller closes it.
func Open(t testing.TB) *gpu.Device {
	t.Helper()
	dev, err := gpu.Open(gpu.Options{Backend: os.Getenv("QWGPU_TEST_BACKEND")})
	if err != nil {
		if os.Getenv("QWGPU_REQUIRE_GPU") == "1" {
			t.Fatalf("QWGPU_REQUIRE_GPU=1 but no GPU device: %v", err)
		}
		t.Skipf("no GPU device (set QWGPU_REQUIRE_GPU=1 to fail instead): %v", err)
	}
	return dev
}
