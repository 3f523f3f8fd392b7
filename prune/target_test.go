package prune_test

import (
	"strings"
	"testing"

	"github.com/edgedet/edgedet/prune"
)

func TestParseTarget(t *testing.T) {
	for in, want := range map[string]prune.Target{
		"ratio=0.3": {Ratio: 0.3}, "flops=0.7": {FLOPs: 0.7}, "latency=0.8": {Latency: 0.8}, "flops=.95": {FLOPs: 0.95},
	} {
		got, err := prune.ParseTarget(in)
		if err != nil || got.Ratio != want.Ratio || got.FLOPs != want.FLOPs || got.Latency != want.Latency {
			t.Errorf("%s: %+v, %v", in, got, err)
		}
		if got.String() != in {
			t.Errorf("%s: String() = %q, want the text as given", in, got.String())
		}
	}
	for in, msg := range map[string]string{
		"ratio=1": "not in (0,1)", "flops=0": "not in (0,1)", "latency=-1": "not in (0,1)",
		"speed=0.5": `kind "speed"`, "flops": "want ratio=R, flops=F or latency=L", "ratio=x": "want ratio=R",
		"ratio=NaN": "want ratio=R", "flops=Inf": "want ratio=R",
	} {
		if _, err := prune.ParseTarget(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want one mentioning %q", in, err, msg)
		}
	}
	for want, tg := range map[string]prune.Target{
		"flops=0.5": {FLOPs: 0.5}, "ratio=0.25": {Ratio: 0.25}, "latency=0.75": {Latency: 0.75}, "none": {},
	} {
		if s := tg.String(); s != want {
			t.Errorf("String of literal %+v: %q, want %q", tg, s, want)
		}
	}
}
