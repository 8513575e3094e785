package main

import (
	"encoding/json"
	"fmt"
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
	model := fs.String("model", "", "model directory (its tokenizer.json is used) or GGUF file")
	tokFile := fs.String("tokenizer", "", "a tokenizer.json file")
	text := fs.String("text", "", "text to encode (with --decode: ids separated by spaces or commas, or a JSON array)")
	asJSON := fs.Bool("json", false, "print the ids as a JSON array on one line")
	decode := fs.Bool("decode", false, "decode ids in --text back to text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var path string
	switch {
	case *model != "" && *tokFile != "":
		return fmt.Errorf("give --model or --tokenizer, not both")
	case *model != "":
		path = filepath.Join(*model, "tokenizer.json")
	case *tokFile != "":
		path = *tokFile
	default:
		return fmt.Errorf("--model DIR or --tokenizer FILE is required")
	}
	if !fs.Changed("text") {
		return fmt.Errorf("--text is required")
	}
	var tok *tokenizer.Tokenizer
	var err error
	if st, serr := os.Stat(*model); *model != "" && serr == nil && !st.IsDir() {
		// A GGUF file carries its tokenizer in its metadata.
		tok, err = ggufTokenizer(*model)
	} else {
		tok, err = tokenizer.Load(path)
	}
	if err != nil {
		return err
	}
	if *decode {
		ids, err := parseIDList(*text)
		if err != nil {
			return fmt.Errorf("--text: %v", err)
		}
		s, err := tok.Decode(ids)
		if err != nil {
			return err
		}
		fmt.Println(s)
		return nil
	}
	ids := tok.Encode(*text)
	if *asJSON {
		b, _ := json.Marshal(ids)
		fmt.Println(string(b))
		return nil
	}
	w := os.Stdout
	for _, id := range ids {
		fmt.Fprintf(w, "%6d  %q\n", id, tok.TokenString(id))
	}
	fmt.Fprintf(os.Stderr, "%d tokens\n", len(ids))
	return nil
}

// parseIDList reads "1 2 3", "1,2,3" or "[1, 2, 3]".
func parseIDList(s string) ([]int, error) {
	s = strings.Trim(strings.TrimSpace(s), "[]")
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
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
