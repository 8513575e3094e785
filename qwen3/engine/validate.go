package engine

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
)

// Trace is everything one prompt produces on the GPU, for validation
// against the CPU reference layer by layer.
type Trace struct {
	T      int
	Logits []float32 // [T, vocab]
	// Hidden follows transformers' hidden_states: 0 the embeddings, i the
	// output of layer i, L the last layer's output after the final norm.
	Hidden [][]float32 // [L+1][T, hidden]
}

// ForwardTrace runs a prompt from an empty cache in one prefill pass and
// reads back every position's logits and the residual stream after the
// embedding and after every layer. It is slow (the pass is split to copy
// the activations out) and meant for validation; the cache afterwards
// holds the prompt, so decoding can continue from it.
func (e *Engine) ForwardTrace(tokens []int) (*Trace, error) {
	e.Reset()
	T := len(tokens)
	if T > e.chunk {
		return nil, fmt.Errorf("validation prompt of %d tokens exceeds the prefill chunk of %d", T, e.chunk)
	}
	if err := e.checkTokens(tokens); err != nil {
		return nil, err
	}
	c := e.cfg
	d := e.dev
	H, V, L := c.HiddenSize, c.VocabSize, c.NumHiddenLayers
	rowBytes := uint64(T * H * 4)
	capture, err := d.NewBuffer("validate.hidden", uint64(L+1)*rowBytes)
	if err != nil {
		return nil, e.oom("validation buffers", err)
	}
	defer capture.Release()
	allLogits, err := d.NewBuffer("validate.logits", uint64(T*V*4))
	if err != nil {
		return nil, e.oom("validation buffers", err)
	}
	defer allLogits.Release()
	norm, err := d.RMSNorm(e.pNormed, e.px, e.finalNorm, T, H, float32(c.RMSNormEps))
	if err != nil {
		return nil, err
	}
	defer norm.Release()
	head, err := d.MatMul(allLogits, e.pNormed, e.lmHead, T)
	if err != nil {
		return nil, err
	}
	defer gpu.ReleaseOps(head)

	p, err := e.plan(T)
	if err != nil {
		return nil, err
	}
	ids := make([]uint32, T)
	for i, t := range tokens {
		ids[i] = uint32(t)
	}
	if err := d.WriteU32(e.pTokens, 0, ids); err != nil {
		return nil, err
	}
	if err := p.set(0); err != nil {
		return nil, err
	}
	r := d.NewRecorder()
	prev := 0
	for i, b := range p.bounds {
		r.Run(p.ops[prev:b]...)
		prev = b
		if i < L { // hidden L is taken after the final norm below
			r.Copy(capture, uint64(i)*rowBytes, e.px, 0, rowBytes)
		}
	}
	r.Run(norm)
	r.Copy(capture, uint64(L)*rowBytes, e.pNormed, 0, rowBytes)
	r.Run(head...)
	rbLogits := r.ReadF32(allLogits, 0, T*V)
	rbHidden := r.ReadF32(capture, 0, (L+1)*T*H)
	if err := r.Submit(); err != nil {
		return nil, fmt.Errorf("validation pass: %w", err)
	}
	e.pos = T
	tr := &Trace{T: T, Logits: rbLogits.F32()}
	all := rbHidden.F32()
	for i := 0; i <= L; i++ {
		tr.Hidden = append(tr.Hidden, all[i*T*H:(i+1)*T*H])
	}
	return tr, nil
}
