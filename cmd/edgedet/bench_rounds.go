package main

import (
	"fmt"
	"io"
	"slices"
)

// spread is the median of a set of values with its range.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// spreadOf is the median (the mean of the middle two for an even count),
// minimum and maximum of v; v is not changed.
func spreadOf(v []float64) spread {
	if len(v) == 0 {
		return spread{}
	}
	s := slices.Sorted(slices.Values(v))
	mid := len(s) / 2
	med := s[mid]
	if len(s)%2 == 0 {
		med = (s[mid-1] + s[mid]) / 2
	}
	return spread{Median: med, Min: s[0], Max: s[len(s)-1]}
}

// roundsSummary is one model's figures over the interleaved rounds of
// bench --rounds.
type roundsSummary struct {
	Model            string `json:"model"`
	Path             string `json:"path"`
	Precision        string `json:"precision"`
	FusedActivations int    `json:"fused_activations"`
	Threads          int    `json:"threads"`
	Runs             int    `json:"runs"`
	Rounds           int    `json:"rounds"`
	// InferenceP50 and TotalP50 spread the per-round p50s, in ms.
	InferenceP50 spread `json:"inference_p50_ms"`
	TotalP50     spread `json:"total_p50_ms"`
	// RatioTo is the first model's name; Ratio spreads, over the rounds,
	// this model's inference p50 divided by the first model's p50 of the
	// same round (absent for the first model).
	RatioTo string  `json:"ratio_to,omitempty"`
	Ratio   *spread `json:"ratio,omitempty"`
	// Accuracy is the model's mAP on --eval's dataset.
	Accuracy *benchAccuracy `json:"accuracy,omitempty"`
	// PerRound are the reports of each round, in round order.
	PerRound []benchReport `json:"per_round"`
}

// roundsReport is what bench --rounds N (N > 1) prints as JSON.
type roundsReport struct {
	Rounds int             `json:"rounds"`
	Models []roundsSummary `json:"models"`
}

// roundOrder is the order of the models in round r: rotated by r, so each
// model is measured first as often as any other.
func roundOrder(models, r int) []int {
	order := make([]int, models)
	for i := range order {
		order[i] = (r + i) % models
	}
	return order
}

// summarizeRounds aggregates rounds[r][m], the report of model m in round
// r (every round holds every model, indexed by model, not by run order).
// Ratios divide values of the same round, so a slow round (another process
// on the machine) moves both models of the ratio alike.
func summarizeRounds(rounds [][]benchReport) roundsReport {
	out := roundsReport{Rounds: len(rounds)}
	if len(rounds) == 0 {
		return out
	}
	for m := range rounds[0] {
		first := rounds[0][m]
		s := roundsSummary{Model: first.Model, Path: first.Path, Precision: first.Precision,
			FusedActivations: first.FusedActivations, Threads: first.Threads, Runs: first.Runs, Rounds: len(rounds),
			Accuracy: first.Accuracy}
		var inf, tot, ratio []float64
		for _, round := range rounds {
			r := round[m]
			s.PerRound = append(s.PerRound, r)
			inf, tot = append(inf, r.Inference.P50), append(tot, r.Total.P50)
			if m > 0 && round[0].Inference.P50 > 0 {
				ratio = append(ratio, r.Inference.P50/round[0].Inference.P50)
			}
		}
		s.InferenceP50, s.TotalP50 = spreadOf(inf), spreadOf(tot)
		if m > 0 {
			r := spreadOf(ratio)
			s.RatioTo, s.Ratio = rounds[0][0].Model, &r
		}
		out.Models = append(out.Models, s)
	}
	return out
}

func printRounds(w io.Writer, rep roundsReport, warmup int) {
	fmt.Fprintf(w, "%s, models in rotating order; each round loads each model, warms it up with %s and times it\n",
		plural(rep.Rounds, "round"), plural(warmup, "run"))
	for _, s := range rep.Models {
		fused := ""
		if s.FusedActivations > 0 {
			fused = ", " + plural(s.FusedActivations, "activation") + " fused"
		}
		fmt.Fprintf(w, "model %s (%s%s, %s, %s a round)\n", s.Model, s.Precision, fused, threadsText(s.Threads), plural(s.Runs, "run"))
		fmt.Fprintf(w, "  inference p50: median %.2f ms (%.2f–%.2f) over %s\n",
			s.InferenceP50.Median, s.InferenceP50.Min, s.InferenceP50.Max, plural(s.Rounds, "round"))
		fmt.Fprintf(w, "  total p50:     median %.2f ms (%.2f–%.2f)\n", s.TotalP50.Median, s.TotalP50.Min, s.TotalP50.Max)
		if s.Ratio != nil {
			fmt.Fprintf(w, "  ratio to %s: median %.2f (%.2f–%.2f) over %s\n",
				s.RatioTo, s.Ratio.Median, s.Ratio.Min, s.Ratio.Max, plural(s.Rounds, "round"))
		}
	}
}
