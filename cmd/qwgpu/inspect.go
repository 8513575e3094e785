package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/weights"
)

// cmdInspect lists a GGUF file's or a checkpoint directory's metadata and
// tensors, like gguf-dump, or with --dump writes one tensor's values.
func cmdInspect(args []string) error {
	fs := newFlags("inspect")
	model := fs.StringP("model", "m", "", "GGUF file or Hugging Face checkpoint directory (required)")
	dump := fs.String("dump", "", "write this tensor (GGUF or Hugging Face name) to stdout as float32 little endian, row-major in the Hugging Face shape")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" {
		return fmt.Errorf("--model is required")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	st, err := os.Stat(*model)
	if err != nil {
		return fmt.Errorf("--model: %v", err)
	}
	out := bufio.NewWriter(os.Stdout)
	if st.IsDir() {
		err = inspectCheckpoint(out, *model, *dump)
	} else {
		err = inspectGGUF(out, *model, *dump)
	}
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("writing stdout: %v", ferr)
	}
	return err
}

func inspectGGUF(out *bufio.Writer, path, dump string) error {
	g, err := weights.OpenGGUF(path)
	if err != nil {
		return err
	}
	defer g.Close()
	if dump != "" {
		name := dump
		if _, ok := g.Info(name); !ok {
			if gn, ok := qwen3.GGUFName(dump); ok {
				name = gn
			}
		}
		t, err := g.Tensor(name)
		if err != nil {
			return err
		}
		return writeFloat32(out, t)
	}
	fmt.Fprintf(out, "%s: GGUF v%d, %d metadata entries, %d tensors, alignment %d, data at byte %d\n",
		path, g.Version, len(g.KVs), len(g.Tensors), g.Alignment, g.DataStart)
	fmt.Fprintln(out, "metadata:")
	for _, kv := range g.KVs {
		value := describeKVValue(kv.Value)
		if f, ok := kv.Value.(float64); ok && kv.Type == weights.GGUFFloat32 {
			value = strconv.FormatFloat(f, 'g', -1, 32) // as stored, not widened
		}
		fmt.Fprintf(out, "  %-44s %-14s %s\n", kv.Key, describeKVType(kv), value)
	}
	fmt.Fprintln(out, "tensors:")
	fmt.Fprintf(out, "  %-28s %-44s %-8s %-14s %-14s %12s\n", "name", "hugging face name", "type", "shape", "ne", "bytes")
	var total int64
	for _, ti := range g.Tensors {
		hf, ok := qwen3.HFName(ti.Name)
		if !ok {
			hf = "-"
		}
		fmt.Fprintf(out, "  %-28s %-44s %-8s %-14s %-14s %12d\n", ti.Name, hf, ti.TypeName(), dims(ti.Shape), dims(ti.NE), ti.Size)
		total += ti.Size
	}
	fmt.Fprintf(out, "total: %d tensors, %d bytes (%s)\n", len(g.Tensors), total, weights.HumanBytes(total))
	return nil
}

func inspectCheckpoint(out *bufio.Writer, dir, dump string) error {
	ck, err := weights.OpenCheckpoint(dir)
	if err != nil {
		return err
	}
	defer ck.Close()
	if dump != "" {
		name := dump
		if !ck.Has(name) {
			if hf, ok := qwen3.HFName(dump); ok {
				name = hf
			}
		}
		t, err := ck.Get(name)
		if err != nil {
			return err
		}
		return writeFloat32(out, t)
	}
	fmt.Fprintf(out, "%s: Hugging Face checkpoint, %d tensors\n", dir, len(ck.Names()))
	if data, err := weights.ReadFileLimited(filepath.Join(dir, "config.json"), weights.MaxConfigBytes); err == nil {
		fmt.Fprintln(out, "config.json:")
		fmt.Fprintf(out, "  %s\n", oneLine(string(data)))
	}
	fmt.Fprintln(out, "tensors:")
	fmt.Fprintf(out, "  %-44s %-28s %-8s %-14s %12s\n", "name", "gguf name", "type", "shape", "bytes")
	var total int64
	for _, name := range ck.Names() {
		t, err := ck.Get(name)
		if err != nil {
			return err
		}
		gn, ok := qwen3.GGUFName(name)
		if !ok {
			gn = "-"
		}
		fmt.Fprintf(out, "  %-44s %-28s %-8s %-14s %12d\n", name, gn, t.DType, dims(t.Shape), len(t.Raw))
		total += int64(len(t.Raw))
	}
	fmt.Fprintf(out, "total: %d tensors, %d bytes (%s)\n", len(ck.Names()), total, weights.HumanBytes(total))
	return nil
}

// writeFloat32 writes a tensor's values, decoded to float32, little endian.
func writeFloat32(out *bufio.Writer, t *weights.Tensor) error {
	vals, err := t.Float32()
	if err != nil {
		return err
	}
	buf := make([]byte, 4)
	for _, v := range vals {
		binary.LittleEndian.PutUint32(buf, math.Float32bits(v))
		if _, err := out.Write(buf); err != nil {
			return fmt.Errorf("writing stdout: %v", err)
		}
	}
	return nil
}

func dims[T int | uint64](d []T) string {
	s := make([]string, len(d))
	for i, v := range d {
		s[i] = strconv.FormatUint(uint64(v), 10)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

func describeKVType(kv weights.GGUFKV) string {
	if kv.Type == weights.GGUFArray {
		return "[" + kv.Elem.String() + "]"
	}
	return kv.Type.String()
}

// describeKVValue shows a metadata value on one line: strings quoted and
// cut at 60 bytes, arrays by length and their first few elements.
func describeKVValue(v any) string {
	quote := func(s string) string {
		if len(s) > 60 {
			return strconv.Quote(s[:60]) + fmt.Sprintf("... (%d bytes)", len(s))
		}
		return strconv.Quote(s)
	}
	head := func(n int, item func(i int) string) string {
		parts := []string{}
		for i := range min(n, 5) {
			parts = append(parts, item(i))
		}
		if n > 5 {
			parts = append(parts, "...")
		}
		return fmt.Sprintf("%d: [%s]", n, strings.Join(parts, ", "))
	}
	switch v := v.(type) {
	case string:
		return quote(v)
	case []string:
		return head(len(v), func(i int) string { return quote(v[i]) })
	case []int64:
		return head(len(v), func(i int) string { return strconv.FormatInt(v[i], 10) })
	case []uint64:
		return head(len(v), func(i int) string { return strconv.FormatUint(v[i], 10) })
	case []float64:
		return head(len(v), func(i int) string { return strconv.FormatFloat(v[i], 'g', -1, 64) })
	case []bool:
		return head(len(v), func(i int) string { return strconv.FormatBool(v[i]) })
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}
