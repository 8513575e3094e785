package engine

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/gpu/kernels"
)

// mode is what a graph computes: a decode step of rows sequences, one
// token each in its own cache slot, or a prefill chunk of up to rows
// consecutive tokens of one sequence.
type mode struct {
	rows    int
	prefill bool
}

// matvec reports whether the projections read each weight once per step
// with a matvec of the step's tokens (decode of up to
// kernels.MaxMatVecBatch sequences: 32), or through the tiled matmul
// (prefill, larger batches).
func (m mode) matvec() bool { return !m.prefill && m.rows <= kernels.MaxMatVecBatch }

// graph is the model lowered to dispatches for one mode, made once and
// recorded for every step of that mode. The dispatch sizes that depend on
// the step (tokens, attended keys) come from the recorder's extent.
type graph struct {
	mode
	embed []*gpu.Op // x = embed_tokens[tokens]
	// chained is embed reading the previous step's argmax instead of the
	// token buffer (decode graphs: row i takes row i's argmax), so that
	// greedy steps can follow one another without the host in between.
	chained []*gpu.Op
	layers  [][]*gpu.Op // each decoder layer's ops
	head    []*gpu.Op   // final norm, lm_head, argmax
}

// record appends one step of the graph to r.
func (g *graph) record(r *gpu.Recorder, chained bool) {
	if chained {
		r.Run(g.chained...)
	} else {
		r.Run(g.embed...)
	}
	for _, l := range g.layers {
		r.Run(l...)
	}
	r.Run(g.head...)
}

// ops counts the graph's dispatches.
func (g *graph) ops() int {
	n := len(g.embed) + len(g.head)
	for _, l := range g.layers {
		n += len(l)
	}
	return n
}

// decodeGraph returns the decode graph for a batch of rows sequences,
// making it on first use.
func (e *Engine) decodeGraph(rows int) (*graph, error) {
	if g := e.decode[rows]; g != nil {
		return g, nil
	}
	g, err := e.build(mode{rows: rows})
	if err != nil {
		return nil, err
	}
	e.decode[rows] = g
	return g, nil
}

// Rebuild makes the prefill graph again and drops the decode graphs (made
// again on first use), so that later steps use the kernels' layouts as they
// are now: after kernels.SetTune, one loaded model is measured in several
// layouts (qwgpu bench --tune). A layout with more attention splits (more
// splits or shorter tiles) gets a larger scratch buffer. The old graphs'
// ops and buffers stay in the engine's scope until Close.
func (e *Engine) Rebuild() error {
	if need := kernels.AttentionScratchBytes(e.dev, e.shape, e.ctx, len(e.pos)); need > e.a.scratch.Size() {
		b, err := e.scope.Buffer("attention scratch", need)
		if err != nil {
			return e.oom("attention scratch", err)
		}
		e.a.scratch = b
	}
	g, err := e.build(mode{rows: e.prefill.rows, prefill: true})
	if err != nil {
		return err
	}
	e.prefill = g
	clear(e.decode)
	return nil
}

// build lowers the model for mode m. The model is the same in every mode;
// only how each line maps to kernels differs (see the builder's methods).
func (e *Engine) build(m mode) (*graph, error) {
	b := &builder{e: e, m: m}
	a := &e.a
	g := &graph{mode: m}

	// x = embed_tokens[tokens]
	b.embedding(a.tokens)
	g.embed = b.take()
	if !m.prefill {
		b.embedding(a.next)
		g.chained = b.take()
	}
	for i := range e.layers {
		l := &e.layers[i]
		b.layer = fmt.Sprintf("layer %d ", i)
		// h = input_layernorm(x); q, k, v = q_proj(h), k_proj(h), v_proj(h);
		// q, k = RoPE(q_norm(q)), RoPE(k_norm(k)); K[pos], V[pos] = k, v
		b.normQKVRope(l)
		// attn = softmax(q·Kᵀ / √head_dim) · V over the sequence's cache rows
		b.attention(l)
		// x += o_proj(attn)
		b.linear(kernels.Linear{Out: a.x, X: a.attn, W: l.o, Epi: kernels.Add, Role: "o_proj"})
		// act = SiLU(gate_proj(n)) · up_proj(n), n = post_attention_layernorm(x)
		b.normLinear(l.mlpNorm, kernels.Linear{Out: a.act, X: a.x, W: l.gate, Up: l.up, Epi: kernels.SwiGLU, Role: "gate_up"})
		// x += down_proj(act)
		b.linear(kernels.Linear{Out: a.x, X: a.act, W: l.down, Epi: kernels.Add, Role: "down_proj"})
		g.layers = append(g.layers, b.take())
	}
	b.layer = ""
	// logits = lm_head(norm(x)) of each sequence, or of a prefill chunk's
	// last token; next = argmax(logits)
	b.head()
	g.head = b.take()
	if b.err != nil {
		return nil, fmt.Errorf("preparing the %s: %w", m, b.err)
	}
	return g, nil
}

func (m mode) String() string {
	if m.prefill {
		return fmt.Sprintf("prefill of %d tokens", m.rows)
	}
	return fmt.Sprintf("decode step of %d sequences", m.rows)
}

// builder collects a graph's ops in order and keeps the first error.
type builder struct {
	e     *Engine
	m     mode
	layer string // "layer 3 ", prefixed to op labels
	ops   []*gpu.Op
	err   error
}

func (b *builder) add(ops []*gpu.Op, err error) {
	if b.err == nil {
		b.err = err
		b.ops = append(b.ops, ops...)
	}
}

func (b *builder) one(op *gpu.Op, err error) { b.add([]*gpu.Op{op}, err) }

func (b *builder) take() []*gpu.Op {
	ops := b.ops
	b.ops = nil
	return ops
}

func (b *builder) embedding(ids *gpu.Buffer) {
	a := &b.e.a
	b.add(kernels.NewEmbedding(b.e.scope, kernels.Embedding{Out: a.x, E: b.e.embed, IDs: ids, Step: a.step,
		MaxRows: b.m.rows, Label: "embedding"}))
}

// rmsnorm: out = RMSNorm(x) · w for each row of the step.
func (b *builder) rmsnorm(out, x, w *gpu.Buffer, role string, last bool) {
	e := b.e
	b.one(kernels.NewRMSNorm(e.scope, kernels.RMSNorm{Out: out, X: x, W: w, Cols: e.cfg.HiddenSize,
		Eps: float32(e.cfg.RMSNormEps), Step: e.a.step, MaxRows: b.m.rows, Last: last, Label: b.layer + role, Role: role}))
}

// linear: l.Out = epilogue(l.X · Wᵀ), by matvec or matmul.
func (b *builder) linear(l kernels.Linear) {
	l.Label, l.Step, l.MaxRows = b.layer+l.Role, b.e.a.step, b.m.rows
	if b.m.matvec() {
		b.add(kernels.MatVec(b.e.scope, l, b.m.rows))
	} else {
		b.add(kernels.MatMul(b.e.scope, l))
	}
}

// normLinear: l.Out = epilogue(RMSNorm(l.X) · norm · Wᵀ). A matvec
// normalises inside the projection (each workgroup sums x² itself, a few
// KiB from cache), which saves a dispatch; the matmul, and matvecs that
// kernels.MatVecFusedNorm does not give the norm, read a normalised copy.
func (b *builder) normLinear(norm *gpu.Buffer, l kernels.Linear) {
	if b.m.matvec() && kernels.MatVecFusedNorm(l.W.DType, l.W.Cols, b.m.rows) {
		l.Norm, l.Eps = norm, float32(b.e.cfg.RMSNormEps)
		l.Role = "norm+" + l.Role
	} else {
		b.rmsnorm(b.e.a.normed, l.X, norm, "norm", false)
		l.X = b.e.a.normed
	}
	b.linear(l)
}

// normQKVRope: input_layernorm, the q/k/v projections, the head norms and
// RoPE, writing q and the cache rows. A one-token decode step does it all
// in one dispatch per layer (the norm inside too where the device allows
// a ninth storage buffer); other steps, and block-quantized weights
// (which the fused kernel does not decode), project with a matvec or
// matmul first.
func (b *builder) normQKVRope(l *layer) {
	e, a := b.e, &b.e.a
	args := kernels.QKVNormRope{Shape: e.shape, X: a.x, W: l.qkv, QKV: a.qkv, QNorm: l.qNorm, KNorm: l.kNorm,
		Rope: e.rope, Q: a.q, Cache: l.cache, Step: a.step, MaxRows: b.m.rows, Eps: float32(e.cfg.RMSNormEps),
		Label: b.layer + "qkv_norm_rope", Role: "qkv_norm_rope"}
	// QWGPU_TUNE=qkv_fused=false measures the unfused path for one token
	// too (run 8: 1% slower on the 0.6B shape, so fused by default).
	fused := b.m.rows == 1 && !b.m.prefill && l.qkv.DType != 0 && !l.qkv.DType.IsQuantized() && kernels.FusedQKVDecode
	switch {
	case fused && e.dev.Limits().MaxStorageBuffersPerShaderStage >= 9:
		args.XNorm, args.Role = l.attnNorm, "norm+qkv_norm_rope"
		b.one(kernels.QKVDecode(e.scope, args))
	case fused:
		b.rmsnorm(a.normed, a.x, l.attnNorm, "input_layernorm", false)
		args.X = a.normed
		b.one(kernels.QKVDecode(e.scope, args))
	default:
		b.normLinear(l.attnNorm, kernels.Linear{Out: a.qkv, X: a.x, W: l.qkv, Epi: kernels.Store, Role: "qkv_proj"})
		b.one(kernels.QKVRows(e.scope, args))
	}
}

// attention: decode attention (each row against its own slot) or prefill
// attention (a chunk of one sequence, causal).
func (b *builder) attention(l *layer) {
	e, a := b.e, &b.e.a
	args := kernels.Attention{Shape: e.shape, Q: a.q, Cache: l.cache, Out: a.attn, Step: a.step,
		MaxRows: b.m.rows, Scratch: a.scratch, Label: b.layer + "attention"}
	if b.m.prefill {
		args.Scratch = nil
		b.one(kernels.AttentionPrefill(e.scope, args))
	} else {
		b.add(kernels.AttentionDecode(e.scope, args))
	}
}

// head: the final norm, the LM head and the argmax, for every row of a
// decode step or for the last token of a prefill chunk (its logits in row
// 0). The norm stays a dispatch of its own: fused into the LM head's
// matvec, each of its ~19,000 workgroups would sum x² again (run 8).
func (b *builder) head() {
	e, a := b.e, &b.e.a
	rows := b.m.rows
	if b.m.prefill {
		rows = 1
	}
	b.rmsnorm(a.normed, a.x, e.finalNorm, "final_norm", b.m.prefill)
	lm := kernels.Linear{Out: a.logits, X: a.normed, W: e.lmHead, Epi: kernels.Store, Role: "lm_head",
		Label: "lm_head", Step: a.step, MaxRows: rows}
	if rows <= kernels.MaxMatVecBatch {
		b.add(kernels.MatVec(e.scope, lm, rows))
	} else {
		b.add(kernels.MatMul(e.scope, lm))
	}
	b.add(kernels.NewArgmax(e.scope, kernels.Argmax{Out: a.next, X: a.logits, N: e.cfg.VocabSize, Rows: rows, Label: "argmax"}))
}
