package gpu

import (
	"bytes"
	"fmt"
	"text/template"

	"github.com/qwgpu/qwgpu/wgsl"
	"github.com/rajveermalviya/go-webgpu/wgpu"
)

// Kernel is a compiled compute pipeline: one WGSL source with entry point
// "main". Kernels are cached per device for its whole life, since wgpu 0.17
// never frees a pipeline.
type Kernel struct {
	d        *Device
	name     string
	pipeline *wgpu.ComputePipeline
	layout   *wgpu.BindGroupLayout
}

// Name returns the cache key of the kernel: its shader and variables.
func (k *Kernel) Name() string { return k.name }

// Kernel compiles wgsl/<name>.wgsl rendered with vars, a struct whose
// fields the template reads (text/template; a missing field is an error),
// or returns the pipeline already compiled for the same name and vars.
// Each kernel's vars type is declared next to its wrapper in gpu/kernels.
func (d *Device) Kernel(name string, vars any) (*Kernel, error) {
	key := fmt.Sprintf("%s %+v", name, vars)
	if k := d.cached(key); k != nil {
		return k, nil
	}
	code, err := Render(name, vars)
	if err != nil {
		return nil, err
	}
	return d.compile(key, code)
}

// KernelSource compiles WGSL text that is not in package wgsl, cached
// under key. It exists for tests.
func (d *Device) KernelSource(key, code string) (*Kernel, error) {
	key = "source:" + key
	if k := d.cached(key); k != nil {
		return k, nil
	}
	return d.compile(key, code)
}

func (d *Device) cached(key string) *Kernel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.kernels[key]
}

// templateFuncs are the integer helpers shader templates may use, e.g.
// {{mul .Rows .TPR}} for a workgroup size that must be a literal.
var templateFuncs = template.FuncMap{
	"add": func(a, b int) int { return a + b },
	"sub": func(a, b int) int { return a - b },
	"mul": func(a, b int) int { return a * b },
	"div": func(a, b int) int { return a / b },
	// seq n is 0, 1, …, n-1: {{range $i := seq 8}} writes a loop out.
	"seq": func(n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = i
		}
		return s
	},
}

// Render fills in the template wgsl/<name>.wgsl with vars. The library
// files (wgsl/lib_*.wgsl, {{define}} blocks such as the step uniform) are
// available to every shader through {{template "name" .}}.
func Render(name string, vars any) (string, error) {
	src, err := wgsl.Source(name)
	if err != nil {
		return "", fmt.Errorf("gpu: %w", err)
	}
	t := template.New(name).Option("missingkey=error").Funcs(templateFuncs)
	for _, lib := range wgsl.Library() {
		if t, err = t.Parse(lib); err != nil {
			return "", fmt.Errorf("gpu: shader library: %w", err)
		}
	}
	if t, err = t.Parse(src); err != nil {
		return "", fmt.Errorf("gpu: shader %s: template: %w", name, err)
	}
	var out bytes.Buffer
	if err := t.Execute(&out, vars); err != nil {
		return "", fmt.Errorf("gpu: shader %s: template: %w", name, err)
	}
	return out.String(), nil
}

func (d *Device) compile(key, code string) (*Kernel, error) {
	if d.isClosed() {
		return nil, errClosed
	}
	var module *wgpu.ShaderModule
	var pipeline *wgpu.ComputePipeline
	err := scoped(d.dev, func() (err error) {
		module, err = d.dev.CreateShaderModule(&wgpu.ShaderModuleDescriptor{
			Label:          key,
			WGSLDescriptor: &wgpu.ShaderModuleWGSLDescriptor{Code: code},
		})
		if err != nil {
			return err
		}
		// A nil layout lets wgpu derive the bind group layout from the
		// shader, so bindings need no second description on the Go side.
		pipeline, err = d.dev.CreateComputePipeline(&wgpu.ComputePipelineDescriptor{
			Label:   key,
			Compute: wgpu.ProgrammableStageDescriptor{Module: module, EntryPoint: "main"},
		})
		return err
	})
	if module != nil {
		module.Release()
	}
	if err != nil {
		if pipeline != nil {
			pipeline.Release()
		}
		return nil, fmt.Errorf("gpu: kernel %s: %w", key, err)
	}
	k := &Kernel{d: d, name: key, pipeline: pipeline, layout: pipeline.GetBindGroupLayout(0)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old := d.kernels[key]; old != nil {
		// Compiled twice by racing callers: keep the first.
		k.release()
		return old, nil
	}
	d.kernels[key] = k
	return k, nil
}

func (k *Kernel) release() {
	k.layout.Release()
	k.pipeline.Release()
}
