package qwen3

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"

	"github.com/qwgpu/qwgpu/weights"
)

// Shapes are the published Qwen3 dense model shapes (from their
// config.json files), plus "tiny", the built-in demonstration model that
// runs anywhere: it has the real Qwen3 vocabulary so that the real
// tokenizer drives it, and little else.
var Shapes = map[string]Config{
	"tiny": shape(256, 768, 4, 4, 2, 64, true),
	"0.6B": shape(1024, 3072, 28, 16, 8, 128, true),
	"1.7B": shape(2048, 6144, 28, 16, 8, 128, true),
	"4B":   shape(2560, 9728, 36, 32, 8, 128, true),
	"8B":   shape(4096, 12288, 36, 32, 8, 128, false),
}

// ShapeNames lists Shapes' keys, smallest first.
func ShapeNames() []string {
	names := make([]string, 0, len(Shapes))
	for n := range Shapes {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		return int(Shapes[a].NumParams() - Shapes[b].NumParams())
	})
	return names
}

func shape(hidden, inter, layers, heads, kv, headDim int, tied bool) Config {
	return Config{
		VocabSize: 151936, HiddenSize: hidden, IntermediateSize: inter, NumHiddenLayers: layers,
		NumAttentionHeads: heads, NumKeyValueHeads: kv, HeadDim: headDim, RMSNormEps: 1e-6,
		RopeTheta: 1e6, MaxPositionEmbeddings: 40960, TieWordEmbeddings: tied,
		EOSTokenIDs: []int{151645, 151643},
	}
}

// RandomSource makes seeded random tensors for a config on request,
// without files: a model of any published shape can be built on any
// machine. Linear weights are uniform with the standard deviation
// 1/sqrt(fan_in), norm weights 1 ± 0.2, and an eighth of every k_norm
// weight lies in [20, 90] as in real Qwen3 checkpoints, so that the
// precision problems of real models show up in synthetic ones too.
type RandomSource struct {
	Config Config
	DType  weights.DType // F32, BF16 or F16
	Seed   uint64
}

// Has reports whether the model reads the tensor.
func (r *RandomSource) Has(name string) bool {
	for _, s := range r.Config.AllTensors() {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Get builds the named tensor; the expected shape must match the config's.
func (r *RandomSource) Get(name string, shape ...int) (*weights.Tensor, error) {
	var spec *TensorSpec
	for _, s := range r.Config.AllTensors() {
		if s.Name == name {
			spec = &s
			break
		}
	}
	if spec == nil {
		return nil, fmt.Errorf("random model: tensor %q not found", name)
	}
	if len(shape) > 0 && !slices.Equal(shape, spec.Shape) {
		return nil, fmt.Errorf("random model: tensor %q: shape %v, want %v", name, spec.Shape, shape)
	}
	n := 1
	for _, d := range spec.Shape {
		n *= d
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	seed := r.Seed ^ h.Sum64()
	vals := make([]float32, n)
	switch {
	case strings.HasSuffix(name, "k_norm.weight"):
		fillUniform(vals, seed, 1, 0.2*math.Sqrt(3))
		for i := range vals {
			if splitmix(seed+uint64(i)*0x9e37)%8 == 0 {
				vals[i] = float32(20 + 70*unit(splitmix(seed^uint64(i))))
			}
		}
	case strings.HasSuffix(name, "norm.weight"):
		fillUniform(vals, seed, 1, 0.2*math.Sqrt(3))
	default:
		fanIn := spec.Shape[len(spec.Shape)-1]
		fillUniform(vals, seed, 0, math.Sqrt(3/float64(fanIn)))
	}
	t := &weights.Tensor{Name: name, File: "random model", DType: r.DType, Shape: spec.Shape}
	switch r.DType {
	case weights.F32:
		t.Raw = weights.F32Bytes(vals)
	case weights.BF16:
		t.Raw = weights.BF16Bytes(vals)
	case weights.F16:
		t.Raw = weights.F16Bytes(vals)
	default:
		return nil, fmt.Errorf("random model: dtype %v not supported (F32, BF16, F16)", r.DType)
	}
	return t, nil
}

// fillUniform sets v[i] = mean + U(-a, a), a pure function of (seed, i),
// in parallel.
func fillUniform(v []float32, seed uint64, mean, a float64) {
	parallelFor(len(v), 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v[i] = float32(mean + a*(2*unit(splitmix(seed+uint64(i)))-1))
		}
	})
}

// splitmix is the SplitMix64 output function: a fast, well-mixed hash of
// a counter, so every element is independent of how the work is split.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit maps a hash to [0, 1).
func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }
