package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/qwgpu/qwgpu/qwen3/chat"
	"github.com/qwgpu/qwgpu/qwen3/engine"
	"github.com/qwgpu/qwgpu/qwen3/generate"
	"github.com/qwgpu/qwgpu/qwen3/sample"
)

// defaultPrompt is what `qwgpu run` says when given no prompt.
const defaultPrompt = "Write a haiku about graphics cards."

// builtinMaxTokens bounds the built-in model's output: its text is noise.
const builtinMaxTokens = 48

func cmdRun(args []string) error {
	fs := newFlags("run")
	var mf modelFlags
	mf.register(fs, "model directory (config.json, *.safetensors, tokenizer.json); default: a built-in tiny random model")
	prompt := fs.String("prompt", "", "the user message (or, with --raw, the text to continue)")
	promptFile := fs.String("prompt-file", "", "read the prompt from a UTF-8 file ('-' for stdin)")
	interactive := fs.Bool("chat", false, "interactive multi-turn chat on stdin; the KV cache is kept between turns")
	system := fs.String("system", "", "system prompt")
	noThink := fs.Bool("no-think", false, "disable Qwen3's thinking (the template's empty <think> block)")
	raw := fs.Bool("raw", false, "feed the prompt as plain text, without the chat template")
	maxTokens := fs.Int("max-tokens", 0, "stop after this many generated tokens (0: until an end token or the context is full)")
	stops := fs.StringArray("stop", nil, "stop when the output contains this string (repeatable)")
	var sp samplingFlags
	sp.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (the prompt goes in --prompt)", fs.Arg(0))
	}
	n := 0
	for _, set := range []bool{fs.Changed("prompt"), *promptFile != "", *interactive} {
		if set {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("give one of --prompt, --prompt-file and --chat")
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
	if err := m.prepareWeights(&mf, true); err != nil {
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
		return fmt.Errorf("give --prompt, --prompt-file or --chat")
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
	fmt.Fprintf(os.Stderr, "qwgpu: %s on %s, weights %s %.2f GiB, loaded in %.2f s, ctx %d\n",
		m.name(), describeAdapter(dev), e.WeightDType(), float64(e.WeightBytes())/(1<<30), loadTime.Seconds(), e.Context())

	opt := generate.Options{Sampling: params, MaxTokens: *maxTokens, Stop: *stops, EOS: m.eos(),
		OnText: func(s string) { os.Stdout.WriteString(s) }}
	if *interactive {
		return chatLoop(e, m, opt, *system, !*noThink)
	}
	res, err := generate.Generate(e, m.tok, ids, nil, opt)
	if err != nil {
		return err
	}
	fmt.Println()
	printStats(res, describeAdapter(dev))
	return nil
}

// printStats writes the stats line to stderr.
func printStats(res *generate.Result, adapter string) {
	fmt.Fprintf(os.Stderr, "qwgpu: prefill %d tokens in %.3f s (%.1f tok/s) | decode %d tokens in %.3f s (%.1f tok/s) | stop: %s | %s\n",
		res.PromptTokens, res.PrefillTime.Seconds(), res.PrefillTokensPerSecond(),
		len(res.Tokens), res.DecodeTime.Seconds(), res.DecodeTokensPerSecond(), res.StopReason, adapter)
	if res.StopReason == generate.StopContext {
		fmt.Fprintln(os.Stderr, "qwgpu: the context is full; the output so far is kept (raise --ctx for longer runs)")
	}
}

// chatLoop runs an interactive conversation: each line on stdin is a user
// turn; the KV cache keeps every earlier turn, so only the new text is fed.
func chatLoop(e *engine.Engine, m *model, opt generate.Options, system string, think bool) error {
	conv := chat.NewConversation(system, think)
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	var history, unfed []int
	tty := isTerminal(os.Stdin)
	for {
		if tty {
			fmt.Fprint(os.Stderr, "> ")
		}
		if !in.Scan() {
			break
		}
		line := strings.TrimSpace(in.Text())
		if line == "" {
			continue
		}
		if line == "/exit" || line == "/quit" {
			break
		}
		if !utf8.ValidString(line) {
			fmt.Fprintln(os.Stderr, "qwgpu: that line is not valid UTF-8; ignored")
			continue
		}
		ids := append(unfed, m.tok.Encode(conv.AppendUser(line))...)
		res, err := generate.Generate(e, m.tok, ids, history, opt)
		if errors.Is(err, generate.ErrPromptTooLong) {
			return fmt.Errorf("the conversation no longer fits the context of %d tokens (--ctx): %w", e.Context(), err)
		}
		if err != nil {
			return err
		}
		fmt.Println()
		printStats(res, describeAdapter(e.Device()))
		history = append(append(history, ids...), res.Tokens...)
		fed := res.Tokens[:len(res.Tokens)-len(res.Unfed)]
		unfed = append([]int(nil), res.Unfed...)
		text, err := m.tok.Decode(fed)
		if err != nil {
			return err
		}
		conv.AppendAssistant(text)
		if res.StopReason == generate.StopContext {
			return nil
		}
	}
	return in.Err()
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
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(path)
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
	fs.IntVar(&s.topK, "top-k", 0, "keep the k most likely tokens, 0 = off (default: generation_config.json)")
	fs.Float64Var(&s.topP, "top-p", 1, "nucleus sampling threshold in (0, 1] (default: generation_config.json)")
	fs.Float64Var(&s.minP, "min-p", 0, "drop tokens below min-p × the top probability (default: generation_config.json)")
	fs.Float64Var(&s.repeat, "repeat-penalty", 1, "repetition penalty, 1 = off")
	// The name generation_config.json uses, which package sample's error
	// messages give.
	fs.Float64Var(&s.repeat, "repetition-penalty", 1, "same as --repeat-penalty")
	fs.Float64Var(&s.presence, "presence-penalty", 0, "presence penalty, 0 = off")
	fs.Uint64Var(&s.seed, "seed", 0, "random seed for sampling")
	fs.BoolVar(&s.greedy, "greedy", false, "greedy decoding (same as --temperature 0)")
}

// params merges the flags over the model's defaults and validates them.
func (s *samplingFlags) params(fs *pflag.FlagSet, gen sample.GenerationConfig) (sample.Params, error) {
	p := gen.Defaults()
	if fs.Changed("temperature") {
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
	return p, p.Validate()
}
