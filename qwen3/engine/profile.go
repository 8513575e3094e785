package engine

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/qwgpu/qwgpu/gpu"
)

// KernelTime is the GPU time one role of the decode step takes per token.
type KernelTime struct {
	Role       string  `json:"role"`       // "o_proj", "attention", "lm_head", ...
	Dispatches int     `json:"dispatches"` // per token
	Nanos      float64 `json:"ns"`         // per token, summed over the layers
}

// DecodeOps is the number of dispatches in one decode step.
func (e *Engine) DecodeOps() int { return len(e.decodeOps) + len(e.headOps) }

// ProfileDecode runs one greedy decode step of token on a device opened
// with profiling (one pass per dispatch, timestamps between them) and
// returns the GPU time per role, largest first. The pass splitting adds
// its own cost to the wall time, not to these timestamps.
func (e *Engine) ProfileDecode(token int) ([]KernelTime, error) {
	if !e.dev.Profiling() {
		return nil, fmt.Errorf("the device was not opened for profiling")
	}
	e.lastTimings = nil
	if _, err := e.FeedArgmax([]int{token}); err != nil {
		return nil, err
	}
	roles := append(append([]string(nil), e.decodeRoles...), e.headRoles...)
	if len(e.lastTimings) != len(roles) {
		return nil, fmt.Errorf("profile: %d timings for %d dispatches", len(e.lastTimings), len(roles))
	}
	return groupTimings(roles, e.lastTimings), nil
}

// groupTimings sums timings by name, largest total first.
func groupTimings(names []string, timings []gpu.OpTiming) []KernelTime {
	by := map[string]*KernelTime{}
	var order []string
	for i, t := range timings {
		k := by[names[i]]
		if k == nil {
			k = &KernelTime{Role: names[i]}
			by[names[i]] = k
			order = append(order, names[i])
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

// ProfilePrefill feeds tokens from an empty cache on a profiling device
// and returns the GPU time of the prefill per kernel, largest first. Ops
// are grouped by their label with the layer number and row range taken
// out ("matmul mlp.gate_up").
func (e *Engine) ProfilePrefill(tokens []int) ([]KernelTime, error) {
	if !e.dev.Profiling() {
		return nil, fmt.Errorf("the device was not opened for profiling")
	}
	e.Reset()
	e.lastPrefillTimings = nil
	if _, err := e.FeedArgmax(tokens); err != nil {
		return nil, err
	}
	names := make([]string, len(e.lastPrefillTimings))
	for i, t := range e.lastPrefillTimings {
		names[i] = strings.TrimSpace(rangeRE.ReplaceAllString(layerRE.ReplaceAllString(t.Label, ""), ""))
	}
	return groupTimings(names, e.lastPrefillTimings), nil
}

var (
	layerRE = regexp.MustCompile(`model\.layers\.\d+\.`)
	rangeRE = regexp.MustCompile(`\[\d+:\d+\]`)
)

// DecodePassTime measures the GPU side of a decode step alone: steps
// copies of the whole step (at the current position, without advancing
// it) recorded into one pass and submitted once, so that neither the
// submit round trip nor the host's recording between steps is counted.
// Compared with the wall time per token of real decoding it shows how
// much the host and the synchronisation cost.
func (e *Engine) DecodePassTime(steps int) (time.Duration, error) {
	if e.pos >= e.ctx {
		return 0, fmt.Errorf("the context is full")
	}
	if err := e.setDecode(e.pos); err != nil {
		return 0, err
	}
	run := func(n int) (time.Duration, error) {
		r := e.dev.NewRecorder()
		for range n {
			e.recordStep(r, false)
		}
		start := time.Now()
		err := r.Submit()
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
