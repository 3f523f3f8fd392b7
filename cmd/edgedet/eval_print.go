package main

import (
	"fmt"
	"io"

	"github.com/edgedet/edgedet/eval"
)

// summaryDelta is b − a per stat; undefined (-1) in either stays -1.
func summaryDelta(a, b eval.Summary) eval.Summary {
	sa, sb := a.Stats(), b.Stats()
	var d [12]float64
	for i := range d {
		if sa[i] < 0 || sb[i] < 0 {
			d[i] = -1
		} else {
			d[i] = sb[i] - sa[i]
		}
	}
	return eval.Summary{AP: d[0], AP50: d[1], AP75: d[2], APSmall: d[3], APMedium: d[4], APLarge: d[5],
		AR1: d[6], AR10: d[7], AR100: d[8], ARSmall: d[9], ARMedium: d[10], ARLarge: d[11]}
}

// printEvalReport writes the text report: models, the twelve COCO numbers,
// per-class AP.
func printEvalReport(w io.Writer, r *evalReport) {
	fmt.Fprintf(w, "dataset %s: %s (%d without objects), %s in %s\n",
		r.Data, plural(r.Images, "image"), r.EmptyImages, plural(r.Objects, "object"), plural(r.Classes, "class"))
	fmt.Fprintf(w, "score >= %g, NMS IoU %g, at most %s per image; COCO 101-point AP\n\n",
		r.ScoreThreshold, r.IoUThreshold, plural(r.MaxDetections, "detection"))
	cmp := len(r.Models) == 2
	col := 10
	for _, m := range r.Models {
		col = max(col, len(m.Model)+2)
	}
	const label = 52
	row := func(name string, vals []string) {
		fmt.Fprintf(w, "%-*s", label, name)
		for _, v := range vals {
			fmt.Fprintf(w, "%*s", col, v)
		}
		fmt.Fprintln(w)
	}
	var hdr []string
	for _, m := range r.Models {
		hdr = append(hdr, m.Model)
	}
	if cmp {
		hdr = append(hdr, "delta")
	}
	row("", hdr)
	num := func(format string, get func(m evalModelReport) float64) []string {
		var v []string
		for _, m := range r.Models {
			v = append(v, fmt.Sprintf(format, get(m)))
		}
		if cmp {
			v = append(v, fmt.Sprintf("%+"+format[1:], get(r.Models[1])-get(r.Models[0])))
		}
		return v
	}
	var info []string
	for _, m := range r.Models {
		info = append(info, m.Precision+" "+m.Input)
	}
	row("precision, input", info)
	row("file size (MB)", num("%.2f", func(m evalModelReport) float64 { return float64(m.SizeBytes) / 1e6 }))
	row("mean inference (ms)", num("%.1f", func(m evalModelReport) float64 { return m.InferenceMS }))
	row("detections", num("%.0f", func(m evalModelReport) float64 { return float64(m.Detections) }))
	fmt.Fprintln(w)
	stat := func(v float64) string {
		if v < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.3f", v)
	}
	for i, lbl := range eval.SummaryLabels {
		var v []string
		for _, m := range r.Models {
			v = append(v, stat(m.Summary.Stats()[i]))
		}
		if cmp {
			if r.Models[0].Summary.Stats()[i] < 0 || r.Models[1].Summary.Stats()[i] < 0 {
				v = append(v, "n/a")
			} else {
				v = append(v, fmt.Sprintf("%+.3f", r.Delta.Stats()[i]))
			}
		}
		row(lbl, v)
	}

	// Per class: AP@[.50:.95] and AP@.50 for each model.
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%4s %-16s %5s", "id", "class", "gt")
	heads := []string{"AP", "AP50"}
	if cmp {
		heads = []string{"AP A", "AP B", "ΔAP", "AP50 A", "AP50 B", "ΔAP50"}
	}
	for _, h := range heads {
		fmt.Fprintf(w, "%9s", h)
	}
	fmt.Fprintln(w)
	for ci, c := range r.Models[0].Classes {
		fmt.Fprintf(w, "%4d %-16s %5d", c.ClassID, c.Name, c.GT)
		if !cmp {
			fmt.Fprintf(w, "%9.3f%9.3f\n", c.AP, c.AP50)
			continue
		}
		o := r.Models[1].Classes[ci]
		fmt.Fprintf(w, "%9.3f%9.3f%+9.3f%9.3f%9.3f%+9.3f\n", c.AP, o.AP, o.AP-c.AP, c.AP50, o.AP50, o.AP50-c.AP50)
	}
	if cmp {
		fmt.Fprintf(w, "\nA = %s, B = %s; deltas are B − A\n", r.Models[0].Model, r.Models[1].Model)
	}
	if d := r.DeltaInterval; cmp && d != nil {
		fmt.Fprintf(w, "95 %% interval of the deltas over %d resamples of the %s: mAP@.5:.95 %+.3f to %+.3f, mAP@.5 %+.3f to %+.3f%s\n",
			d.Resamples, plural(r.Images, "image"), d.AP[0], d.AP[1], d.AP50[0], d.AP50[1], tellsApart(d.AP))
	}
}

// tellsApart says whether an interval of mAP differences excludes 0.
func tellsApart(iv [2]float64) string {
	if iv[0] <= 0 && iv[1] >= 0 {
		return " (contains 0: these images cannot tell the two models apart)"
	}
	return ""
}
