package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/llm"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/weights"
)

// run and chat go through package llm (its loader, scheduler, sampling and
// output): the CLI is one of its users, like serve. bench and validate
// drive the engine directly: they measure and check the engine itself.

// defaultPrompt is what `qwgpu run` says when given no prompt.
const defaultPrompt = "Write a haiku about graphics cards."

// builtinMaxTokens bounds the built-in model's output: its text is noise.
const builtinMaxTokens = 48

func cmdRun(args []string) error {
	fs := newFlags("run")
	var mf modelFlags
	mf.register(fs, "model directory (config.json, *.safetensors, tokenizer.json), GGUF file or Hugging Face repo id; default: a built-in tiny random model")
	prompt := fs.StringP("prompt", "p", "", "the user message (or, with --raw, the text to continue); also accepted as the arguments after the flags")
	promptFile := fs.StringP("file", "f", "", "read the prompt from a UTF-8 file ('-' for stdin)")
	fs.StringVar(promptFile, "prompt-file", "", "same as --file")
	interactive := fs.Bool("chat", false, "interactive multi-turn chat on stdin; the KV cache is kept between turns (/help lists its commands)")
	system := fs.String("system", "", "system prompt")
	noThink := fs.Bool("no-think", false, "disable Qwen3's thinking (the template's empty <think> block)")
	hideThink := fs.Bool("hide-think", false, "do not print the <think> block (it is dimmed on a terminal otherwise)")
	raw := fs.Bool("raw", false, "feed the prompt as plain text, without the chat template")
	maxTokens := fs.IntP("max-tokens", "n", 0, "stop after this many generated tokens (0: until an end token or the context is full)")
	stops := fs.StringArray("stop", nil, "stop when the output contains this string (repeatable)")
	var sp samplingFlags
	sp.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		if fs.Changed("prompt") {
			return fmt.Errorf("unexpected argument %q: the prompt was given with --prompt", fs.Arg(0))
		}
		*prompt = strings.Join(fs.Args(), " ")
	}
	n := 0
	for _, set := range []bool{fs.Changed("prompt") || fs.NArg() > 0, *promptFile != "", *interactive} {
		if set {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("give one of --prompt (or a prompt argument), --file and --chat")
	}
	if *maxTokens < 0 {
		return fmt.Errorf("--max-tokens must be >= 0, got %d", *maxTokens)
	}
	if err := mf.check(fs); err != nil {
		return err
	}
	text := *prompt
	if *promptFile != "" {
		var err error
		if text, err = readPromptFile(*promptFile); err != nil {
			return err
		}
	}

	// Ctrl-C stops the load, and in one-shot mode the reply; the chat
	// watches for it itself.
	ctx := context.Background()
	if !*interactive {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt)
		defer stop()
	}
	var gen llm.GenOptions
	var msgs []llm.Message
	var promptTokens int
	opt, ui, err := llmOptions(&mf, fs)
	if err != nil {
		return err
	}
	// What needs only the model's files is checked before the GPU opens:
	// the sampling flags against its defaults, and whether the prompt fits.
	opt.BeforeDevice = func(p llm.Plan) error {
		ui.plan(p)
		params, err := sp.params(fs, p.Sampling)
		if err != nil {
			return err
		}
		gen = sp.genOptions(params, *maxTokens, *stops, !*noThink, *raw)
		if p.BuiltIn {
			if !fs.Changed("max-tokens") {
				gen.MaxTokens = builtinMaxTokens
			}
			if n == 0 {
				text = defaultPrompt
			}
		} else if n == 0 {
			return fmt.Errorf("give a prompt (--prompt TEXT, or as an argument), --file or --chat")
		}
		if *interactive {
			return nil
		}
		input := text
		if !*raw {
			if *system != "" {
				msgs = append(msgs, llm.Message{Role: "system", Content: *system})
			}
			msgs = append(msgs, llm.Message{Role: "user", Content: text})
			if input, err = llm.FormatChat(msgs, gen); err != nil {
				return err
			}
		}
		promptTokens = len(p.Tokenizer.Encode(input))
		if promptTokens == 0 {
			return fmt.Errorf("the prompt is empty")
		}
		if promptTokens >= p.Ctx {
			return fmt.Errorf("the prompt is %d tokens, which leaves no room to generate in --ctx %d (raise --ctx, up to max_position_embeddings %d)",
				promptTokens, p.Ctx, p.Config.MaxPositionEmbeddings)
		}
		return nil
	}
	m, err := openLLM(ctx, &mf, fs, opt, ui)
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	defer m.Close()
	info := m.Info()
	if info.BuiltIn {
		// Said once everything has loaded, so that an error stays one line.
		fmt.Fprintln(os.Stderr, "qwgpu: no --model given: running the built-in tiny Qwen3 with random weights and the real Qwen3 tokenizer; the text is meaningless, the pipeline is real")
	}
	if !info.Qwen3Template && !*raw {
		// Templates are not interpreted: say so when the file's is another.
		fmt.Fprintf(os.Stderr, "qwgpu: %s's chat template is not Qwen3's; the chat is formatted as Qwen3's\n", info.Name)
	}
	fmt.Fprintf(os.Stderr, "qwgpu: %s on %s, weights %s %s, loaded in %.2f s, ctx %d, about %.2f GiB of GPU memory in all\n",
		info.Name, info.Adapter, info.DType, weights.HumanBytes(info.WeightBytes), info.LoadTime.Seconds(), info.Ctx, gib(info.Footprint.Device()))

	out := newOutput(os.Stdout)
	show := newReplyPrinter(out.write, isTerminal(os.Stdout) && !*raw, *hideThink && !*raw)
	if *interactive {
		s := newChatSession(m, gen, info.Adapter, info.Ctx, *system)
		s.out, s.show = out, show
		return s.run(os.Stdin, isTerminal(os.Stdin))
	}
	generateFn := func(ctx context.Context, g llm.GenOptions, onToken func(llm.Token) error) (*llm.Result, error) {
		if *raw {
			return m.Generate(ctx, text, g, onToken)
		}
		return m.Chat(ctx, msgs, g, onToken)
	}
	return generateOnce(ctx, generateFn, gen, out, show, info.Adapter)
}

// loadUI shows a load on stderr: the progress bar (on a terminal),
// relabelled once the model's name is known, and the quantization counter.
type loadUI struct {
	bar   *progress
	dtype weights.DType // the quantized type --dtype asks for; 0 for none
	quant *quantProgress
}

// plan is called with llm's plan, before the device opens.
func (u *loadUI) plan(p llm.Plan) {
	u.bar.label = "loading " + p.Name
	if u.dtype != 0 {
		u.quant = newQuantProgress(p.Config, u.dtype)
	}
}

// llmOptions are the llm.Options the model flags give. A caller that sets
// its own BeforeDevice calls the loadUI's plan in it first.
func llmOptions(mf *modelFlags, fs *pflag.FlagSet) (llm.Options, *loadUI, error) {
	budget, err := gpuMemoryFlag(mf)
	if err != nil {
		return llm.Options{}, nil, err
	}
	ui := &loadUI{bar: newProgress("loading")}
	opt := llm.Options{Backend: mf.backend, Adapter: mf.adapter, DType: strings.ToLower(mf.dtype), KVDType: strings.ToLower(mf.kvDType), GPUMemory: budget,
		Progress: ui.bar.update, BeforeDevice: func(p llm.Plan) error { ui.plan(p); return nil }}
	if fs.Changed("ctx") {
		opt.Ctx = mf.ctx
	}
	if dt, ok := llm.QuantDTypes[opt.DType]; ok {
		ui.dtype = dt
		opt.QuantizeProgress = func(name string, got weights.DType) { ui.quant.update(name, got) }
	}
	return opt, ui, nil
}

// openLLM opens the model --model names with opt, naming the flag at
// fault in an error about an option.
func openLLM(ctx context.Context, mf *modelFlags, fs *pflag.FlagSet, opt llm.Options, ui *loadUI) (*llm.Model, error) {
	m, err := llm.Open(ctx, mf.model, opt)
	ui.bar.done()
	if err == nil {
		return m, nil
	}
	var oe *engine.OptionError
	switch {
	case errors.As(err, &oe) && oe.Option == "Ctx":
		return nil, fmt.Errorf("--ctx %d: %w", mf.ctx, oe)
	case errors.As(err, &oe) && oe.Option == "DType":
		return nil, fmt.Errorf("--dtype %q: %w", mf.dtype, oe)
	case errors.As(err, &oe) && oe.Option == "KVDType":
		return nil, fmt.Errorf("--kv-dtype %s: %w", mf.kvDType, oe)
	case strings.Contains(err.Error(), "above the model's max_position_embeddings") && fs.Changed("ctx"):
		return nil, fmt.Errorf("--ctx %d: %w", mf.ctx, err)
	case strings.HasPrefix(err.Error(), "model"):
		// llm's "model PATH: ..." is about what --model names.
		return nil, fmt.Errorf("--%w", err)
	}
	return nil, flagMemoryError(deviceFlagError(err, mf), mf)
}

// generateFunc runs one generation (llm.Model's Generate or Chat).
type generateFunc func(ctx context.Context, opt llm.GenOptions, onToken func(llm.Token) error) (*llm.Result, error)

// generateOnce runs one generation with ctx's end (Ctrl-C) stopping it:
// the text so far, a newline and the stats line are still written, and
// the command exits 130. A failing stdout stops it too, as an error.
func generateOnce(ctx context.Context, generate generateFunc, opt llm.GenOptions, out *output, show *replyPrinter, adapter string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out.cancel = cancel
	note := newPrefillProgress()
	opt.OnPrefill = note.update
	res, err := generate(ctx, opt, show.token)
	note.stop()
	show.flush()
	out.write("\n")
	if out.err != nil {
		return out.failed()
	}
	if res == nil || (err != nil && res.FinishReason != "cancelled") {
		return err
	}
	printStats(os.Stderr, res, opt, adapter)
	if res.FinishReason == "cancelled" {
		return errInterrupted
	}
	return nil
}

// output is stdout with its first write error kept: generation stops on
// it (a closed pipe, a full disk) and the command reports it, rather than
// losing the text without a word.
type output struct {
	w      io.Writer
	err    error
	cancel func()
}

func newOutput(w io.Writer) *output { return &output{w: w} }

func (o *output) write(s string) {
	if o.err != nil || s == "" {
		return
	}
	if _, err := io.WriteString(o.w, s); err != nil {
		o.err = err
		if o.cancel != nil {
			o.cancel()
		}
	}
}

func (o *output) failed() error {
	return fmt.Errorf("writing the output to stdout: %v", stripPathErr(o.err))
}

func stripPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Stop reasons of the stats line.
const (
	stopEOS         = "eos"
	stopString      = "stop string"
	stopMaxTokens   = "max tokens"
	stopContext     = "context full"
	stopInterrupted = "interrupted"
)

// stopReason says in the stats line's words why a generation ended.
func stopReason(res *llm.Result, maxTokens int) string {
	switch res.FinishReason {
	case "cancelled":
		return stopInterrupted
	case "stop", "tool_calls":
		if res.StopString != "" {
			return stopString
		}
		return stopEOS
	case "length":
		if maxTokens > 0 && res.CompletionTokens >= maxTokens {
			return stopMaxTokens
		}
		return stopContext
	}
	return res.FinishReason
}

// printStats writes the stats line; the seed is there whenever sampling
// used it, so that a run can be repeated with --seed. The prefill counts
// the prompt tokens computed (a chat's earlier turns are in the cache).
func printStats(w io.Writer, res *llm.Result, opt llm.GenOptions, adapter string) {
	seed := ""
	if opt.Temperature == nil || *opt.Temperature > 0 {
		seed = fmt.Sprintf(" | seed %d", res.Seed)
	}
	reason := stopReason(res, opt.MaxTokens)
	prefilled := res.PromptTokens - res.CachedTokens
	steps := res.CompletionTokens - 1 // the first token comes from the prefill
	if reason == stopEOS || reason == stopString {
		steps++ // the step that produced the end counts too
	}
	rate := func(n int, secs float64) float64 {
		if n <= 0 || secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	fmt.Fprintf(w, "qwgpu: prefill %d tokens in %.3f s (%.1f tok/s) | decode %d tokens in %.3f s (%.1f tok/s) | stop: %s%s | %s\n",
		prefilled, res.PrefillTime.Seconds(), rate(prefilled, res.PrefillTime.Seconds()),
		res.CompletionTokens, res.DecodeTime.Seconds(), rate(steps, res.DecodeTime.Seconds()), reason, seed, adapter)
	if reason == stopContext {
		fmt.Fprintln(w, "qwgpu: the context is full; the output so far is kept (raise --ctx for longer runs)")
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// readPromptFile reads a prompt file ("-" for stdin), which must be UTF-8.
func readPromptFile(path string) (string, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, weights.MaxPromptBytes+1))
		if err == nil && len(data) > weights.MaxPromptBytes {
			err = fmt.Errorf("stdin: more than %s", weights.HumanBytes(weights.MaxPromptBytes))
		}
	} else {
		data, err = weights.ReadFileLimited(path, weights.MaxPromptBytes)
	}
	if err != nil {
		return "", fmt.Errorf("--prompt-file: %v", err)
	}
	if !utf8.Valid(data) {
		off := 0
		for off < len(data) {
			r, size := utf8.DecodeRune(data[off:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			off += size
		}
		return "", fmt.Errorf("--prompt-file %s: not valid UTF-8 (first bad byte at offset %d)", path, off)
	}
	return string(data), nil
}

// samplingFlags are the sampling options; unset ones come from the
// model's generation_config.json.
type samplingFlags struct {
	temperature, topP, minP, repeat, presence float64
	topK                                      int
	seed                                      uint64
	greedy                                    bool
}

func (s *samplingFlags) register(fs *pflag.FlagSet) {
	fs.Float64Var(&s.temperature, "temperature", 0, "sampling temperature; 0 is greedy (default: generation_config.json)")
	fs.Float64Var(&s.temperature, "temp", 0, "same as --temperature")
	fs.IntVar(&s.topK, "top-k", 0, "keep the k most likely tokens, 0 = off (default: generation_config.json)")
	fs.Float64Var(&s.topP, "top-p", 1, "nucleus sampling threshold in (0, 1] (default: generation_config.json)")
	fs.Float64Var(&s.minP, "min-p", 0, "drop tokens below min-p × the top probability (default: generation_config.json)")
	fs.Float64Var(&s.repeat, "repeat-penalty", 1, "repetition penalty, 1 = off")
	// The name generation_config.json uses, which package sample's error
	// messages give.
	fs.Float64Var(&s.repeat, "repetition-penalty", 1, "same as --repeat-penalty")
	fs.Float64Var(&s.presence, "presence-penalty", 0, "presence penalty on the tokens generated so far, 0 = off")
	fs.Uint64VarP(&s.seed, "seed", "s", 0, "random seed for sampling (default: a random one, printed in the stats line)")
	fs.BoolVar(&s.greedy, "greedy", false, "greedy decoding (same as --temperature 0)")
}

// params merges the flags over the model's defaults and validates them.
func (s *samplingFlags) params(fs *pflag.FlagSet, defaults sample.Params) (sample.Params, error) {
	p := defaults
	if fs.Changed("temperature") || fs.Changed("temp") {
		p.Temperature = s.temperature
	}
	if fs.Changed("top-k") {
		p.TopK = s.topK
	}
	if fs.Changed("top-p") {
		p.TopP = s.topP
	}
	if fs.Changed("min-p") {
		p.MinP = s.minP
	}
	if fs.Changed("repeat-penalty") || fs.Changed("repetition-penalty") {
		p.RepetitionPenalty = s.repeat
	}
	if fs.Changed("presence-penalty") {
		p.PresencePenalty = s.presence
	}
	if s.greedy {
		p.Temperature = 0
	}
	p.Seed = s.seed
	if !fs.Changed("seed") {
		p.Seed = rand.Uint64()
	}
	return p, p.Validate()
}

// genOptions is one generation's llm options: the sampling parameters
// given explicitly (the model's defaults are already merged in).
func (s *samplingFlags) genOptions(p sample.Params, maxTokens int, stops []string, think, raw bool) llm.GenOptions {
	return llm.GenOptions{MaxTokens: maxTokens, Stop: stops, Raw: raw, Thinking: &think,
		Temperature: &p.Temperature, TopP: &p.TopP, MinP: &p.MinP, TopK: &p.TopK, Seed: &p.Seed,
		RepeatPenalty: p.RepetitionPenalty, PresencePenalty: p.PresencePenalty}
}
