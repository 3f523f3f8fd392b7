package prune

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/edgedet/edgedet/onnx/onnxpb"
)

// A Timer runs one prepared model once per call to Time and returns how
// long its inference took. Close frees it.
type Timer interface {
	Time(ctx context.Context) (time.Duration, error)
	Close() error
}

// OpenTimer prepares model m for timing. cmd/edgedet times models in the
// detector (the agent's own session and preprocessing), so a latency target
// is met where it matters.
type OpenTimer func(ctx context.Context, m *onnxpb.ModelProto) (Timer, error)

// Rounds of PairedLatency: a warm-up of latencyWarmup runs each, then
// latencyRounds rounds of latencyRuns runs of each model in turn.
const (
	latencyWarmup = 5
	latencyRounds = 5
	latencyRuns   = 20
)

// PairedLatency times a and b alternately, latencyRounds rounds of
// latencyRuns runs each after a warm-up, and returns their median run
// times: alternating keeps a machine whose load changes from favouring one.
func PairedLatency(ctx context.Context, a, b Timer) (time.Duration, time.Duration, error) {
	var ta, tb []time.Duration
	run := func(t Timer, n int, into *[]time.Duration) error {
		for range n {
			d, err := t.Time(ctx)
			if err != nil {
				return err
			}
			*into = append(*into, d)
		}
		return nil
	}
	var warm []time.Duration
	if err := run(a, latencyWarmup, &warm); err != nil {
		return 0, 0, err
	}
	if err := run(b, latencyWarmup, &warm); err != nil {
		return 0, 0, err
	}
	for range latencyRounds {
		if err := run(a, latencyRuns, &ta); err != nil {
			return 0, 0, err
		}
		if err := run(b, latencyRuns, &tb); err != nil {
			return 0, 0, err
		}
	}
	return median(ta), median(tb), nil
}

// median is the nearest-rank 50th percentile.
func median(v []time.Duration) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// pairedModels opens timers for a and b and runs PairedLatency.
func pairedModels(ctx context.Context, open OpenTimer, a, b *onnxpb.ModelProto) (time.Duration, time.Duration, error) {
	if open == nil {
		return 0, 0, errors.New("latency: no OpenTimer to measure with")
	}
	ta, err := open(ctx, a)
	if err != nil {
		return 0, 0, fmt.Errorf("latency of the original: %w", err)
	}
	defer ta.Close()
	tb, err := open(ctx, b)
	if err != nil {
		return 0, 0, fmt.Errorf("latency of the pruned model: %w", err)
	}
	defer tb.Close()
	return PairedLatency(ctx, ta, tb)
}
