package sample

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"reflect"

	"github.com/qwgpu/qwgpu/weights"
)

// GenerationConfig holds the fields of a Hugging Face generation_config.json
// that matter for sampling and stopping. Pointer fields are nil when the key
// is absent (or null), so that "absent" and "zero" can be told apart.
type GenerationConfig struct {
	DoSample          *bool    `json:"do_sample"`
	Temperature       *float64 `json:"temperature"`
	TopK              *int     `json:"top_k"`
	TopP              *float64 `json:"top_p"`
	MinP              *float64 `json:"min_p"`
	RepetitionPenalty *float64 `json:"repetition_penalty"`
	PresencePenalty   *float64 `json:"presence_penalty"`
	// EOSTokenIDs lists every token that ends generation; the file may give
	// eos_token_id as one id or as a list.
	EOSTokenIDs TokenIDs `json:"eos_token_id"`
	BOSTokenID  *int     `json:"bos_token_id"`
	PadTokenID  *int     `json:"pad_token_id"`
}

// TokenIDs is a list of token ids that decodes from either a JSON number or
// a JSON array of numbers.
type TokenIDs []int

// UnmarshalJSON accepts a single id, a list of ids, or null.
func (t *TokenIDs) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		*t = nil
		return nil
	}
	if len(data) > 0 && data[0] == '[' {
		var ids []int
		if err := json.Unmarshal(data, &ids); err != nil {
			return tokenIDError{}
		}
		*t = ids
		return nil
	}
	var id int
	if err := json.Unmarshal(data, &id); err != nil {
		return tokenIDError{}
	}
	*t = TokenIDs{id}
	return nil
}

// LoadGenerationConfig reads a generation_config.json. Unknown keys are
// ignored; malformed JSON, a field of the wrong type or a value out of
// range is a one-line error naming the file and the field, in the file's
// terms.
func LoadGenerationConfig(path string) (GenerationConfig, error) {
	data, err := weights.ReadFileLimited(path, weights.MaxConfigBytes)
	if err != nil {
		return GenerationConfig{}, fmt.Errorf("generation config: %w", err)
	}
	var g GenerationConfig
	if err := json.Unmarshal(data, &g); err != nil {
		return GenerationConfig{}, fmt.Errorf("generation config %s: %v", path, jsonFieldError(err))
	}
	if err := g.Validate(); err != nil {
		return GenerationConfig{}, fmt.Errorf("generation config %s: %v", path, err)
	}
	return g, nil
}

// Validate checks the sampling fields that are present, naming them as
// the file does (not as the command-line flags that may override them).
func (g GenerationConfig) Validate() error {
	bad := func(name string, v float64, want string) error {
		return fmt.Errorf("%s is %g; it must be %s", name, v, want)
	}
	if v := g.Temperature; v != nil && !(*v >= 0 && !math.IsInf(*v, 0)) {
		return bad("temperature", *v, "a finite number >= 0")
	}
	if v := g.TopK; v != nil && *v < 0 {
		return fmt.Errorf("top_k is %d; it must be >= 0", *v)
	}
	if v := g.TopP; v != nil && !(*v > 0 && *v <= 1) {
		return bad("top_p", *v, "in (0, 1]")
	}
	if v := g.MinP; v != nil && !(*v >= 0 && *v < 1) {
		return bad("min_p", *v, "in [0, 1)")
	}
	if v := g.RepetitionPenalty; v != nil && !(*v > 0 && !math.IsInf(*v, 0)) {
		return bad("repetition_penalty", *v, "a finite number > 0")
	}
	if v := g.PresencePenalty; v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
		return bad("presence_penalty", *v, "finite")
	}
	return nil
}

// jsonFieldError says what a decoding error is about in JSON's terms,
// where encoding/json would name Go types.
func jsonFieldError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := "a number"
		switch te.Type.Kind() {
		case reflect.Bool:
			want = "true or false"
		case reflect.Int, reflect.Int64:
			want = "an integer"
		case reflect.Slice:
			want = "a list of integers"
		}
		if te.Field == "" {
			return fmt.Errorf("not a JSON object (got %s)", te.Value)
		}
		return fmt.Errorf("field %q: want %s, got %s", te.Field, want, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	var tid tokenIDError
	if errors.As(err, &tid) {
		return fmt.Errorf("field %q: want a token id or a list of token ids", "eos_token_id")
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

// tokenIDError is TokenIDs' decoding failure, worded by jsonFieldError.
type tokenIDError struct{}

func (tokenIDError) Error() string { return "want a token id or a list of token ids" }

// LoadGenerationConfigIfExists is LoadGenerationConfig for a file that a
// model may not ship: a missing file gives the zero GenerationConfig and
// false, with no error. Any other failure is still an error.
func LoadGenerationConfigIfExists(path string) (GenerationConfig, bool, error) {
	g, err := LoadGenerationConfig(path)
	if errors.Is(err, fs.ErrNotExist) {
		return GenerationConfig{}, false, nil
	}
	if err != nil {
		return GenerationConfig{}, false, err
	}
	return g, true, nil
}

// Defaults turns the publisher's settings into Params. The rules:
//
//   - do_sample false means greedy decoding (Temperature 0), whatever the
//     temperature says, as in transformers.
//   - do_sample absent and temperature absent also means greedy: the file
//     asks for no sampling at all. (transformers would be greedy even with a
//     temperature; here a temperature alone is taken as a request to sample,
//     since publishers sometimes leave do_sample out.)
//   - Otherwise the model samples, at temperature (1 when absent).
//   - top_k, top_p and min_p are copied when present; when absent they are
//     off (0, 1 and 0). transformers 4.x would fill an absent top_k with 50;
//     a publisher who wants a top-k writes it, as Qwen3 does.
//   - repetition_penalty (1 when absent) and presence_penalty (0 when
//     absent) are copied in both modes: the penalties apply to greedy
//     decoding too.
//   - Seed is left 0 for the caller to set.
//
// Qwen3 publishes do_sample true, temperature 0.6, top_k 20, top_p 0.95,
// which gives exactly those Params. The values are not validated here: a
// caller that accepts user overrides validates the final Params.
func (g GenerationConfig) Defaults() Params {
	p := Params{
		Temperature:       1,
		TopK:              0,
		TopP:              1,
		MinP:              0,
		RepetitionPenalty: 1,
		PresencePenalty:   0,
	}
	setIf(&p.Temperature, g.Temperature)
	setIf(&p.TopK, g.TopK)
	setIf(&p.TopP, g.TopP)
	setIf(&p.MinP, g.MinP)
	setIf(&p.RepetitionPenalty, g.RepetitionPenalty)
	setIf(&p.PresencePenalty, g.PresencePenalty)

	greedy := g.DoSample == nil && g.Temperature == nil
	if g.DoSample != nil && !*g.DoSample {
		greedy = true
	}
	if greedy {
		p.Temperature = 0
	}
	return p
}

func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}
