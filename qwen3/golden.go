package qwen3

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/qwgpu/qwgpu/weights"
)

// GoldenCase is one prompt of a golden.safetensors file made by
// transformers (see testdata/golden/README.md).
type GoldenCase struct {
	Index        int
	InputIDs     []int
	Logits       []float32   // [T, vocab], computed in float64
	Hidden       [][]float32 // [L+1][T, hidden]
	Greedy       []int       // greedy continuation, full recompute
	GreedyMargin []float32   // top-1 minus top-2 logit at each greedy step
}

// LoadGolden reads every case of a golden.safetensors file. The number of
// cases comes from golden.json beside it when present, else from the
// tensor names.
func LoadGolden(path string, c Config) ([]GoldenCase, error) {
	f, err := weights.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n := 0
	if meta, err := os.ReadFile(filepath.Join(filepath.Dir(path), "golden.json")); err == nil {
		var m struct{ Cases []json.RawMessage }
		if err := json.Unmarshal(meta, &m); err != nil {
			return nil, fmt.Errorf("golden: %s: %v", filepath.Join(filepath.Dir(path), "golden.json"), err)
		}
		n = len(m.Cases)
	} else {
		for _, name := range f.Names() {
			var k int
			var rest string
			if _, err := fmt.Sscanf(name, "case%d.%s", &k, &rest); err == nil && rest == "input_ids" {
				n = max(n, k+1)
			}
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("golden: %s: no cases", path)
	}
	var cases []GoldenCase
	for k := 0; k < n; k++ {
		gc := GoldenCase{Index: k}
		p := fmt.Sprintf("case%d.", k)
		ids, err := tensorInts(f, p+"input_ids")
		if err != nil {
			return nil, err
		}
		gc.InputIDs = ids
		if gc.Logits, err = tensorF32(f, p+"logits"); err != nil {
			return nil, err
		}
		if len(gc.Logits) != len(ids)*c.VocabSize {
			return nil, fmt.Errorf("golden: %s: %slogits has %d values, want %d×%d", path, p, len(gc.Logits), len(ids), c.VocabSize)
		}
		for i := 0; i <= c.NumHiddenLayers; i++ {
			h, err := tensorF32(f, fmt.Sprintf("%shidden.%d", p, i))
			if err != nil {
				return nil, err
			}
			gc.Hidden = append(gc.Hidden, h)
		}
		if gc.Greedy, err = tensorInts(f, p+"greedy"); err != nil {
			return nil, err
		}
		if gc.GreedyMargin, err = tensorF32(f, p+"greedy_margin"); err != nil {
			return nil, err
		}
		cases = append(cases, gc)
	}
	return cases, nil
}

func tensorF32(f *weights.File, name string) ([]float32, error) {
	t, err := f.Tensor(name)
	if err != nil {
		return nil, err
	}
	return t.Float32()
}

func tensorInts(f *weights.File, name string) ([]int, error) {
	t, err := f.Tensor(name)
	if err != nil {
		return nil, err
	}
	v, err := t.Int32()
	if err != nil {
		return nil, err
	}
	out := make([]int, len(v))
	for i, x := range v {
		out[i] = int(x)
	}
	return out, nil
}

// MaxAbs returns max |x|.
func MaxAbs(x []float32) float64 {
	var m float64
	for _, v := range x {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// MaxAbsDiff returns max |a-b| and the index where it occurs. NaN anywhere
// gives +Inf so that it can never pass a bound.
func MaxAbsDiff(a, b []float32) (float64, int) {
	var m float64
	at := -1
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if math.IsNaN(d) {
			return math.Inf(1), i
		}
		if d > m || at < 0 {
			m, at = d, i
		}
	}
	return m, at
}

// RelErr is max|got-want| / max(1, max|want|): the bound used throughout
// validation ("1e-4 × max(1, max|logit|)").
func RelErr(got, want []float32) float64 {
	d, _ := MaxAbsDiff(got, want)
	return d / math.Max(1, MaxAbs(want))
}
