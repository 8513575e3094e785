package serve

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The official JavaScript client and browser driver the end-to-end tests
// use. openai 7 needs Node 22; Debian 12 and CI have Node 20, which the
// 6.x line supports.
const npmPackages = "openai@6.30.1 playwright-core@1.65.1"

// unavailable stops a test whose tool is missing: a skip with the reason,
// or under CI=true a failure, since CI is where it must run.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// npmDir is a directory with node_modules holding npmPackages, installed
// from npm on first use: $QWGPU_NPM_DIR, else the user's cache directory.
func npmDir(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		unavailable(t, "node not found (apt-get install nodejs npm): %v", err)
	}
	dir := os.Getenv("QWGPU_NPM_DIR")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			unavailable(t, "no cache directory for npm packages: %v (set QWGPU_NPM_DIR)", err)
		}
		dir = filepath.Join(cache, "qwgpu-test-npm")
	}
	stamp := filepath.Join(dir, "installed.txt")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == npmPackages {
		return dir
	}
	if _, err := exec.LookPath("npm"); err != nil {
		unavailable(t, "npm not found (apt-get install npm): %v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"private":true,"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"install", "--no-audit", "--no-fund", "--prefix", dir}, strings.Fields(npmPackages)...)
	if out, err := exec.CommandContext(ctx, "npm", args...).CombinedOutput(); err != nil {
		unavailable(t, "npm install %s: %v\n%s", npmPackages, err, out)
	}
	if err := os.WriteFile(stamp, []byte(npmPackages), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runNode runs a script of testdata/e2e beside node_modules (ES modules
// resolve packages from the script's own directory) with env added, and
// returns its output; it fails the test if the script fails.
func runNode(t *testing.T, script string, timeout time.Duration, env ...string) string {
	t.Helper()
	dir := npmDir(t)
	src, err := os.ReadFile(filepath.Join("testdata", "e2e", script))
	if err != nil {
		t.Fatal(err)
	}
	// A name of this test's own: tests of several packages may share dir.
	path := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+script)
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", path)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("node %s:\n%s", script, out.String())
	if err != nil {
		t.Fatalf("node %s: %v", script, err)
	}
	return out.String()
}
