package engine

import (
	"fmt"

	"github.com/qwgpu/qwgpu/gpu"
)

// collector gathers the ops of a list of constructor calls in order and
// keeps the first error. Every op that was made is handed to own, even
// after an error, so that whoever releases the list releases it too.
type collector struct {
	own   func(ops []*gpu.Op)
	ops   []*gpu.Op
	roles []string // what each op computes, for profiles: "o_proj", "attention", ...
	err   error
}

func (c *collector) add(what string, ops []*gpu.Op, err error) {
	if err == nil {
		c.own(ops)
	}
	if c.err != nil {
		return
	}
	if err != nil {
		c.err = fmt.Errorf("%s: %w", what, err)
		return
	}
	c.ops = append(c.ops, ops...)
	for range ops {
		c.roles = append(c.roles, role(what))
	}
}

// ownForLife records ops that live as long as the engine (Close frees them).
func (e *Engine) ownForLife(ops []*gpu.Op) { e.owned = append(e.owned, ops...) }

// role strips the layer number from an op's description.
func role(what string) string {
	var n int
	var rest string
	if _, err := fmt.Sscanf(what, "layer %d %s", &n, &rest); err == nil {
		return rest
	}
	return what
}

func (c *collector) one(what string, op *gpu.Op, err error) {
	c.add(what, []*gpu.Op{op}, err)
}

// prepareDecode builds the dispatches of one decode step:
//
//	x = E[token]
//	per layer: q, K[pos], V[pos] = qkv_norm_rope(n) with n = rmsnorm(x) fused in;
//	           a = attention(q, K, V); x += Wo·a;
//	           h = SiLU(Wg·n)·(Wu·n) with n = rmsnorm(x) fused in; x += Wd·h
//	n = rmsnorm(x); logits = Wlm·n; next = argmax(logits)
func (e *Engine) prepareDecode() error {
	c := e.cfg
	d := e.dev
	eps := float32(c.RMSNormEps)
	col := &collector{own: e.ownForLife}
	ops, err := d.Embedding(e.x, e.embed, e.token, 1)
	col.add("embedding", ops, err)
	e.nEmbed = len(col.ops)
	// The same gather reading the previous step's argmax, so that greedy
	// steps can follow one another without the host in between.
	chained, err := d.Embedding(e.x, e.embed, e.next, 1)
	if err != nil {
		return fmt.Errorf("embedding: %w", err)
	}
	e.ownForLife(chained)
	e.chainedEmbed = chained
	for i := range e.layers {
		l := &e.layers[i]
		name := fmt.Sprintf("layer %d", i)
		qkvArgs := gpu.QKVDecodeArgs{X: e.normed, W: l.wqkv, QNorm: l.qNorm, KNorm: l.kNorm,
			Rope: e.rope, Q: e.q, Cache: l.cache, Eps: c.RMSNormEps}
		role := "qkv_norm_rope"
		if e.dev.Limits().MaxStorageBuffersPerShaderStage >= 9 {
			// input_layernorm inside the qkv dispatch (one binding more than
			// WebGPU guarantees, so only where the device allows it).
			qkvArgs.X, qkvArgs.XNorm = e.x, l.attnNorm
			role = "norm+qkv_norm_rope"
		} else {
			op, err := d.RMSNorm(e.normed, e.x, l.attnNorm, 1, c.HiddenSize, eps)
			col.one(name+" input_layernorm", op, err)
			if col.err != nil {
				return col.err
			}
		}
		l.qkv, err = d.QKVNormRope(e.shape, qkvArgs)
		if err != nil {
			return fmt.Errorf("%s qkv_norm_rope: %w", name, err)
		}
		col.ops = append(col.ops, l.qkv.Op())
		col.roles = append(col.roles, role)
		l.attention, err = d.AttentionDecode(e.shape, gpu.AttentionDecodeArgs{Q: e.q, Cache: l.cache, Out: e.attnOut, Scratch: e.scratch})
		if err != nil {
			return fmt.Errorf("%s attention: %w", name, err)
		}
		col.ops = append(col.ops, l.attention.Ops()...)
		col.roles = append(col.roles, "attention", "attention_combine")
		ops, err = d.MatVecAdd(e.x, e.x, l.wo, e.attnOut)
		col.add(name+" o_proj", ops, err)
		// post_attention_layernorm runs inside the gate/up dispatch.
		ops, err = d.MatVecSwiGLUNorm(e.act, l.gate, l.up, e.x, l.mlpNorm, eps)
		col.add(name+" norm+gate_up", ops, err)
		ops, err = d.MatVecAdd(e.x, e.x, l.wdown, e.act)
		col.add(name+" down_proj", ops, err)
	}
	if col.err != nil {
		return col.err
	}
	e.decodeOps, e.decodeRoles = col.ops, col.roles

	head := &collector{own: e.ownForLife}
	op, err := d.RMSNorm(e.normed, e.x, e.finalNorm, 1, c.HiddenSize, eps)
	head.one("final norm", op, err)
	ops, err = d.MatVec(e.logits, e.lmHead, e.normed)
	head.add("lm_head", ops, err)
	ops, err = d.Argmax(e.next, e.logits, c.VocabSize)
	head.add("argmax", ops, err)
	e.headOps, e.headRoles = head.ops, head.roles
	return head.err
}

// setDecode points the per-step uniforms at position pos.
func (e *Engine) setDecode(pos int) error {
	for i := range e.layers {
		if err := e.layers[i].qkv.SetPos(pos); err != nil {
			return err
		}
		if err := e.layers[i].attention.SetLen(pos + 1); err != nil {
			return err
		}
	}
	return nil
}

// prefill is the prepared pass for a fixed number of tokens. The matmul
// and embedding dispatches are sized at creation, so each token count
// gets its own plan; full chunks of a long prompt share one.
type prefill struct {
	T   int
	ops []*gpu.Op // embedding and every layer
	// bounds[i] is the index in ops where the embedding (i = 0) or layer
	// i-1 ends, so that validation can copy the residual stream there.
	bounds  []int
	qkv     []*gpu.QKVPrefillOp
	attn    []*gpu.AttentionPrefillOp
	release func()
}

// maxPlans bounds the prepared prefill passes kept for reuse.
const maxPlans = 4

func (e *Engine) plan(T int) (*prefill, error) {
	for i, p := range e.plans {
		if p.T == T {
			// Most recently used last.
			e.plans = append(append(e.plans[:i:i], e.plans[i+1:]...), p)
			return p, nil
		}
	}
	p, err := e.newPlan(T)
	if err != nil {
		return nil, err
	}
	if len(e.plans) == maxPlans {
		e.plans[0].release()
		e.plans = e.plans[1:]
	}
	e.plans = append(e.plans, p)
	return p, nil
}

func (e *Engine) newPlan(T int) (*prefill, error) {
	c := e.cfg
	d := e.dev
	eps := float32(c.RMSNormEps)
	p := &prefill{T: T}
	var made []*gpu.Op
	p.release = func() {
		gpu.ReleaseOps(made)
		for _, o := range p.qkv {
			o.Release()
		}
		for _, o := range p.attn {
			o.Release()
		}
	}
	col := &collector{own: func(ops []*gpu.Op) { made = append(made, ops...) }}
	ops, err := d.Embedding(e.px, e.embed, e.pTokens, T)
	col.add("prefill embedding", ops, err)
	for i := range e.layers {
		p.bounds = append(p.bounds, len(col.ops))
		l := &e.layers[i]
		name := fmt.Sprintf("prefill layer %d", i)
		op, err := d.RMSNorm(e.pNormed, e.px, l.attnNorm, T, c.HiddenSize, eps)
		col.one(name+" input_layernorm", op, err)
		ops, err = d.MatMul(e.pQKV, e.pNormed, l.wqkv, T)
		col.add(name+" qkv_proj", ops, err)
		if col.err != nil {
			break
		}
		qo, err := d.QKVNormRopePrefill(e.shape, gpu.QKVPrefillArgs{QKV: e.pQKV, QNorm: l.qNorm, KNorm: l.kNorm,
			Rope: e.rope, Q: e.pQ, Cache: l.cache, MaxT: T, Eps: c.RMSNormEps})
		if err != nil {
			col.err = fmt.Errorf("%s qkv_norm_rope: %w", name, err)
			break
		}
		p.qkv = append(p.qkv, qo)
		col.ops = append(col.ops, qo.Op())
		ao, err := d.AttentionPrefill(e.shape, gpu.AttentionPrefillArgs{Q: e.pQ, Cache: l.cache, Out: e.pAttn, MaxT: T})
		if err != nil {
			col.err = fmt.Errorf("%s attention: %w", name, err)
			break
		}
		p.attn = append(p.attn, ao)
		col.ops = append(col.ops, ao.Op())
		ops, err = d.MatMulAdd(e.px, e.px, e.pAttn, l.wo, T)
		col.add(name+" o_proj", ops, err)
		op, err = d.RMSNorm(e.pNormed, e.px, l.mlpNorm, T, c.HiddenSize, eps)
		col.one(name+" post_attention_layernorm", op, err)
		ops, err = d.MatMulSwiGLU(e.pAct, e.pNormed, l.gate, l.up, T)
		col.add(name+" gate_up", ops, err)
		ops, err = d.MatMulAdd(e.px, e.px, e.pAct, l.wdown, T)
		col.add(name+" down_proj", ops, err)
	}
	p.bounds = append(p.bounds, len(col.ops))
	p.ops = col.ops
	if col.err != nil {
		p.release()
		return nil, col.err
	}
	return p, nil
}

// set points a plan's uniforms at positions pos0 .. pos0+T-1.
func (p *prefill) set(pos0 int) error {
	for i := range p.qkv {
		if err := p.qkv[i].Set(pos0, p.T); err != nil {
			return err
		}
		if err := p.attn[i].Set(pos0, p.T); err != nil {
			return err
		}
	}
	return nil
}

// checkTokens refuses ids outside the vocabulary and a cache overflow.
func (e *Engine) checkTokens(tokens []int) error {
	if len(tokens) == 0 {
		return fmt.Errorf("no tokens to feed")
	}
	if e.pos+len(tokens) > e.ctx {
		return fmt.Errorf("%d tokens after %d in the cache exceed the context of %d (--ctx)", len(tokens), e.pos, e.ctx)
	}
	for _, id := range tokens {
		if id < 0 || id >= e.cfg.VocabSize {
			return fmt.Errorf("token id %d outside the vocabulary [0, %d)", id, e.cfg.VocabSize)
		}
	}
	return nil
}

// run feeds tokens and records the LM head over the last one; read picks
// what to read back from the final recorder.
func (e *Engine) run(tokens []int, read func(r *gpu.Recorder)) error {
	if err := e.checkTokens(tokens); err != nil {
		return err
	}
	if len(tokens) == 1 {
		return e.decodeStep(tokens[0], read)
	}
	for start := 0; start < len(tokens); start += e.chunk {
		part := tokens[start:min(start+e.chunk, len(tokens))]
		last := start+len(part) == len(tokens)
		if err := e.prefillPass(part, last, read); err != nil {
			return err
		}
	}
	return nil
}

// recordStep records one decode step: the embedding of the token in
// e.token, or with chained of the previous step's argmax, then every layer
// and the head.
func (e *Engine) recordStep(r *gpu.Recorder, chained bool) {
	if chained {
		r.Run(e.chainedEmbed...)
		r.Run(e.decodeOps[e.nEmbed:]...)
	} else {
		r.Run(e.decodeOps...)
	}
	r.Run(e.headOps...)
}

func (e *Engine) decodeStep(token int, read func(r *gpu.Recorder)) error {
	if err := e.dev.WriteU32(e.token, 0, []uint32{uint32(token)}); err != nil {
		return err
	}
	if err := e.setDecode(e.pos); err != nil {
		return err
	}
	r := e.dev.NewRecorder()
	e.recordStep(r, false)
	read(r)
	if err := r.Submit(); err != nil {
		return fmt.Errorf("decode step at position %d: %w", e.pos, err)
	}
	if e.dev.Profiling() {
		e.lastTimings = r.Timings()
	}
	e.pos++
	return nil
}

// prefillPass runs one chunk; the last chunk also computes the LM head of
// its final token.
func (e *Engine) prefillPass(tokens []int, last bool, read func(r *gpu.Recorder)) error {
	p, err := e.plan(len(tokens))
	if err != nil {
		return err
	}
	ids := make([]uint32, len(tokens))
	for i, t := range tokens {
		ids[i] = uint32(t)
	}
	if err := e.dev.WriteU32(e.pTokens, 0, ids); err != nil {
		return err
	}
	if err := p.set(e.pos); err != nil {
		return err
	}
	r := e.dev.NewRecorder()
	r.Run(p.ops...)
	if last {
		// The head runs on the decode buffers: copy the last row of the
		// residual stream into x (this ends the compute pass, once per prompt).
		H := uint64(e.cfg.HiddenSize) * 4
		r.Copy(e.x, 0, e.px, uint64(len(tokens)-1)*H, H)
		r.Run(e.headOps...)
		read(r)
	}
	if err := r.Submit(); err != nil {
		return fmt.Errorf("prefill of %d tokens at position %d: %w", len(tokens), e.pos, err)
	}
	if e.dev.Profiling() {
		e.lastPrefillTimings = append(e.lastPrefillTimings, r.Timings()...)
	}
	e.pos += len(tokens)
	return nil
}

// Feed appends tokens to the cache and returns the logits of the last.
func (e *Engine) Feed(tokens []int) ([]float32, error) {
	var rb *gpu.Readback
	err := e.run(tokens, func(r *gpu.Recorder) { rb = r.ReadF32(e.logits, 0, e.cfg.VocabSize) })
	if err != nil {
		return nil, err
	}
	return rb.F32(), nil
}

// FeedArgmax appends tokens and returns the most likely next token,
// computed on the GPU: only its id is read back.
func (e *Engine) FeedArgmax(tokens []int) (int, error) {
	var rb *gpu.Readback
	err := e.run(tokens, func(r *gpu.Recorder) { rb = r.ReadU32(e.next, 0, 1) })
	if err != nil {
		return 0, err
	}
	return int(rb.U32()[0]), nil
}

// DecodeGreedy feeds token at the next position and then keeps feeding
// the model's own most likely token, handing each new token to yield
// until yield returns false or n tokens have been yielded. It is greedy
// decoding with the host off the critical path: each step takes its input
// token from the previous step's argmax on the GPU, and step k+1 is
// submitted before step k's token is read back, so the GPU does not wait
// for the host between tokens. Afterwards the cache holds token and every
// yielded token but the last (which is returned to the caller unfed, like
// any token drawn but not yet fed). One step may be computed past the
// point yield stops at; its cache row is simply overwritten later.
func (e *Engine) DecodeGreedy(token, n int, yield func(int) bool) error {
	if n <= 0 {
		return nil
	}
	if err := e.checkTokens([]int{token}); err != nil {
		return err
	}
	if err := e.dev.WriteU32(e.token, 0, []uint32{uint32(token)}); err != nil {
		return err
	}
	pos := e.pos
	start := func(k int, first bool) (*gpu.Pending, *gpu.Readback, error) {
		if err := e.setDecode(pos + k); err != nil {
			return nil, nil, err
		}
		r := e.dev.NewRecorder()
		e.recordStep(r, !first)
		rb := r.ReadU32(e.next, 0, 1)
		p, err := r.Start()
		if err != nil {
			return nil, nil, fmt.Errorf("decode step at position %d: %w", pos+k, err)
		}
		return p, rb, nil
	}
	pending, rb, err := start(0, true)
	if err != nil {
		return err
	}
	for k := 0; k < n; k++ {
		// Step k+1 feeds the token step k is computing; submit it now.
		var nextPending *gpu.Pending
		var nextRB *gpu.Readback
		if k+1 < n && pos+k+1 < e.ctx {
			if nextPending, nextRB, err = start(k+1, false); err != nil {
				_ = pending.Wait()
				return err
			}
		}
		if err := pending.Wait(); err != nil {
			if nextPending != nil {
				_ = nextPending.Wait()
			}
			return fmt.Errorf("decode step at position %d: %w", pos+k, err)
		}
		e.pos = pos + k + 1
		if !yield(int(rb.U32()[0])) || nextPending == nil {
			if nextPending != nil {
				return nextPending.Wait()
			}
			return nil
		}
		pending, rb = nextPending, nextRB
	}
	return nil
}
