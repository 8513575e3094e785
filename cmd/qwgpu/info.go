package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/qwgpu/qwgpu/gpu"
)

func cmdInfo(args []string) error {
	fs := newFlags("info")
	backend := fs.String("backend", "", "list only this backend's adapters (vulkan, metal, dx12, gl)")
	asJSON := fs.Bool("json", false, "print the adapters as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Every backend by default, GL included, each with its own indices
	// (the ones --adapter takes together with --backend).
	backends := []string{"vulkan", "metal", "dx12", "gl"}
	if *backend != "" {
		backends = []string{*backend}
	}
	var adapters []gpu.AdapterInfo
	for _, b := range backends {
		list, err := gpu.ListAdapters(b)
		if err != nil && *backend == "" {
			// Listing every backend, one that cannot start (GL without an
			// EGL display) is said and the others are still listed.
			fmt.Fprintf(os.Stderr, "qwgpu info: %s: %v\n", b, err)
			continue
		}
		if err != nil {
			return fmt.Errorf("--backend %q: %w", b, err)
		}
		adapters = append(adapters, list...)
	}
	if *asJSON {
		if adapters == nil {
			adapters = []gpu.AdapterInfo{} // [] rather than null
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(adapters)
	}
	if len(adapters) == 0 {
		return fmt.Errorf("no GPU adapter found (on Linux without a GPU, install mesa-vulkan-drivers for lavapipe)")
	}
	for _, a := range adapters {
		fmt.Printf("%s adapter %d: %s\n", a.Backend, a.Index, a.Name)
		fmt.Printf("  backend %s, type %s, driver %q\n", a.Backend, a.Type, a.Driver)
		l := a.Limits
		fmt.Printf("  limits: max buffer %s, max storage binding %s, storage buffers/stage %d, workgroup storage %d B, invocations/workgroup %d, workgroups/dimension %d\n",
			bytesStr(l.MaxBufferSize), bytesStr(l.MaxStorageBufferBindingSize), l.MaxStorageBuffersPerShaderStage,
			l.MaxComputeWorkgroupStorageSize, l.MaxComputeInvocationsPerWorkgroup, l.MaxComputeWorkgroupsPerDimension)
		feats := strings.Join(a.Features, ", ")
		if feats == "" {
			feats = "none"
		}
		fmt.Printf("  features: %s\n", feats)
	}
	return nil
}

func bytesStr(n uint64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.0f TiB", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%d MiB", n>>20)
	}
}
