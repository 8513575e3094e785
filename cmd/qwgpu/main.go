// Command qwgpu runs Qwen3 language models on any GPU through WebGPU.
//
//	qwgpu run       generate text (plain prompt or chat), streamed
//	qwgpu validate  check the GPU against the CPU reference and golden data
//	qwgpu serve     an OpenAI-compatible HTTP server with a chat page
//	qwgpu bench     prefill and decode speed, llama-bench style
//	qwgpu tokenize  text to token ids and back
//	qwgpu pull      download a model from the Hugging Face hub
//	qwgpu inspect   metadata and tensors of a GGUF file or checkpoint
//	qwgpu info      the GPU adapters this machine has
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
)

type command struct {
	name, summary string
	run           func(args []string) error
}

var commands = []command{
	{"run", "generate text from a prompt or a chat, streamed to stdout", cmdRun},
	{"validate", "compare the GPU with the CPU reference (and golden data)", cmdValidate},
	{"serve", "serve the OpenAI API (chat, completions, streaming, tools) and a chat page over HTTP", cmdServe},
	{"bench", "measure prefill (pp) and decode (tg) tokens per second", cmdBench},
	{"tokenize", "turn text into token ids, or ids into text with --decode", cmdTokenize},
	{"pull", "download a model (repo id, e.g. Qwen/Qwen3-0.6B) into the Hugging Face cache", cmdPull},
	{"inspect", "list a GGUF file's or checkpoint's metadata and tensors, or --dump one", cmdInspect},
	{"info", "list GPU adapters with backend, driver, limits and features", cmdInfo},
}

func main() {
	os.Exit(realMain(os.Args[1:]))
}

func realMain(args []string) (code int) {
	defer func() {
		// A panic is a bug in qwgpu, never the user's fault: say so in one line.
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "qwgpu: internal error: %v (please report this)\n", r)
			code = 3
		}
	}()
	if len(args) > 0 && (args[0] == "--version" || args[0] == "version") {
		fmt.Println(versionLine())
		return 0
	}
	defer ensureRuntimeDir()()
	// Without this a write to a closed pipe (qwgpu ... | head -1) kills the
	// process with SIGPIPE; with it the write fails and is reported.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(args[1:])
			if errors.Is(err, pflag.ErrHelp) {
				return 0
			}
			if errors.Is(err, errInterrupted) {
				// The output so far and the stats line were written.
				fmt.Fprintf(os.Stderr, "qwgpu %s: interrupted\n", c.name)
				return 130
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "qwgpu %s: %s\n", c.name, oneLine(err.Error()))
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "qwgpu: unknown command %q (run 'qwgpu help')\n", args[0])
	return 2
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: qwgpu <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nrun 'qwgpu <command> --help' for its flags; 'qwgpu --version' for the build")
}

// errInterrupted ends a command stopped by Ctrl-C (SIGINT): exit 130, as
// a shell reports a process killed by that signal.
var errInterrupted = errors.New("interrupted")

// newFlags makes a command's flag set; parse errors come back as errors.
func newFlags(name string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("qwgpu "+name, pflag.ContinueOnError)
	fs.SortFlags = false
	return fs
}

// oneLine keeps an error message on one line, as every qwgpu error is.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
