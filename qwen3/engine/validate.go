package engine

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu/kernels"
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

// ForwardTrace runs a prompt in slot 0 from an empty cache, in one prefill
// pass, and reads back every position's logits and the residual stream
// after the embedding and after every layer. It records the prefill graph
// itself, with copies between the layers, and the final norm and LM head
// over every row; it is meant for validation. The cache afterwards holds
// the prompt, so decoding can continue from it.
func (e *Engine) ForwardTrace(tokens []int) (*Trace, error) {
	e.Reset()
	T := len(tokens)
	if T > e.chunk {
		return nil, fmt.Errorf("validation prompt of %d tokens exceeds the prefill chunk of %d", T, e.chunk)
	}
	if err := e.checkTokens(0, tokens); err != nil {
		return nil, err
	}
	c := e.cfg
	H, V, L := c.HiddenSize, c.VocabSize, c.NumHiddenLayers
	s := e.dev.NewScope("validation")
	defer s.Release()
	rowBytes := uint64(T * H * 4)
	capture, err := s.Buffer("validate.hidden", uint64(L+1)*rowBytes)
	if err != nil {
		return nil, e.oom("validation buffers", err)
	}
	allLogits, err := s.Buffer("validate.logits", uint64(T*V*4))
	if err != nil {
		return nil, e.oom("validation buffers", err)
	}
	norm, err := kernels.NewRMSNorm(s, kernels.RMSNorm{Out: e.a.normed, X: e.a.x, W: e.finalNorm, Cols: H,
		Eps: float32(c.RMSNormEps), Step: e.a.step, MaxRows: T, Label: "final_norm"})
	if err != nil {
		return nil, err
	}
	head, err := kernels.MatMul(s, kernels.Linear{Out: allLogits, X: e.a.normed, W: e.lmHead, Epi: kernels.Store,
		Step: e.a.step, MaxRows: T, Label: "lm_head"})
	if err != nil {
		return nil, err
	}
	rows := make([]kernels.StepRow, T)
	for i := range rows {
		rows[i] = kernels.StepRow{Pos: i}
	}
	r, err := e.begin(rows, tokens)
	if err != nil {
		return nil, err
	}
	g := e.prefill
	r.Run(g.embed...)
	r.Copy(capture, 0, e.a.x, 0, rowBytes)
	for i, l := range g.layers {
		r.Run(l...)
		if i+1 < L { // hidden L is taken after the final norm below
			r.Copy(capture, uint64(i+1)*rowBytes, e.a.x, 0, rowBytes)
		}
	}
	r.Run(norm)
	r.Copy(capture, uint64(L)*rowBytes, e.a.normed, 0, rowBytes)
	r.Run(head...)
	rbLogits := r.Read(allLogits, 0, uint64(T*V*4))
	rbHidden := r.Read(capture, 0, uint64(L+1)*rowBytes)
	if err := r.Submit(); err != nil {
		return nil, fmt.Errorf("validation pass: %w", err)
	}
	e.pos[0] = T
	tr := &Trace{T: T, Logits: rbLogits.F32()}
	all := rbHidden.F32()
	for i := 0; i <= L; i++ {
		tr.Hidden = append(tr.Hidden, all[i*T*H:(i+1)*T*H])
	}
	return tr, nil
}
