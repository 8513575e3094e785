package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/qwgpu/qwgpu/gpu/kernels"
	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
)

// commit is set at build time: -ldflags "-X main.commit=$(git rev-parse --short HEAD)".
// Without it, the VCS stamp go build records is used.
var commit = ""

// buildCommit is commit, else the stamped revision (with "-dirty" for a
// modified tree), else "unknown".
func buildCommit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	rev = rev[:min(len(rev), 7)]
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// benchResult is one row of the table (and of the JSON).
type benchResult struct {
	Test      string    `json:"test"` // "pp512", "tg128", "tg128@d4096"
	Tokens    int       `json:"tokens"`
	Depth     int       `json:"depth"` // tokens in the cache before the test
	TokPerSec float64   `json:"tokens_per_second"`
	StdDev    float64   `json:"stddev"`
	Samples   []float64 `json:"samples"`
	// Unit "ms": the table shows Millis ± MillisStdDev, a latency (the
	// serving path's time to first token), instead of t/s.
	Unit         string  `json:"unit,omitempty"`
	Millis       float64 `json:"ms,omitempty"`
	MillisStdDev float64 `json:"ms_stddev,omitempty"`
}

type benchReport struct {
	Machine struct {
		Hostname string `json:"hostname"`
		OS       string `json:"os"`
		Arch     string `json:"arch"`
		CPUs     int    `json:"cpus"`
	} `json:"machine"`
	Backend       string        `json:"backend"`
	Adapter       string        `json:"adapter"`
	AdapterType   string        `json:"adapter_type"`
	Driver        string        `json:"driver"`
	Date          string        `json:"date"`
	Commit        string        `json:"commit"`
	Model         string        `json:"model"`
	DType         string        `json:"dtype"`
	SizeBytes     int64         `json:"size_bytes"`
	Params        int64         `json:"params"`
	Reps          int           `json:"reps"`
	Results       []benchResult `json:"results"`
	CopyBandwidth float64       `json:"copy_bandwidth_bytes_per_second,omitempty"`
	ReadBandwidth float64       `json:"read_bandwidth_bytes_per_second,omitempty"`
	// DispatchFloorUS is one near-empty dependent dispatch inside a pass
	// (kernels.DispatchFloor).
	DispatchFloorUS float64           `json:"dispatch_floor_us,omitempty"`
	Profile         *profileReport    `json:"profile,omitempty"`
	Config          map[string]string `json:"config"`
	SoftwareAdapter bool              `json:"software_adapter"`
}

type profileReport struct {
	Position          int     `json:"position"`
	DispatchesPerTok  int     `json:"dispatches_per_token"`
	GPUTimePerTokenUS float64 `json:"gpu_time_per_token_us"`
	BytesPerToken     int64   `json:"bytes_per_token"`
	// EffectiveGBs is BytesPerToken over the one-pass step time (the
	// per-dispatch passes of the profile add their own overhead).
	EffectiveGBs   float64             `json:"effective_gb_per_s"`
	FractionOfCopy float64             `json:"fraction_of_copy_bandwidth"`
	FractionOfRead float64             `json:"fraction_of_read_bandwidth"`
	Kernels        []engine.KernelTime `json:"kernels"`
	// Prefill is the per-kernel GPU time of one prefill of -p tokens.
	PrefillTokens  int                 `json:"prefill_tokens,omitempty"`
	PrefillKernels []engine.KernelTime `json:"prefill_kernels,omitempty"`
	// Batch is the per-kernel GPU time of one decode step of BatchRows
	// sequences together (the largest --parallel), at the same depth.
	BatchRows    int                 `json:"batch_rows,omitempty"`
	BatchKernels []engine.KernelTime `json:"batch_kernels,omitempty"`
	// OnePassStepUS is a decode step's time with many steps in one pass,
	// without per-step submits: the GPU side alone (engine.DecodePassTime).
	OnePassStepUS float64 `json:"one_pass_step_us"`
	// Tune is the --tune setting the profile ran with (the last of the
	// list), empty for the default layouts.
	Tune string `json:"tune,omitempty"`
	// InPass and BatchInPass are each role's time inside one pass
	// (engine.DecodeRoleTimes) in the one-row and the batch step: Nanos a
	// step, without the pass a dispatch that the timestamps above add.
	InPass      []engine.KernelTime `json:"in_pass,omitempty"`
	BatchInPass []engine.KernelTime `json:"batch_in_pass,omitempty"`
}

func cmdBench(args []string) (err error) {
	fs := newFlags("bench")
	var mf modelFlags
	mf.register(fs, "model directory to benchmark (or use --shape)")
	shape := fs.String("shape", "", "benchmark a published Qwen3 shape with seeded random weights: "+strings.Join(qwen3.ShapeNames(), ", "))
	pp := fs.IntP("n-prompt", "p", 512, "prompt tokens of the prefill test (0: skip)")
	tg := fs.IntP("n-gen", "n", 128, "generated tokens of the decode test (0: skip)")
	depth := fs.IntP("depth", "d", 0, "also run the decode test after this many tokens in the cache")
	reps := fs.Int("reps", 5, "repetitions of each test (after one warm-up)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of the table")
	profile := fs.Bool("profile", false, "per-kernel GPU time of a decode step (timestamps), dispatches, GB/s")
	parallel := fs.IntSlice("parallel", nil, "also run the decode test with N sequences decoding together in one step (a list: 2,4,8), greedy and chained on the GPU as the single-sequence test; t/s counts every sequence's tokens")
	tuneList := fs.String("tune", "", "run every test once per kernel layout, a list of QWGPU_TUNE settings separated by ';' (e.g. 'matvec_rows=1;matvec_rows=2'; an empty one is the default), the model loaded once; a setting a kernel refuses is reported, the others run, and the command fails at the end")
	serveClients := fs.IntSlice("serve-clients", nil, "also run the serving path (llm's scheduler, as qwgpu serve without HTTP): N concurrent requests of -n tokens (a list: 1,16), t/s over all of them, then the time to first token of a -p token prompt")
	serveTemp := fs.Float64("serve-temperature", 0, "sampling of the --serve-clients requests: 0 greedy; above 0 with top-k 20 and top-p 0.95 (Qwen3's defaults)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := mf.check(fs); err != nil {
		return err
	}
	if (*shape == "") == (mf.model == "") {
		return fmt.Errorf("give --model DIR or --shape %s", strings.Join(qwen3.ShapeNames(), "|"))
	}
	if *pp < 0 || *tg < 0 || *depth < 0 || *reps < 1 {
		return fmt.Errorf("-p, -n and -d must be >= 0 and --reps >= 1")
	}
	if *pp == 0 && *tg == 0 {
		return fmt.Errorf("nothing to run: -p and -n are both 0")
	}
	slots, err := concurrency("parallel", "sequences", *parallel, *tg)
	if err != nil {
		return err
	}
	if *tuneList != "" {
		// Every setting is checked before the model loads.
		for _, ts := range strings.Split(*tuneList, ";") {
			if err := kernels.SetTune(ts); err != nil {
				return fmt.Errorf("--tune %q: %w", ts, err)
			}
		}
		if err := kernels.SetTune(""); err != nil {
			return err
		}
	}
	clients, err := concurrency("serve-clients", "clients", *serveClients, *tg)
	if err != nil {
		return err
	}
	slots = max(slots, clients)
	if !(*serveTemp >= 0 && *serveTemp <= 2) {
		return fmt.Errorf("--serve-temperature %g: want 0 to 2", *serveTemp)
	}
	mf.slots = slots
	var m *model
	if *shape != "" {
		cfg, ok := qwen3.Shapes[*shape]
		if !ok {
			return fmt.Errorf("--shape %q: want one of %s", *shape, strings.Join(qwen3.ShapeNames(), ", "))
		}
		dt := weights.BF16
		switch mf.dtype {
		case "f32":
			dt = weights.F32
		case "f16":
			dt = weights.F16
		case "auto", "bf16":
		case "q8_0", "q4_0", "q4_k":
			// bf16 random weights, quantized at load as a checkpoint is
		default:
			return fmt.Errorf("--dtype %q: want bf16, f16, f32, q8_0, q4_0 or q4_k", mf.dtype)
		}
		m = &model{cfg: cfg, src: &qwen3.RandomSource{Config: cfg, DType: dt, Seed: builtinSeed}}
		m.dir = "qwen3 " + *shape
		if err := m.prepareWeights(&mf); err != nil {
			return err
		}
	} else {
		var err error
		if m, err = openModel(mf.model, false); err != nil {
			return err
		}
		defer m.close()
		if err := m.prepareWeights(&mf); err != nil {
			return err
		}
	}
	need := max(*pp, *depth+*tg, 1) + 1
	if len(*serveClients) > 0 {
		need = max(need, servePrompt+*tg+1)
	}
	if !fs.Changed("ctx") {
		mf.ctx = max(need, 512)
	}
	if need > mf.ctx {
		return fmt.Errorf("--ctx %d is smaller than the %d positions the tests need", mf.ctx, need)
	}
	if need > m.cfg.MaxPositionEmbeddings {
		return fmt.Errorf("the tests need %d positions, above max_position_embeddings %d", need, m.cfg.MaxPositionEmbeddings)
	}

	dev, err := openDevice(&mf, false)
	if err != nil {
		return err
	}
	defer dev.Close()
	// The pp test runs as one pass; the depth is filled in passes of at
	// least the engine's default chunk (with -p 0 the chunk was one token,
	// and a 32K fill took 32,768 one-token prefill passes: more than the
	// H200's 10-minute call).
	chunk := max(*pp, engine.DefaultChunk)
	e, _, err := loadEngine(dev, m, &mf, chunk)
	if err != nil {
		return err
	}
	defer e.Close()

	info := dev.Info()
	rep := &benchReport{Backend: info.Backend, Adapter: info.Name, AdapterType: info.Type, Driver: info.Driver,
		Date: time.Now().UTC().Format(time.RFC3339), Commit: buildCommit(), Model: m.name(), DType: e.WeightDType(),
		SizeBytes: e.WeightBytes(), Params: m.cfg.NumParams(), Reps: *reps, SoftwareAdapter: info.Type == "cpu",
		Config: map[string]string{"ctx": fmt.Sprint(e.Context()), "prefill_chunk": fmt.Sprint(chunk), "kv_dtype": e.KVDType()}}
	rep.Machine.Hostname, _ = os.Hostname()
	rep.Machine.OS, rep.Machine.Arch, rep.Machine.CPUs = runtime.GOOS, runtime.GOARCH, runtime.NumCPU()
	if rep.SoftwareAdapter && !*asJSON {
		fmt.Fprintln(os.Stderr, "bench: this is a software (CPU) adapter: these numbers say nothing about GPU speed")
	}

	// The table's rows are printed as each test finishes: on a software
	// adapter a whole run takes minutes.
	row := func(benchResult) {}
	if !*asJSON {
		// The test column fits the longest name a --tune setting makes
		// ("tg128 x16 @ d32768 [matvec_rows=4]").
		testWidth := 22
		for _, ts := range strings.Split(*tuneList, ";") {
			testWidth = max(testWidth, len("tg128 x16 @ d32768 []")+len(ts))
		}
		printBenchHeader(testWidth)
		row = func(r benchResult) { printBenchRow(rep, r, testWidth) }
	}
	rng := rand.New(rand.NewPCG(1, 2))
	randomTokens := func(n int) []int {
		ids := make([]int, n)
		for i := range ids {
			ids[i] = rng.IntN(m.cfg.VocabSize)
		}
		return ids
	}
	// With --tune, the tests run once per layout setting, the graphs made
	// again for each (the weights stay loaded); the profile below uses the
	// last setting.
	// benchSetting runs the tests once in layout setting ts ("" the
	// default; with --tune, the graphs made again for it).
	benchSetting := func(ts string) error {
		suffix := ""
		if *tuneList != "" {
			if err := kernels.SetTune(ts); err != nil {
				return fmt.Errorf("--tune %q: %w", ts, err)
			}
			if err := e.Rebuild(); err != nil {
				return fmt.Errorf("--tune %q: %w", ts, err)
			}
			suffix = " [" + ts + "]"
		}
		if *pp > 0 {
			prompt := randomTokens(*pp)
			r, err := measureShown(fmt.Sprintf("pp%d", *pp)+suffix, *reps, *pp, func() (time.Duration, error) {
				e.Reset()
				start := time.Now()
				err := feedGreedy(e, 0, prompt)
				return time.Since(start), err
			})
			if err != nil {
				return fmt.Errorf("pp%d%s: %w", *pp, suffix, err)
			}
			r.Test = fmt.Sprintf("pp%d", *pp) + suffix
			rep.Results = append(rep.Results, r)
			row(r)
		}
		depths := []int{0}
		if *depth > 0 {
			depths = append(depths, *depth)
		}
		if *tg > 0 {
			for _, d := range depths {
				var prefix []int
				if d > 0 {
					prefix = randomTokens(d)
				}
				first := rng.IntN(m.cfg.VocabSize)
				name := fmt.Sprintf("tg%d", *tg)
				if d > 0 {
					name += fmt.Sprintf(" @ d%d", d)
				}
				name += suffix
				// The depth is prefilled once; each run keeps its d positions
				// (Truncate) and decodes over the same later ones, so that a
				// 32K test does not repeat a prefill of tens of seconds a run.
				e.Reset()
				if d > 0 {
					if err := feedGreedy(e, 0, prefix); err != nil {
						return fmt.Errorf("%s: prefill of the depth: %w", name, err)
					}
				}
				r, err := measureShown(name, *reps, *tg, func() (time.Duration, error) {
					if err := e.Truncate(0, d); err != nil {
						return 0, err
					}
					start := time.Now()
					err := decodeGreedy(e, first, *tg)
					return time.Since(start), err
				})
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				r.Test, r.Depth = name, d
				rep.Results = append(rep.Results, r)
				row(r)
			}
		}
		for _, b := range *parallel {
			name := fmt.Sprintf("tg%d x%d", *tg, b) + suffix
			r, err := measureShown(name, *reps, b**tg, func() (time.Duration, error) {
				return decodeBatch(e, b, *tg, rng.IntN(m.cfg.VocabSize))
			})
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			r.Test = name
			rep.Results = append(rep.Results, r)
			row(r)
		}
		return nil
	}
	settings := []string{""}
	if *tuneList != "" {
		settings = strings.Split(*tuneList, ";")
	}
	// A setting whose layout a kernel refuses is reported and the sweep
	// goes on to the next (the graphs are made again for each), so that
	// one bad value does not cost the rest of a GPU lease; the command
	// still fails at the end.
	var refused []string
	for _, ts := range settings {
		err := benchSetting(ts)
		if err == nil {
			continue
		}
		if len(settings) == 1 {
			return err
		}
		fmt.Fprintf(os.Stderr, "qwgpu bench: %v\n", err)
		refused = append(refused, ts)
	}
	if len(refused) > 0 {
		defer func() {
			if err == nil {
				err = fmt.Errorf("--tune: %d of %d settings failed (%s)", len(refused), len(settings), strings.Join(refused, "; "))
			}
		}()
	}
	if len(*serveClients) > 0 {
		tok := m.tok
		if tok == nil {
			if tok, err = tokenizer.Qwen3(); err != nil {
				return err
			}
		}
		rs, err := benchServe(e, tok, m.name(), *serveClients, *tg, *pp, *reps, *serveTemp, rng, row)
		if err != nil {
			return err
		}
		rep.Results = append(rep.Results, rs...)
	}
	if *profile {
		copyBW, readBW, err := kernels.Bandwidth(dev)
		if err != nil {
			return err
		}
		rep.CopyBandwidth, rep.ReadBandwidth = copyBW, readBW
		floor, err := kernels.DispatchFloor(dev)
		if err != nil {
			return err
		}
		rep.DispatchFloorUS = float64(floor.Nanoseconds()) / 1e3
		// The GPU side of a step alone, at the profiled depth.
		e.Reset()
		if *depth > 0 {
			if err := feedGreedy(e, 0, make([]int, *depth)); err != nil {
				return err
			}
		}
		// Copies of the step in one pass: fewer on a CPU adapter, whose
		// times say nothing about a GPU (a tiny profile there took a minute).
		steps := func(n int) int {
			if info.Type == "cpu" {
				return 2
			}
			return n
		}
		onePass, err := e.DecodePassTime(steps(50))
		if err != nil {
			return fmt.Errorf("one-pass decode time: %w", err)
		}
		// Each role's time inside one pass, for the step of one row and of
		// the largest batch (the activations are left undefined: the
		// engine is closed below).
		inPass, err := e.DecodeRoleTimes(1, steps(20))
		if err != nil {
			return fmt.Errorf("role times in one pass: %w", err)
		}
		var batchInPass []engine.KernelTime
		batch := slices.Max(append([]int{0}, *parallel...)) // the profiled batch
		if batch > 1 {
			if batchInPass, err = e.DecodeRoleTimes(batch, steps(10)); err != nil {
				return fmt.Errorf("role times of %d rows in one pass: %w", batch, err)
			}
		}
		// A device opened for profiling splits every dispatch into its own
		// pass; the engine is loaded again on it.
		e.Close()
		dev.Close()
		if rep.Profile, err = profileDecode(m, &mf, chunk, *depth, *pp, batch, copyBW, readBW, onePass); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		rep.Profile.Tune = settings[len(settings)-1]
		rep.Profile.InPass, rep.Profile.BatchInPass = inPass, batchInPass
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBenchFooter(rep)
	return nil
}

// measure runs fn twice to warm up, then reps times; tokens per run over
// each run's time gives the samples. Two warm-ups, because the first
// compiles pipelines with the GPU mostly idle, and on the H100 the run
// after it still came out at 40% of the steady rate (clocks ramping up).
func measure(reps, tokens int, fn func() (time.Duration, error)) (benchResult, error) {
	return measureShown("", reps, tokens, fn)
}

// measureShown is measure with a progress line on a terminal naming test:
// on a software adapter one test can take minutes.
// warmUp is the least time measureShown spends warming up a test.
const warmUp = time.Second

func measureShown(test string, reps, tokens int, fn func() (time.Duration, error)) (benchResult, error) {
	bar := newProgress("bench " + test)
	defer bar.done()
	// Two warm-up runs, and more until a second has passed: a GPU that sat
	// idle while the model loaded (or quantized) needs that long to raise
	// its clocks, and a 26 ms pp512 run measured before then is bimodal
	// (PERFORMANCE.md, run 10).
	start := time.Now()
	for i := 0; i < 2 || time.Since(start) < warmUp; i++ {
		bar.step(fmt.Sprintf("warm-up %d", i+1))
		if _, err := fn(); err != nil {
			return benchResult{}, err
		}
	}
	r := benchResult{Tokens: tokens}
	for i := 0; i < reps; i++ {
		bar.step(fmt.Sprintf("run %d/%d", i+1, reps))
		d, err := fn()
		if err != nil {
			return r, err
		}
		r.Samples = append(r.Samples, float64(tokens)/d.Seconds())
	}
	var sum float64
	for _, s := range r.Samples {
		sum += s
	}
	r.TokPerSec = sum / float64(len(r.Samples))
	if len(r.Samples) > 1 {
		var ss float64
		for _, s := range r.Samples {
			ss += (s - r.TokPerSec) * (s - r.TokPerSec)
		}
		r.StdDev = math.Sqrt(ss / float64(len(r.Samples)-1))
	}
	return r, nil
}

// profileDecode loads the model on a profiling device and times one
// decode step's dispatches at the given cache depth.
func profileDecode(m *model, mf *modelFlags, chunk, depth, pp, batch int, copyBW, readBW float64, onePass time.Duration) (*profileReport, error) {
	dev, err := openDevice(mf, true)
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	e, _, err := loadEngine(dev, m, mf, chunk)
	if err != nil {
		return nil, err
	}
	defer e.Close()
	// A second of work first: the device was idle while the engine loaded
	// again, and its clocks rise only after about that long (run 10 of
	// PERFORMANCE.md); an unwarmed profile timed prefill 5x slower than the
	// bench did (run 12).
	for start := time.Now(); time.Since(start) < warmUp; {
		e.Reset()
		if err := feedGreedy(e, 0, make([]int, max(pp, 64))); err != nil {
			return nil, err
		}
	}
	e.Reset()
	var prefill []engine.KernelTime
	if pp > 0 {
		if prefill, err = e.ProfilePrefill(make([]int, pp)); err != nil {
			return nil, err
		}
		e.Reset()
	}
	if depth > 0 {
		if err := feedGreedy(e, 0, make([]int, depth)); err != nil {
			return nil, err
		}
	}
	// Warm up, then keep the second step's timings.
	if _, err := e.ProfileDecode(1); err != nil {
		return nil, err
	}
	kt, err := e.ProfileDecode(2)
	if err != nil {
		return nil, err
	}
	p := &profileReport{Position: e.Len() - 1, DispatchesPerTok: e.DecodeOps(), Kernels: kt,
		OnePassStepUS: float64(onePass.Nanoseconds()) / 1e3, PrefillTokens: pp, PrefillKernels: prefill}
	if batch > 1 {
		// Every slot at the profiled depth (slot 0 holds it already), then
		// a warm-up step and the step kept.
		slots, tokens := make([]int, batch), make([]int, batch)
		for i := range slots {
			slots[i], tokens[i] = i, 1
			if i > 0 && depth > 0 {
				if err := feedGreedy(e, i, make([]int, depth)); err != nil {
					return nil, err
				}
			}
		}
		if _, err := e.ProfileDecodeBatch(slots, tokens); err != nil {
			return nil, err
		}
		if p.BatchKernels, err = e.ProfileDecodeBatch(slots, tokens); err != nil {
			return nil, err
		}
		p.BatchRows = batch
	}
	for _, k := range kt {
		p.GPUTimePerTokenUS += k.Nanos / 1e3
	}
	c := m.cfg
	kvBytes := 2 * int64(c.NumHiddenLayers) * int64(kernels.KVCacheBytes(1, e.Len(), c.NumKeyValueHeads, c.HeadDim, kernels.KVDTypes[e.KVDType()]))
	// Every matrix is read once per token, except an untied embedding, of
	// which the gather reads one row.
	p.BytesPerToken = e.WeightBytes() - e.UntiedEmbedBytes() + kvBytes
	if p.OnePassStepUS > 0 {
		p.EffectiveGBs = float64(p.BytesPerToken) / (p.OnePassStepUS * 1e-6) / 1e9
		p.FractionOfCopy = p.EffectiveGBs * 1e9 / copyBW
		p.FractionOfRead = p.EffectiveGBs * 1e9 / readBW
	}
	return p, nil
}

func printBenchHeader(testWidth int) {
	fmt.Printf("| %-28s | %10s | %9s | %-7s | %-32s | %-*s | %20s |\n", "model", "size", "params", "backend", "adapter", testWidth, "test", "t/s")
	fmt.Printf("| %s | %s: | %s: | %s | %s | %s | %s: |\n", strings.Repeat("-", 28), strings.Repeat("-", 9), strings.Repeat("-", 8),
		strings.Repeat("-", 7), strings.Repeat("-", 32), strings.Repeat("-", testWidth), strings.Repeat("-", 19))
}

func printBenchRow(r *benchReport, res benchResult, testWidth int) {
	value := fmt.Sprintf("%.2f ± %.2f", res.TokPerSec, res.StdDev)
	if res.Unit == "ms" {
		value = fmt.Sprintf("%.2f ± %.2f ms", res.Millis, res.MillisStdDev)
	}
	name := fmt.Sprintf("%s %s", r.Model, strings.ToUpper(r.DType))
	if kv := r.Config["kv_dtype"]; kv != "" && kv != "f32" {
		name += " kv " + kv
	}
	fmt.Printf("| %-28s | %6.2f GiB | %7.2f M | %-7s | %-32s | %-*s | %20s |\n", name, float64(r.SizeBytes)/(1<<30),
		float64(r.Params)/1e6, r.Backend, truncate(r.Adapter, 32), testWidth, res.Test, value)
}

// sumNanos is the ns of all the roles of times.
func sumNanos(times []engine.KernelTime) float64 {
	var ns float64
	for _, k := range times {
		ns += k.Nanos
	}
	return ns
}

// inPassUS is role's µs a step inside one pass, or "" if not measured.
func inPassUS(times []engine.KernelTime, role string) string {
	for _, k := range times {
		if k.Role == role {
			return fmt.Sprintf("%.1f", k.Nanos/1e3)
		}
	}
	return ""
}

func printBenchFooter(r *benchReport) {
	fmt.Printf("\nbuild: %s, %s, driver %q, %d reps after at least two warm-up runs and one second\n", r.Commit, r.Date, r.Driver, r.Reps)
	if p := r.Profile; p != nil {
		fmt.Printf("\ndecode step profile at position %d: %d dispatches, %.1f µs of GPU time per token (timestamps; the pass split out per dispatch)\n",
			p.Position, p.DispatchesPerTok, p.GPUTimePerTokenUS)
		if p.Tune != "" {
			// Run 16 read a profile made under the last --tune setting as
			// the default layouts' until this line said otherwise.
			fmt.Printf("profiled with the last --tune setting, not the default layouts: [%s]\n", p.Tune)
		}
		fmt.Printf("one decode step with 50 steps in one pass (no per-step submit): %.1f µs\n", p.OnePassStepUS)
		fmt.Printf("dispatch floor (a near-empty dependent dispatch in one pass): %.2f µs; the step's %d ops: at most %.1f µs of floors\n",
			r.DispatchFloorUS, p.DispatchesPerTok, float64(p.DispatchesPerTok)*r.DispatchFloorUS)
		fmt.Printf("bytes per token %.1f MiB in the one-pass step → %.0f GB/s = %.0f%% of the copy bandwidth (read + write) %.0f GB/s, %.0f%% of the read bandwidth %.0f GB/s\n",
			float64(p.BytesPerToken)/(1<<20), p.EffectiveGBs, 100*p.FractionOfCopy, r.CopyBandwidth/1e9, 100*p.FractionOfRead, r.ReadBandwidth/1e9)
		fmt.Printf("| %-26s | %10s | %12s | %12s | %6s | %12s |\n", "kernel (role)", "dispatches", "µs / token", "µs / disp.", "share", "in one pass")
		for _, k := range p.Kernels {
			fmt.Printf("| %-26s | %10d | %12.1f | %12.2f | %5.1f%% | %12s |\n", k.Role, k.Dispatches, k.Nanos/1e3,
				k.Nanos/1e3/float64(k.Dispatches), 100*k.Nanos/1e3/p.GPUTimePerTokenUS, inPassUS(p.InPass, k.Role))
		}
		if len(p.InPass) > 0 {
			fmt.Printf("in one pass, each role alone (repeated, its dispatch floors included): %.1f µs in all against the step's %.1f µs\n",
				sumNanos(p.InPass)/1e3, p.OnePassStepUS)
		}
		if len(p.BatchKernels) > 0 {
			total := sumNanos(p.BatchKernels)
			fmt.Printf("\ndecode step of %d sequences together: %.1f µs of GPU time (%.1f µs a token; one pass per dispatch)\n",
				p.BatchRows, total/1e3, total/1e3/float64(p.BatchRows))
			fmt.Printf("| %-26s | %10s | %12s | %12s | %6s | %12s |\n", "kernel (role)", "dispatches", "µs / step", "µs / disp.", "share", "in one pass")
			for _, k := range p.BatchKernels {
				fmt.Printf("| %-26s | %10d | %12.1f | %12.2f | %5.1f%% | %12s |\n", k.Role, k.Dispatches, k.Nanos/1e3,
					k.Nanos/1e3/float64(k.Dispatches), 100*k.Nanos/total, inPassUS(p.BatchInPass, k.Role))
			}
			if len(p.BatchInPass) > 0 {
				fmt.Printf("in one pass, each role alone: %.1f µs a step in all\n", sumNanos(p.BatchInPass)/1e3)
			}
		}
		if len(p.PrefillKernels) > 0 {
			total := sumNanos(p.PrefillKernels)
			fmt.Printf("\nprefill of %d tokens: %.2f ms of GPU time (one pass per dispatch)\n", p.PrefillTokens, total/1e6)
			fmt.Printf("| %-40s | %10s | %12s | %6s |\n", "kernel", "dispatches", "µs total", "share")
			for _, k := range p.PrefillKernels {
				fmt.Printf("| %-40s | %10d | %12.1f | %5.1f%% |\n", truncate(k.Role, 40), k.Dispatches, k.Nanos/1e3, 100*k.Nanos/total)
			}
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// decodeBatch decodes n tokens in each of b slots together, each sequence
// starting from its own token and continuing greedily as tg's single
// sequence does (decodeChained: the argmax on the GPU feeds the next step,
// submitted before this one is read back), and returns the time of the n
// batched steps. (Before run 16 each step was read back before the next
// was recorded, which put the host's step time on the critical path of
// xN alone; the server's loop, which samples on the host, is what
// --serve-clients measures.)
func decodeBatch(e *engine.Engine, b, n, first int) (time.Duration, error) {
	slots, tokens := make([]int, b), make([]int, b)
	for i := range slots {
		slots[i], tokens[i] = i, (first+i)%e.Config().VocabSize
		if err := e.Truncate(i, 0); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	err := decodeChained(e, slots, tokens, n)
	return time.Since(start), err
}

// concurrency checks a list flag of sequences decoding together (1 to 256
// each, and the decode test to run them in) and returns the largest, or 1.
func concurrency(flag, unit string, ns []int, tg int) (int, error) {
	most := 1
	for _, n := range ns {
		if n < 1 || n > 256 {
			return 0, fmt.Errorf("--%s %d: want 1 to 256 %s", flag, n, unit)
		}
		most = max(most, n)
	}
	if len(ns) > 0 && tg == 0 {
		return 0, fmt.Errorf("--%s needs the decode test (-n > 0)", flag)
	}
	return most, nil
}

// feedGreedy feeds tokens to a slot, reading back only the argmax of the
// last one's logits, as greedy decoding does.
func feedGreedy(e *engine.Engine, slot int, tokens []int) error {
	row, err := e.FeedRead(slot, tokens, engine.WantID, 0)
	if err == nil {
		err = row.Err
	}
	return err
}

// decodeGreedy decodes n tokens in slot 0 from first as `qwgpu run
// --greedy` does (decodeChained).
func decodeGreedy(e *engine.Engine, first, n int) error {
	return decodeChained(e, []int{0}, []int{first}, n)
}

// decodeChained decodes n steps of the given slots, fed first tokens
// first and then greedily: each step is fed the previous step's argmax on
// the GPU and submitted before that step's tokens are read back, so the
// GPU does not wait for the host between steps.
func decodeChained(e *engine.Engine, slots, first []int, n int) error {
	want := slices.Repeat([]engine.Want{engine.WantID}, len(slots))
	p, err := e.DecodeStart(slots, first, want, 0)
	for k := 0; err == nil && k < n; k++ {
		var next *engine.PendingDecode
		if k+1 < n {
			if next, err = e.DecodeStart(slots, nil, want, 0); err != nil {
				_, _ = p.Wait()
				break
			}
		}
		var rows []engine.Row
		if rows, err = p.Wait(); err == nil {
			for _, r := range rows {
				if r.Err != nil {
					err = r.Err
					break
				}
			}
		}
		if err != nil && next != nil {
			_, _ = next.Wait()
		}
		p = next
	}
	return err
}
