package qwen3

import "fmt"

// Precision is how the CPU reference keeps its activations.
type Precision int

const (
	// Float64 is the oracle: weights widened exactly, activations, norms,
	// RoPE products, softmax and KV cache in float64. It differs from
	// transformers' float64 model only in summation order and in the steps
	// transformers itself performs in float32 (see forward.go).
	Float64 Precision = iota
	// Float32Activations rounds every activation to float32 between ops
	// (sums in float64): the best a float32 GPU kernel chain can do. Its
	// distance from the oracle is what float32 rounding alone costs.
	Float32Activations
)

func (p Precision) String() string {
	if p == Float32Activations {
		return "float32 activations"
	}
	return "float64"
}

// Model is the CPU reference Qwen3, the oracle the GPU engine is validated
// against. Weights are held as float32 (exact for every checkpoint dtype).
type Model struct {
	Config    Config
	W         *Weights
	Rope      *Rope
	Precision Precision
	// KVRound, if set, rounds every key and value as it enters the cache
	// (nil: kept exact), so that a GPU cache of 16-bit values can be
	// checked against the reference holding the same values.
	KVRound func(float64) float64
}

// NewModel wraps loaded weights as the float64 oracle. maxPos bounds the
// positions the RoPE tables cover (and so the longest sequence).
func NewModel(c Config, w *Weights, maxPos int) *Model {
	return &Model{Config: c, W: w, Rope: NewRopeFor(c, maxPos), Precision: Float64}
}

// NewFloat32ActivationsModel wraps loaded weights as the float32-activation
// reference (Float32Activations).
func NewFloat32ActivationsModel(c Config, w *Weights, maxPos int) *Model {
	m := NewModel(c, w, maxPos)
	m.Precision = Float32Activations
	return m
}

// Cache is the KV cache of the CPU reference: per layer, keys and values of
// every position seen so far, [positions, kv_heads·head_dim], in the
// model's precision. It grows as positions are filled, up to Max.
type Cache struct {
	f32 kvStore[float32] // Float32Activations
	f64 kvStore[float64] // Float64
	Len int              // positions filled
	Max int
}

// NewCache makes an empty cache for up to maxPos positions.
func (m *Model) NewCache(maxPos int) *Cache {
	L := m.Config.NumHiddenLayers
	return &Cache{Max: maxPos, f32: newKVStore[float32](L), f64: newKVStore[float64](L)}
}

// Output is what a forward pass returns, rounded to float32 whatever the
// precision it was computed in.
type Output struct {
	T      int
	Logits []float32 // [T, vocab]
	// Hidden, when requested: index 0 the embeddings, i in 1..L-1 the output
	// of layer i, L the output of the last layer after the final norm
	// (transformers' hidden_states convention). Each [T, hidden].
	Hidden [][]float32
}

// LogitsAt returns position t's logits.
func (o *Output) LogitsAt(t int) []float32 {
	v := len(o.Logits) / o.T
	return o.Logits[t*v : (t+1)*v]
}

// Forward runs a whole prompt from an empty cache (full recompute).
func (m *Model) Forward(tokens []int, wantHidden bool) (*Output, error) {
	return m.Prefill(m.NewCache(len(tokens)), tokens, wantHidden)
}

// Step feeds one token after what the cache holds and returns its logits.
func (m *Model) Step(c *Cache, token int) ([]float32, error) {
	o, err := m.Prefill(c, []int{token}, false)
	if err != nil {
		return nil, err
	}
	return o.Logits, nil
}

// Prefill feeds tokens at positions c.Len.. and appends their keys and
// values to the cache. It returns every position's logits.
func (m *Model) Prefill(c *Cache, tokens []int, wantHidden bool) (*Output, error) {
	cfg := m.Config
	T := len(tokens)
	if T == 0 {
		return nil, fmt.Errorf("qwen3: empty input")
	}
	pos0 := c.Len
	if pos0+T > c.Max || pos0+T > m.Rope.MaxPos {
		return nil, fmt.Errorf("qwen3: %d tokens after %d exceed the context of %d", T, pos0, min(c.Max, m.Rope.MaxPos))
	}
	for _, id := range tokens {
		if id < 0 || id >= cfg.VocabSize {
			return nil, fmt.Errorf("qwen3: token id %d outside the vocabulary [0, %d)", id, cfg.VocabSize)
		}
	}
	var out *Output
	if m.Precision == Float32Activations {
		out = forward(m, &c.f32, Attention, pos0, tokens, wantHidden)
	} else {
		out = forward(m, &c.f64, Attention64, pos0, tokens, wantHidden)
	}
	c.Len = pos0 + T
	return out, nil
}
