package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
)

func cmdTokenize(args []string) error {
	fs := newFlags("tokenize")
	model := fs.StringP("model", "m", "", "model directory, GGUF file or Hugging Face repo id (its tokenizer is used); default: the built-in Qwen3 tokenizer")
	tokFile := fs.String("tokenizer", "", "a tokenizer.json file")
	text := fs.StringP("text", "p", "", "text to encode (with --decode: ids separated by spaces or commas, or a JSON array); default: the arguments, else stdin")
	asJSON := fs.Bool("json", false, "print the ids as a JSON array on one line")
	decode := fs.Bool("decode", false, "decode ids back to text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var input string
	switch {
	case fs.Changed("text") && fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q: the text was given with --text", fs.Arg(0))
	case fs.Changed("text"):
		input = *text
	case fs.NArg() > 0:
		input = strings.Join(fs.Args(), " ")
	default:
		data, err := io.ReadAll(io.LimitReader(os.Stdin, weights.MaxPromptBytes+1))
		if err != nil {
			return fmt.Errorf("reading stdin: %v", err)
		}
		if len(data) > weights.MaxPromptBytes {
			return fmt.Errorf("stdin: more than %s of text", weights.HumanBytes(weights.MaxPromptBytes))
		}
		input = string(data)
	}
	var tok *tokenizer.Tokenizer
	var err error
	switch {
	case *model != "" && *tokFile != "":
		return fmt.Errorf("give --model or --tokenizer, not both")
	case *model != "" && isFile(*model):
		// A GGUF file carries its tokenizer in its metadata.
		tok, err = ggufTokenizer(*model)
	case *model != "":
		dir, rerr := resolveModel(*model)
		if rerr != nil {
			return rerr
		}
		tok, err = tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
	case *tokFile != "":
		tok, err = tokenizer.Load(*tokFile)
	default:
		tok, err = tokenizer.Qwen3()
	}
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	if *decode {
		ids, err := parseIDList(input)
		if err != nil {
			return fmt.Errorf("--text: %v", err)
		}
		s, err := tok.Decode(ids)
		if err != nil {
			return err
		}
		fmt.Fprintln(w, s)
		return flushStdout(w)
	}
	ids := tok.Encode(input)
	if *asJSON {
		b, _ := json.Marshal(ids)
		fmt.Fprintln(w, string(b))
		return flushStdout(w)
	}
	for _, id := range ids {
		fmt.Fprintf(w, "%6d  %q\n", id, tok.TokenString(id))
	}
	if err := flushStdout(w); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%d tokens\n", len(ids))
	return nil
}

// flushStdout flushes buffered output, reporting a failed write (a closed
// pipe, a full disk) instead of losing the output without a word.
func flushStdout(w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing the output to stdout: %v", stripPathErr(err))
	}
	return nil
}

// parseIDList reads "1 2 3", "1,2,3" or "[1, 2, 3]".
func parseIDList(s string) ([]int, error) {
	s = strings.Trim(strings.TrimSpace(s), "[]")
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	ids := make([]int, 0, len(fields))
	for _, f := range fields {
		id, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// ggufTokenizer builds the tokenizer of a GGUF file; a vocab-only file will
// do, since no tensor is read.
func ggufTokenizer(path string) (*tokenizer.Tokenizer, error) {
	g, err := weights.OpenGGUF(path)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	return qwen3.GGUFTokenizer(g)
}

// isFile reports whether path names an existing file that is not a
// directory (a GGUF model rather than a checkpoint directory).
func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}
