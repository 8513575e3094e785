package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/qwgpu/qwgpu/qwen3/llm"
)

// decodeBody reads a JSON request body into v: at most limit bytes, one
// JSON object, unknown fields ignored (clients send many we do not use),
// known fields with the wrong type refused naming the field.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) *apiError {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	err := dec.Decode(v)
	if err == nil {
		// One object only: trailing garbage is as broken as a bad object.
		var extra json.RawMessage
		if dec.Decode(&extra) != io.EOF {
			return invalid("", "request body: more than one JSON value")
		}
		return nil
	}
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		ae        *apiError
	)
	switch {
	case errors.As(err, &maxErr):
		e := invalid("", "request body larger than %d bytes", maxErr.Limit)
		e.status = http.StatusRequestEntityTooLarge
		return withCode(e, "request_too_large")
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, io.EOF):
		return invalid("", "request body: empty, want a JSON object")
	case errors.As(err, &syntaxErr):
		return invalid("", "request body: invalid JSON at byte %d: %v", syntaxErr.Offset, err)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return invalid("", "request body: want a JSON object, got %s", typeErr.Value)
		}
		// The shared fields live in an embedded struct the client never sees.
		field := strings.TrimPrefix(typeErr.Field, "sampling.")
		return invalid(field, "%s: want %s, got %s", field, jsonKind(typeErr.Type.String()), typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "request body: JSON ends early")
	}
	return invalid("", "request body: %v", err)
}

// jsonKind names a Go type the way a JSON user thinks of it.
func jsonKind(goType string) string {
	t := strings.TrimLeft(goType, "*")
	switch {
	case strings.HasPrefix(t, "[]"):
		return "an array"
	case t == "string":
		return "a string"
	case t == "bool":
		return "a boolean"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "an integer"
	case strings.HasPrefix(t, "float"):
		return "a number"
	}
	return "an object"
}

// stopList is OpenAI's stop: a string or an array of strings.
type stopList []string

func (s *stopList) UnmarshalJSON(b []byte) error {
	switch b = bytes.TrimSpace(b); {
	case bytes.Equal(b, []byte("null")):
		*s = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return invalid("stop", "stop: %v", err)
		}
		*s = stopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return invalid("stop", "stop: want a string or an array of strings")
	}
	*s = many
	return nil
}

// streamOptions is stream_options; only include_usage means anything here.
type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// sampling are the generation fields chat and text completions share,
// with the vLLM extensions (top_k, min_p, repetition_penalty) that
// Qwen3's recommended settings need.
type sampling struct {
	Model             string          `json:"model"`
	Stream            bool            `json:"stream"`
	StreamOptions     *streamOptions  `json:"stream_options"`
	MaxTokens         *int            `json:"max_tokens"`
	Temperature       *float64        `json:"temperature"`
	TopP              *float64        `json:"top_p"`
	TopK              *int            `json:"top_k"`
	MinP              *float64        `json:"min_p"`
	Seed              *int64          `json:"seed"`
	Stop              stopList        `json:"stop"`
	PresencePenalty   *float64        `json:"presence_penalty"`
	FrequencyPenalty  *float64        `json:"frequency_penalty"`
	RepetitionPenalty *float64        `json:"repetition_penalty"`
	N                 *int            `json:"n"`
	Logprobs          json.RawMessage `json:"logprobs"`
}

// maxStops bounds the stop list as OpenAI does.
const maxStops = 4

// options checks the shared fields and turns them into llm options.
func (s *sampling) options(maxTokens *int, maxParam string) (llm.GenOptions, *apiError) {
	var o llm.GenOptions
	if s.N != nil && *s.N != 1 {
		return o, invalid("n", "n %d: only n=1 is supported", *s.N)
	}
	if l := bytes.TrimSpace(s.Logprobs); len(l) > 0 && !bytes.Equal(l, []byte("null")) && !bytes.Equal(l, []byte("false")) {
		return o, invalid("logprobs", "logprobs: not supported")
	}
	if maxTokens != nil {
		if *maxTokens < 1 {
			return o, invalid(maxParam, "%s %d: must be at least 1", maxParam, *maxTokens)
		}
		o.MaxTokens = *maxTokens
	}
	if t := s.Temperature; t != nil && (*t < 0 || *t > 2) {
		return o, invalid("temperature", "temperature %g: want 0 to 2", *t)
	}
	o.Temperature = s.Temperature
	if p := s.TopP; p != nil && (*p <= 0 || *p > 1) {
		return o, invalid("top_p", "top_p %g: want more than 0, at most 1", *p)
	}
	o.TopP = s.TopP
	if k := s.TopK; k != nil {
		if *k < -1 {
			return o, invalid("top_k", "top_k %d: want -1 (off), 0 (off) or more", *k)
		}
		off := max(*k, 0) // vLLM's -1 and 0 both mean no top-k
		o.TopK = &off
	}
	if p := s.MinP; p != nil && (*p < 0 || *p > 1) {
		return o, invalid("min_p", "min_p %g: want 0 to 1", *p)
	}
	o.MinP = s.MinP
	if s.Seed != nil {
		seed := uint64(*s.Seed) // a negative seed is as good a seed as any
		o.Seed = &seed
	}
	if len(s.Stop) > maxStops {
		return o, invalid("stop", "stop: %d strings, at most %d", len(s.Stop), maxStops)
	}
	for _, st := range s.Stop {
		if st == "" {
			return o, invalid("stop", "stop: an empty string would stop at once")
		}
	}
	o.Stop = s.Stop
	for _, p := range []struct {
		name string
		v    *float64
		dst  *float64
	}{{"presence_penalty", s.PresencePenalty, &o.PresencePenalty}, {"frequency_penalty", s.FrequencyPenalty, &o.FrequencyPenalty}} {
		if p.v == nil {
			continue
		}
		if *p.v < -2 || *p.v > 2 {
			return o, invalid(p.name, "%s %g: want -2 to 2", p.name, *p.v)
		}
		*p.dst = *p.v
	}
	if r := s.RepetitionPenalty; r != nil {
		if *r <= 0 {
			return o, invalid("repetition_penalty", "repetition_penalty %g: must be more than 0", *r)
		}
		o.RepeatPenalty = *r
	}
	return o, nil
}

func (s *sampling) includeUsage() bool { return s.StreamOptions != nil && s.StreamOptions.IncludeUsage }
