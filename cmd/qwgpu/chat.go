package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/qwgpu/qwgpu/qwen3/llm"
	"github.com/qwgpu/qwgpu/weights"
)

// chatHelp is what /help prints.
const chatHelp = `commands (not sent to the model):
  /help           this list
  /clear          forget the conversation (the system prompt stays)
  /system TEXT    set the system prompt and start over (/system alone removes it)
  /think on|off   Qwen3's thinking for the next replies
  /exit, /quit    leave (so does Ctrl-D, or Ctrl-C twice)
Ctrl-C while the model writes stops the reply; the conversation goes on.`

// doubleInterrupt is how soon a second Ctrl-C at the prompt leaves.
const doubleInterrupt = 2 * time.Second

// chatModel is what a chat needs of an llm.Model (a test wraps one).
type chatModel interface {
	Chat(ctx context.Context, msgs []llm.Message, opt llm.GenOptions, onToken func(llm.Token) error) (*llm.Result, error)
}

// chatSession is an interactive conversation: each line read is a user
// turn. llm keeps the conversation's tokens in the KV cache slot, so each
// turn computes only what its rendering does not share with the last.
type chatSession struct {
	m       chatModel
	gen     llm.GenOptions
	adapter string
	ctxLen  int
	system  string
	think   bool

	out  *output
	show *replyPrinter
	info io.Writer // prompts, notes and stats (stderr)
	// interrupts delivers Ctrl-C; a test sends on it directly.
	interrupts chan os.Signal

	msgs          []llm.Message // the conversation, without the system prompt
	last          *llm.Result   // the last turn's
	lastInterrupt time.Time
}

func newChatSession(m chatModel, gen llm.GenOptions, adapter string, ctxLen int, system string) *chatSession {
	s := &chatSession{m: m, gen: gen, adapter: adapter, ctxLen: ctxLen, system: system, think: gen.Thinking == nil || *gen.Thinking,
		info: os.Stderr, interrupts: make(chan os.Signal, 1)}
	s.out = newOutput(os.Stdout)
	s.show = newReplyPrinter(s.out.write, false, false)
	return s
}

// clear starts the conversation over with the current system prompt.
func (s *chatSession) clear() { s.msgs = nil }

// conversation is what the next turn sends: the system prompt, then the
// turns.
func (s *chatSession) conversation() []llm.Message {
	var msgs []llm.Message
	if s.system != "" {
		msgs = append(msgs, llm.Message{Role: "system", Content: s.system})
	}
	return append(msgs, s.msgs...)
}

// inputLine is one line of stdin, or why there is none.
type inputLine struct {
	text    string
	tooLong bool
	err     error
}

// readLines sends stdin's lines on a channel, closed at the end of input.
// A line longer than weights.MaxPromptBytes is skipped to its end and
// reported, never buffered whole.
func readLines(r io.Reader) <-chan inputLine {
	ch := make(chan inputLine)
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(r, 64<<10)
		for {
			var line []byte
			tooLong := false
			for {
				part, isPrefix, err := br.ReadLine()
				if err != nil {
					if err != io.EOF {
						ch <- inputLine{err: err}
					} else if len(line) > 0 || tooLong {
						ch <- inputLine{text: string(line), tooLong: tooLong}
					}
					return
				}
				if !tooLong {
					if len(line)+len(part) > weights.MaxPromptBytes {
						tooLong, line = true, nil
					} else {
						line = append(line, part...)
					}
				}
				if !isPrefix {
					break
				}
			}
			ch <- inputLine{text: string(line), tooLong: tooLong}
		}
	}()
	return ch
}

// run reads turns until the input ends, /exit, or two quick Ctrl-Cs.
func (s *chatSession) run(in io.Reader, tty bool) error {
	signal.Notify(s.interrupts, os.Interrupt)
	defer signal.Stop(s.interrupts)
	lines := readLines(in)
	for {
		if tty {
			fmt.Fprint(s.info, "> ")
		}
		var l inputLine
		select {
		case got, ok := <-lines:
			if !ok {
				if tty {
					fmt.Fprintln(s.info)
				}
				return nil
			}
			l = got
		case <-s.interrupts:
			if time.Since(s.lastInterrupt) < doubleInterrupt {
				fmt.Fprintln(s.info)
				return nil
			}
			s.lastInterrupt = time.Now()
			fmt.Fprintln(s.info, "\n(Ctrl-C again or Ctrl-D to leave, /help for commands)")
			continue
		}
		if l.err != nil {
			return fmt.Errorf("reading stdin: %v", l.err)
		}
		if l.tooLong {
			fmt.Fprintf(s.info, "qwgpu: that line is longer than %s; ignored\n", weights.HumanBytes(weights.MaxPromptBytes))
			continue
		}
		line := strings.TrimSpace(l.text)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "/") {
			leave, err := s.command(line)
			if leave || err != nil {
				return err
			}
			continue
		}
		if !utf8.ValidString(line) {
			fmt.Fprintln(s.info, "qwgpu: that line is not valid UTF-8; ignored")
			continue
		}
		done, err := s.turn(line)
		if done || err != nil {
			return err
		}
	}
}

// command runs a /command and reports whether the chat ends.
func (s *chatSession) command(line string) (leave bool, err error) {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/exit", "/quit", "/bye":
		return true, nil
	case "/help", "/?":
		fmt.Fprintln(s.info, chatHelp)
	case "/clear":
		s.clear()
		fmt.Fprintln(s.info, "(conversation cleared)")
	case "/system":
		s.system = arg
		s.clear()
		if arg == "" {
			fmt.Fprintln(s.info, "(system prompt removed; conversation cleared)")
		} else {
			fmt.Fprintln(s.info, "(system prompt set; conversation cleared)")
		}
	case "/think":
		switch arg {
		case "on", "off":
			s.think = arg == "on"
			fmt.Fprintf(s.info, "(thinking %s)\n", arg)
		default:
			fmt.Fprintln(s.info, "qwgpu: /think takes on or off")
		}
	default:
		fmt.Fprintf(s.info, "qwgpu: unknown command %s (/help lists them)\n", name)
	}
	return false, nil
}

// turn sends one user message and streams the reply. Ctrl-C stops the
// reply; what was generated stays in the conversation.
func (s *chatSession) turn(line string) (done bool, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s.out.cancel = cancel
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go func() {
		select {
		case <-s.interrupts:
			cancel()
		case <-stopWatch:
		}
	}()
	opt := s.gen
	think := s.think
	opt.Thinking = &think
	note := newPrefillProgress()
	opt.OnPrefill = note.update
	msgs := append(s.conversation(), llm.Message{Role: "user", Content: line})
	res, err := s.m.Chat(ctx, msgs, opt, s.show.token)
	note.stop()
	s.show.flush()
	if errors.Is(err, llm.ErrPromptTooLong) {
		return true, fmt.Errorf("the conversation no longer fits the context of %d tokens (--ctx; /clear starts over): %w", s.ctxLen, err)
	}
	if err != nil && (res == nil || res.FinishReason != "cancelled") {
		return true, err
	}
	s.out.write("\n")
	if s.out.err != nil {
		return true, s.out.failed()
	}
	printStats(s.info, res, opt, s.adapter)
	s.last = res
	s.msgs = append(s.msgs, llm.Message{Role: "user", Content: line},
		llm.Message{Role: "assistant", Content: res.Text, ReasoningContent: res.Reasoning})
	reason := stopReason(res, opt.MaxTokens)
	if reason == stopInterrupted {
		s.lastInterrupt = time.Now()
		fmt.Fprintln(s.info, "(reply stopped; the conversation goes on)")
	}
	return reason == stopContext, nil
}
