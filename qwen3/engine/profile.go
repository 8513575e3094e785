package engine

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/gpu/kernels"
)

// KernelTime is the GPU time one role of a step takes.
type KernelTime struct {
	Role       string  `json:"role"`       // "o_proj", "attention", "lm_head", ...
	Dispatches int     `json:"dispatches"` // per step (summed over the layers)
	Nanos      float64 `json:"ns"`         // summed over the layers
}

// DecodeOps is the number of dispatches of a one-token decode step whose
// attention needs the combine pass (contexts longer than one chunk).
func (e *Engine) DecodeOps() int {
	g, err := e.decodeGraph(1)
	if err != nil {
		return 0
	}
	return g.ops()
}

// ProfileDecode runs one greedy decode step of token on a device opened
// with profiling (one pass per dispatch, timestamps between them) and
// returns the GPU time per role, largest first. The pass splitting adds
// its own cost to the wall time, not to these timestamps.
func (e *Engine) ProfileDecode(token int) ([]KernelTime, error) {
	return e.profile(func() error { return e.feedID(0, []int{token}) })
}

// ProfileDecodeBatch runs one batched decode step (one token to each of
// slots, reading back each row's argmax) on a device opened with profiling and returns
// the GPU time per role, largest first.
func (e *Engine) ProfileDecodeBatch(slots, tokens []int) ([]KernelTime, error) {
	return e.profile(func() error {
		rows, err := e.DecodeRead(slots, tokens, slices.Repeat([]Want{WantID}, len(slots)), 0)
		for i := 0; err == nil && i < len(rows); i++ {
			err = rows[i].Err
		}
		return err
	})
}

// ProfilePrefill feeds tokens from an empty cache on a profiling device
// and returns the GPU time of the prefill per role, largest first.
func (e *Engine) ProfilePrefill(tokens []int) ([]KernelTime, error) {
	e.Reset()
	return e.profile(func() error { return e.feedID(0, tokens) })
}

// feedID feeds tokens to a slot and reads back only the argmax, as greedy
// decoding does.
func (e *Engine) feedID(slot int, tokens []int) error {
	row, err := e.FeedRead(slot, tokens, WantID, 0)
	if err == nil {
		err = row.Err
	}
	return err
}

func (e *Engine) profile(run func() error) ([]KernelTime, error) {
	if !e.dev.Profiling() {
		return nil, fmt.Errorf("the device was not opened for profiling")
	}
	e.timings = nil
	if err := run(); err != nil {
		return nil, err
	}
	return groupTimings(e.timings), nil
}

// groupTimings sums timings by role, largest total first.
func groupTimings(timings []gpu.OpTiming) []KernelTime {
	by := map[string]*KernelTime{}
	var order []string
	for _, t := range timings {
		k := by[t.Role]
		if k == nil {
			k = &KernelTime{Role: t.Role}
			by[t.Role] = k
			order = append(order, t.Role)
		}
		k.Dispatches++
		k.Nanos += t.Nanos
	}
	out := make([]KernelTime, 0, len(order))
	for _, r := range order {
		out = append(out, *by[r])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Nanos > out[j].Nanos })
	return out
}

// DecodePassTime measures the GPU side of a decode step alone: steps
// copies of the whole step (at slot 0's current position, without
// advancing it) recorded into one pass and submitted once, so that
// neither the submit round trip nor the host's recording between steps is
// counted. Compared with the wall time per token of real decoding it
// shows how much the host and the synchronisation cost.
func (e *Engine) DecodePassTime(steps int) (time.Duration, error) {
	if e.pos[0] >= e.ctx {
		return 0, fmt.Errorf("the context is full")
	}
	g, err := e.decodeGraph(1)
	if err != nil {
		return 0, err
	}
	return e.passTime([]kernels.StepRow{{Slot: 0, Pos: e.pos[0]}}, steps, func(r *gpu.Recorder) { g.record(r, false) })
}

// passTime is the time one copy of what record records adds to a pass of
// the step rows: copies recorded into one pass and submitted once (after
// a first pass that makes the pipelines and warms the caches), steps + 2
// copies against 2, so that the submit and the wait cancel out.
func (e *Engine) passTime(rows []kernels.StepRow, steps int, record func(*gpu.Recorder)) (time.Duration, error) {
	run := func(n int) (time.Duration, error) {
		r, err := e.begin(rows, make([]int, len(rows)))
		if err != nil {
			return 0, err
		}
		for range n {
			record(r)
		}
		start := time.Now()
		err = r.Submit()
		return time.Since(start), err
	}
	if _, err := run(1); err != nil {
		return 0, err
	}
	short, err := run(2)
	if err != nil {
		return 0, err
	}
	long, err := run(steps + 2)
	if err != nil {
		return 0, err
	}
	return (long - short) / time.Duration(steps), nil
}

// DecodeRoleTimes measures each role of a decode step of slots 0 … rows-1
// (at their current positions) inside one pass: for each role, steps
// copies of that role's dispatches (every layer's, in graph order) are
// recorded into one pass and submitted once, and the time a copy adds is
// the role's time in a step, its dispatch floors included. ProfileDecode's
// timestamps put every dispatch in a pass of its own, which adds a pass's
// cost to each and, at 16 rows, doubled the step (run 16). Nanos is the
// time a step, Dispatches the role's dispatches a step. The roles run on
// whatever the activations hold, so afterwards the activations and the
// cache rows at the slots' positions are undefined: Reset or Truncate
// before decoding on.
func (e *Engine) DecodeRoleTimes(rows, steps int) ([]KernelTime, error) {
	if rows < 1 || rows > len(e.pos) || steps < 1 {
		return nil, fmt.Errorf("role times of %d rows (%d slots), %d steps", rows, len(e.pos), steps)
	}
	stepRows := make([]kernels.StepRow, rows)
	for i := range stepRows {
		if e.pos[i] >= e.ctx {
			return nil, fmt.Errorf("slot %d's context is full", i)
		}
		stepRows[i] = kernels.StepRow{Slot: i, Pos: e.pos[i]}
	}
	g, err := e.decodeGraph(rows)
	if err != nil {
		return nil, err
	}
	byRole := map[string][]*gpu.Op{}
	var order []string
	for _, ops := range append(append([][]*gpu.Op{g.embed}, g.layers...), g.head) {
		for _, o := range ops {
			if byRole[o.Role] == nil {
				order = append(order, o.Role)
			}
			byRole[o.Role] = append(byRole[o.Role], o)
		}
	}
	var out []KernelTime
	for _, role := range order {
		ops := byRole[role]
		d, err := e.passTime(stepRows, steps, func(r *gpu.Recorder) { r.Run(ops...) })
		if err != nil {
			return nil, err
		}
		out = append(out, KernelTime{Role: role, Dispatches: len(ops), Nanos: float64(max(0, d).Nanoseconds())})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Nanos > out[j].Nanos })
	return out, nil
}
