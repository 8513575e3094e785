package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/qwgpu/qwgpu/qwen3/serve"
)

func cmdServe(args []string) error {
	fs := newFlags("serve")
	var mf modelFlags
	mf.register(fs, "model directory, GGUF file or Hugging Face repo id; default: the built-in tiny random model")
	host := fs.String("host", "127.0.0.1", "address to listen on (0.0.0.0 for every interface)")
	port := fs.Int("port", 8080, "TCP port (0: any free port, printed at start)")
	parallel := fs.Int("parallel", 4, "sequences decoded together in one batch; more requests wait in the queue")
	maxQueue := fs.Int("max-queue", 0, "requests that may wait for a batch slot; one more gets 429 Too Many Requests with Retry-After (default: 4 × --parallel)")
	apiKey := fs.String("api-key", "", "require 'Authorization: Bearer KEY' on /v1/ (default: $QWGPU_API_KEY, else none)")
	drain := fs.Duration("drain", 60*time.Second, "on SIGINT/SIGTERM, how long requests in flight may finish before they are cancelled")
	maxBody := fs.Int64("max-body", serve.DefaultMaxBody, "largest request body in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: serve takes flags only", fs.Arg(0))
	}
	if err := mf.check(fs); err != nil {
		return err
	}
	switch {
	case *port < 0 || *port > 65535:
		return fmt.Errorf("--port %d: want 0 to 65535", *port)
	case *parallel < 1:
		return fmt.Errorf("--parallel %d: must be at least 1", *parallel)
	case *maxQueue < 0 || (*maxQueue == 0 && fs.Changed("max-queue")):
		return fmt.Errorf("--max-queue %d: must be at least 1", *maxQueue)
	case *drain < 0:
		return fmt.Errorf("--drain %v: must not be negative", *drain)
	case *maxBody < 1024:
		return fmt.Errorf("--max-body %d: must be at least 1024", *maxBody)
	}
	if *apiKey == "" {
		*apiKey = os.Getenv("QWGPU_API_KEY")
	}

	// The port is taken before the model loads: a busy port fails at once,
	// and connections made while loading wait in the backlog.
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("--host %s --port %d: %v", *host, *port, err)
	}
	defer ln.Close()
	taken := ln.Addr().(*net.TCPAddr).Port // --port, or the one chosen for 0
	if *apiKey == "" && !loopbackHost(*host) {
		fmt.Fprintf(os.Stderr, "qwgpu serve: warning: --host %s takes connections from other machines and no --api-key is set: anyone who reaches port %d can use the model\n", *host, taken)
	}

	// Signals: the first drains, the second cancels what is left.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	loadCtx, cancelLoad := context.WithCancel(context.Background())
	defer cancelLoad()
	stop, hard := make(chan struct{}), make(chan struct{})
	go func() {
		<-sigs
		cancelLoad()
		fmt.Fprintln(os.Stderr, "qwgpu serve: stopping: finishing requests in flight (signal again to cancel them)")
		close(stop)
		<-sigs
		close(hard)
	}()

	if *maxQueue == 0 {
		// Four requests waiting per slot: a short wait when requests are
		// short, and a prompt 429 (which a load balancer or client can
		// route elsewhere) rather than minutes in a queue when they are not.
		*maxQueue = 4 * *parallel
	}
	backend, closeBackend, err := openServeBackend(loadCtx, &mf, fs, *parallel, *maxQueue)
	if err != nil {
		if loadCtx.Err() != nil {
			return errInterrupted
		}
		return err
	}
	defer closeBackend()
	info := backend.Info()
	fmt.Fprintf(os.Stderr, "qwgpu serve: %s, ctx %d, parallel %d, max queue %d, listening on http://%s (chat page at /, OpenAI API at /v1)\n",
		info.Name, info.Ctx, info.Parallel, *maxQueue, net.JoinHostPort(*host, strconv.Itoa(taken)))
	s := serve.New(serve.Config{Backend: backend, APIKey: *apiKey, MaxBody: *maxBody,
		Log: func(format string, a ...any) { fmt.Fprintf(os.Stderr, "qwgpu serve: "+format+"\n", a...) }})
	if err := s.Serve(ln, stop, hard, *drain); err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "qwgpu serve: stopped")
	return nil
}

// loopbackHost reports whether host only takes connections from this
// machine: "localhost" or a loopback address.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
