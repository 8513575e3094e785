// Package wgsl holds the WGSL compute shaders of qwgpu, one file per kernel
// family (wgsl/<name>.wgsl), embedded into the binary, and the library
// files wgsl/lib_*.wgsl: {{define}} blocks (the step uniform, weight
// formats) that every shader template may use.
//
// The sources are text/template templates: naga 0.13 has no override
// constants and accepts only literals in @workgroup_size, so workgroup sizes,
// weight dtypes and epilogue variants are filled in by package gpu before
// compilation. Each file starts with a header that says what it computes, the
// shape and dtype of every binding and the fields of its params uniform.
package wgsl

import (
	"embed"
	"fmt"
	"sort"
	"strings"
)

//go:embed *.wgsl
var files embed.FS

// Source returns the template text of wgsl/<name>.wgsl.
func Source(name string) (string, error) {
	b, err := files.ReadFile(name + ".wgsl")
	if err != nil {
		return "", fmt.Errorf("wgsl: no shader %q (have %s)", name, strings.Join(Names(), ", "))
	}
	return string(b), nil
}

// Names lists the embedded shaders (not the library files), without the
// .wgsl suffix, sorted.
func Names() []string {
	entries, _ := files.ReadDir(".")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".wgsl"); ok && !strings.HasPrefix(n, "lib_") {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Library returns the text of every library file, sorted by name.
func Library() []string {
	entries, _ := files.ReadDir(".")
	var libs []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "lib_") && strings.HasSuffix(e.Name(), ".wgsl") {
			b, _ := files.ReadFile(e.Name())
			libs = append(libs, string(b))
		}
	}
	return libs
}
