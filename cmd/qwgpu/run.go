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

	"github.com/qwgpu/qwgpu/qwen3/chat"
	"github.com/qwgpu/qwgpu/qwen3/generate"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/weights"
)

// defaultPrompt is what `qwgpu run` says when given no prompt.
const defaultPrompt = "Write a haiku about graphics cards."

// builtinMaxTokens bounds the built-in model's output: its text is noise.
const builtinMaxTokens = 48

func cmdRun(args []string) error {
	fs := newFlags("run")
	var mf modelFlags
	mf.register(fs, "model directory (config.json, *.safetensors, tokenizer.json); default: a built-in tiny random model")
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

	m, err := openModel(mf.model, true)
	if err != nil {
		return err
	}
	defer m.close()
	if err := m.prepareWeights(&mf); err != nil {
		return err
	}
	params, err := sp.params(fs, m.gen)
	if err != nil {
		return err
	}
	if m.builtin {
		if !fs.Changed("max-tokens") {
			*maxTokens = builtinMaxTokens
		}
		if n == 0 {
			text = defaultPrompt
		}
	} else if n == 0 {
		return fmt.Errorf("give a prompt (--prompt TEXT, or as an argument), --file or --chat")
	}
	if err := mf.fit(fs, m.cfg); err != nil {
		return err
	}
	// The prompt is encoded before the GPU is opened, so that one that
	// cannot fit is refused at once.
	var ids []int
	if !*interactive {
		input := text
		if !*raw {
			var msgs []chat.Message
			if *system != "" {
				msgs = append(msgs, chat.Message{Role: "system", Content: *system})
			}
			msgs = append(msgs, chat.Message{Role: "user", Content: text})
			input = chat.Render(msgs, chat.Options{AddGenerationPrompt: true, EnableThinking: !*noThink})
		}
		ids = m.tok.Encode(input)
		if len(ids) == 0 {
			return fmt.Errorf("the prompt is empty")
		}
		if len(ids) >= mf.ctx {
			return fmt.Errorf("the prompt is %d tokens, which leaves no room to generate in --ctx %d (raise --ctx, up to max_position_embeddings %d)",
				len(ids), mf.ctx, m.cfg.MaxPositionEmbeddings)
		}
	}

	dev, err := openDevice(&mf, false)
	if err != nil {
		return err
	}
	defer dev.Close()
	e, loadTime, err := loadEngine(dev, m, &mf, 0)
	if err != nil {
		return err
	}
	defer e.Close()
	if m.builtin {
		// Said once everything has loaded, so that an error stays one line.
		fmt.Fprintln(os.Stderr, "qwgpu: no --model given: running the built-in tiny Qwen3 with random weights and the real Qwen3 tokenizer; the text is meaningless, the pipeline is real")
	}
	if m.gguf != nil && !*raw && !chat.IsQwen3Template(m.gguf.ChatTemplate) {
		// Templates are not interpreted: say so when the file's is another.
		fmt.Fprintf(os.Stderr, "qwgpu: %s's chat template is not Qwen3's; the chat is formatted as Qwen3's\n", m.name())
	}
	need := estimateFootprint(m, &mf, 0).device()
	fmt.Fprintf(os.Stderr, "qwgpu: %s on %s, weights %s %s, loaded in %.2f s, ctx %d, about %.2f GiB of GPU memory in all\n",
		m.name(), describeAdapter(dev), e.WeightDType(), weights.HumanBytes(e.WeightBytes()), loadTime.Seconds(), e.Context(), gib(need))

	out := newOutput(os.Stdout)
	opt := generate.Options{Sampling: params, MaxTokens: *maxTokens, Stop: *stops, EOS: m.eos()}
	show := newThinkFilter(out.write, isTerminal(os.Stdout) && !*raw, *hideThink && !*raw)
	if *interactive {
		s := newChatSession(e, m.tok, opt, describeAdapter(dev), *system, !*noThink)
		s.out, s.show = out, show
		return s.run(os.Stdin, isTerminal(os.Stdin))
	}
	return generateOnce(e, m, ids, opt, out, show, describeAdapter(dev))
}

// generateOnce runs one generation with Ctrl-C stopping it: the text so
// far, a newline and the stats line are still written, and the command
// exits 130. A failing stdout stops it too, as an error.
func generateOnce(b generate.Backend, m *model, ids []int, opt generate.Options, out *output, show *thinkFilter, adapter string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out.cancel = cancel
	opt.Context, opt.OnText = ctx, show.write
	opt.OnPrefilled = startPrefillNote(len(ids))
	res, err := generate.Generate(b, m.tok, ids, nil, opt)
	opt.OnPrefilled()
	show.flush()
	out.write("\n")
	if out.err != nil {
		return out.failed()
	}
	if err != nil {
		return err
	}
	printStats(os.Stderr, res, opt.Sampling, adapter)
	if res.StopReason == generate.StopInterrupted {
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

// printStats writes the stats line to stderr; the seed is there whenever
// sampling used it, so that a run can be repeated with --seed.
func printStats(w io.Writer, res *generate.Result, p sample.Params, adapter string) {
	seed := ""
	if !p.Greedy() {
		seed = fmt.Sprintf(" | seed %d", p.Seed)
	}
	fmt.Fprintf(w, "qwgpu: prefill %d tokens in %.3f s (%.1f tok/s) | decode %d tokens in %.3f s (%.1f tok/s) | stop: %s%s | %s\n",
		res.PromptTokens, res.PrefillTime.Seconds(), res.PrefillTokensPerSecond(),
		len(res.Tokens), res.DecodeTime.Seconds(), res.DecodeTokensPerSecond(), res.StopReason, seed, adapter)
	if res.StopReason == generate.StopContext {
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
	fs.Float64Var(&s.presence, "presence-penalty", 0, "presence penalty, 0 = off")
	fs.Uint64VarP(&s.seed, "seed", "s", 0, "random seed for sampling (default: a random one, printed in the stats line)")
	fs.BoolVar(&s.greedy, "greedy", false, "greedy decoding (same as --temperature 0)")
}

// params merges the flags over the model's defaults and validates them.
func (s *samplingFlags) params(fs *pflag.FlagSet, gen sample.GenerationConfig) (sample.Params, error) {
	p := gen.Defaults()
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
