package generate

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/qwen3"
	"github.com/qwgpu/qwgpu/qwen3/sample"
	"github.com/qwgpu/qwgpu/qwen3/tokenizer"
	"github.com/qwgpu/qwgpu/weights"
)

// scripted is a backend whose next token is fixed in advance: Feed
// returns logits with the scripted token on top.
type scripted struct {
	cfg    qwen3.Config
	ctx    int
	fed    []int
	script []int
}

func (s *scripted) Config() qwen3.Config { return s.cfg }
func (s *scripted) Context() int         { return s.ctx }
func (s *scripted) Len() int             { return len(s.fed) }
func (s *scripted) Reset()               { s.fed = nil }
func (s *scripted) Feed(tokens []int) ([]float32, error) {
	s.fed = append(s.fed, tokens...)
	logits := make([]float32, s.cfg.VocabSize)
	logits[s.script[0]] = 10
	s.script = s.script[1:]
	return logits, nil
}

func qwenTok(t *testing.T) *tokenizer.Tokenizer {
	tok, err := tokenizer.Qwen3()
	require.NoError(t, err)
	return tok
}

func newScripted(t *testing.T, tok *tokenizer.Tokenizer, text string, tail ...int) *scripted {
	ids := append(tok.Encode(text), tail...)
	return &scripted{cfg: qwen3.Config{VocabSize: 151936}, ctx: 1000, script: ids}
}

var greedy = sample.Params{Temperature: 0, TopP: 1, RepetitionPenalty: 1}

func TestStopStringIsCutAndHeldBack(t *testing.T) {
	tok := qwenTok(t)
	b := newScripted(t, tok, "Hello there, STOP here please")
	var streamed []string
	res, err := Generate(b, tok, []int{1}, nil, Options{Sampling: greedy, Stop: []string{"STOP"},
		OnText: func(s string) { streamed = append(streamed, s) }})
	require.NoError(t, err)
	require.Equal(t, StopString, res.StopReason)
	require.Equal(t, "Hello there, ", res.Text)
	require.Equal(t, res.Text, strings.Join(streamed, ""))
	for _, s := range streamed {
		require.NotContains(t, s, "ST", "the start of a stop string is held back")
	}
}

func TestEOSStopsAndIsNotPrinted(t *testing.T) {
	tok := qwenTok(t)
	b := newScripted(t, tok, "a b c", 151645, 5, 6)
	res, err := Generate(b, tok, []int{1, 2}, nil, Options{Sampling: greedy, EOS: []int{151643, 151645}})
	require.NoError(t, err)
	require.Equal(t, StopEOS, res.StopReason)
	require.Equal(t, "a b c", res.Text)
	require.Empty(t, res.Unfed)
	require.Equal(t, 2+len(res.Tokens), b.Len(), "every printed token was fed")
}

func TestMaxTokensAndContext(t *testing.T) {
	tok := qwenTok(t)
	b := newScripted(t, tok, strings.Repeat("x y ", 50))
	res, err := Generate(b, tok, []int{1}, nil, Options{Sampling: greedy, MaxTokens: 5})
	require.NoError(t, err)
	require.Equal(t, StopMaxTokens, res.StopReason)
	require.Len(t, res.Tokens, 5)
	require.Equal(t, res.Tokens[4:], res.Unfed)

	b = newScripted(t, tok, strings.Repeat("x y ", 50))
	b.ctx = 8
	res, err = Generate(b, tok, []int{1, 2, 3}, nil, Options{Sampling: greedy})
	require.NoError(t, err)
	require.Equal(t, StopContext, res.StopReason)
	require.Equal(t, 8, b.Len())
	require.Len(t, res.Tokens, 6, "5 fed after the prompt, the 6th printed but unfed")

	b.Reset()
	_, err = Generate(b, tok, make([]int, 8), nil, Options{Sampling: greedy})
	require.ErrorIs(t, err, ErrPromptTooLong)
	_, err = Generate(b, tok, []int{1}, nil, Options{Sampling: sample.Params{Temperature: -1}})
	require.ErrorContains(t, err, "--temperature")
}

// The generation loop over the CPU reference reproduces transformers'
// greedy continuation of the golden tiny model (whose ids < 512 are valid
// Qwen3 tokens, so the real tokenizer can print them).
func TestGreedyMatchesGolden(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "golden", "tiny-tied-f32")
	cfg, err := qwen3.LoadConfigDir(dir)
	require.NoError(t, err)
	ck, err := weights.OpenCheckpoint(dir)
	require.NoError(t, err)
	defer ck.Close()
	w, err := qwen3.LoadWeights(cfg, ck)
	require.NoError(t, err)
	cases, err := qwen3.LoadGolden(filepath.Join(dir, "golden.safetensors"), cfg)
	require.NoError(t, err)
	m := qwen3.NewModel(cfg, w, 128)
	tok := qwenTok(t)
	for _, gc := range cases {
		b := NewCPU(m, 128)
		res, err := Generate(b, tok, gc.InputIDs, nil, Options{Sampling: greedy, MaxTokens: len(gc.Greedy)})
		require.NoError(t, err)
		for i, want := range gc.Greedy {
			if gc.GreedyMargin[i] < 1e-3 {
				break // past an ambiguous step the sequences may part
			}
			require.Equalf(t, want, res.Tokens[i], "case %d step %d", gc.Index, i)
		}
		want, err := tok.Decode(res.Tokens)
		require.NoError(t, err)
		require.Equal(t, want, res.Text)
	}
}
