package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/qwgpu/qwgpu/gpu"
	"github.com/qwgpu/qwgpu/qwen3/engine"
)

func TestLeakProbeDevice(t *testing.T) {
	for i := 0; i < 8; i++ {
		dev := openTestDevice(t)
		dev.Close()
		t.Logf("device cycle %d: %v", i, sampleMem(t))
	}
}

func TestLeakProbeListAdapters(t *testing.T) {
	for i := 0; i < 8; i++ {
		_, err := gpu.ListAdapters("")
		require.NoError(t, err)
		t.Logf("list cycle %d: %v", i, sampleMem(t))
	}
}

func TestLeakProbeEngine(t *testing.T) {
	dev := openTestDevice(t)
	defer dev.Close()
	m := openGoldenModel(t, "small-tied-bf16")
	for i := 0; i < 8; i++ {
		e, err := engine.Load(dev, m.cfg, m.ck, engine.Options{Ctx: 256})
		require.NoError(t, err)
		_, err = e.FeedArgmax([]int{1, 2, 3})
		require.NoError(t, err)
		e.Close()
		t.Logf("engine cycle %d: %v", i, sampleMem(t))
	}
}
