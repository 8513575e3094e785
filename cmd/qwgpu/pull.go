package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"github.com/qwgpu/qwgpu/weights"
	"github.com/qwgpu/qwgpu/weights/hub"
)

func cmdPull(args []string) error {
	fs := newFlags("pull")
	revision := fs.String("revision", "main", "branch, tag or commit to download")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("give one Hugging Face repo id, e.g. qwgpu pull Qwen/Qwen3-0.6B")
	}
	repo := fs.Arg(0)
	if !hub.IsRepoID(repo) {
		return fmt.Errorf("%q is not a Hugging Face repo id (org/name)", repo)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var bar *progress
	current := ""
	snap, err := hub.Pull(ctx, repo, hub.PullOptions{Revision: *revision, Progress: func(name string, done, total int64) {
		if name != current {
			if bar != nil {
				bar.done()
			}
			current, bar = name, newProgress(name)
		}
		bar.update(done, total)
		if done == total && !bar.tty {
			fmt.Fprintf(os.Stderr, "qwgpu: %s %s\n", name, weights.HumanBytes(total))
		}
	}})
	if bar != nil {
		bar.done()
	}
	if ctx.Err() != nil {
		return errInterrupted
	}
	if err != nil {
		return err
	}
	fmt.Println(snap)
	return nil
}
