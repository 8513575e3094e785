package llm_test

import (
	"context"
	"fmt"
	"log"

	"github.com/qwgpu/qwgpu/qwen3/llm"
)

// Open with no model name loads the built-in tiny model (random weights,
// the real Qwen3 tokenizer): the text it writes is noise, the pipeline is
// real. Give a directory, a GGUF file or a repo id such as
// "Qwen/Qwen3-0.6B" for a real one.
func ExampleOpen() {
	m, err := llm.Open(context.Background(), "", llm.Options{Parallel: 4})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	info := m.Info()
	fmt.Println(info.Name)
	fmt.Println("context:", info.Ctx, "parallel:", info.Parallel)
	// Output:
	// built-in tiny Qwen3 (random weights)
	// context: 4096 parallel: 4
}

func ExampleModel_Chat() {
	m, err := llm.Open(context.Background(), "", llm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	msgs := []llm.Message{
		{Role: "system", Content: "You are a helpful assistant."},
		{Role: "user", Content: "Name three prime numbers."},
	}
	seed := uint64(1)
	streamed := 0
	res, err := m.Chat(context.Background(), msgs, llm.GenOptions{MaxTokens: 8, Seed: &seed},
		func(t llm.Token) error {
			streamed += len(t.Text) // print t.Text here to stream the answer
			return nil
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("finish:", res.FinishReason, "tokens:", res.CompletionTokens)
	fmt.Println("streamed all of it:", streamed == len(res.Text)+len(res.Reasoning))
	// Output:
	// finish: length tokens: 8
	// streamed all of it: true
}

func ExampleModel_ChatStream() {
	m, err := llm.Open(context.Background(), "", llm.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	thinking, seed := false, uint64(7)
	msgs := []llm.Message{{Role: "user", Content: "Tell me a long story."}}
	n := 0
	for tok, err := range m.ChatStream(context.Background(), msgs, llm.GenOptions{Thinking: &thinking, Seed: &seed}) {
		if err != nil {
			log.Fatal(err)
		}
		_ = tok.Text // the answer so far, piece by piece
		if n++; n == 5 {
			break // leaving the loop cancels the request
		}
	}
	fmt.Println("pieces read:", n, "sequences still running:", m.Stats().Active)
	// Output:
	// pieces read: 5 sequences still running: 0
}
