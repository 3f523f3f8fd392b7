// Package latency times ONNX models against each other on this machine:
// alternating runs of two prepared models, so a machine whose load changes
// favours neither. prune meets latency targets with it and quant chooses
// its float layers by it; cmd/edgedet supplies timers that run the models
// in the detector (the agent's own session and preprocessing).
package latency

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

// Open prepares model m for timing. cmd/edgedet times models in the
// detector (the agent's own session and preprocessing), so what is
// measured is what the agent will run.
type Open func(ctx context.Context, m *onnxpb.ModelProto) (Timer, error)

// Rounds of Paired: a warm-up of warmupRuns runs each, then pairedRounds
// rounds of roundRuns runs of each model in turn.
const (
	warmupRuns   = 5
	pairedRounds = 5
	roundRuns    = 20
)

// Paired times a and b alternately, pairedRounds rounds of roundRuns runs
// each after a warm-up, and returns their median run times: alternating
// keeps a machine whose load changes from favouring one.
func Paired(ctx context.Context, a, b Timer) (time.Duration, time.Duration, error) {
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
	if err := run(a, warmupRuns, &warm); err != nil {
		return 0, 0, err
	}
	if err := run(b, warmupRuns, &warm); err != nil {
		return 0, 0, err
	}
	for range pairedRounds {
		if err := run(a, roundRuns, &ta); err != nil {
			return 0, 0, err
		}
		if err := run(b, roundRuns, &tb); err != nil {
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

// PairedModels opens timers for a and b with open and runs Paired; errors
// name the model by aName or bName.
func PairedModels(ctx context.Context, open Open, a, b *onnxpb.ModelProto, aName, bName string) (time.Duration, time.Duration, error) {
	if open == nil {
		return 0, 0, errors.New("latency: no timer to measure with")
	}
	ta, err := open(ctx, a)
	if err != nil {
		return 0, 0, fmt.Errorf("latency of the %s: %w", aName, err)
	}
	defer ta.Close()
	tb, err := open(ctx, b)
	if err != nil {
		return 0, 0, fmt.Errorf("latency of the %s: %w", bName, err)
	}
	defer tb.Close()
	return Paired(ctx, ta, tb)
}
