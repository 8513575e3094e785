package llm

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkSchedulerDecode drives the scheduler with clients concurrent
// greedy requests on the built-in model (lavapipe here): for profiling the
// host side of a step (go test -bench SchedulerDecode -cpuprofile).
func BenchmarkSchedulerDecode(b *testing.B) {
	const clients, tokens = 8, 24
	m := openTest(b, Options{Parallel: clients})
	ps := prompts(clients)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				if _, err := m.Generate(context.Background(), ps[i], raw(greedy(tokens)), nil); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(b.N*clients*tokens)/time.Since(start).Seconds(), "tok/s")
}
