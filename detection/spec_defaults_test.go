package detection

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func intp(v int) *int { return &v }

// fullSpec sets every field of a Spec to a value no default has.
func fullSpec() Spec {
	return Spec{
		Format: FormatYOLOv5, InputWidth: 320, InputHeight: 256, ChannelOrder: "bgr", Scale: 0.5,
		Mean: []float32{1, 2, 3}, Std: []float32{4, 5, 6}, Resize: ResizeStretch, PadValue: intp(7),
		Strides: []int{4, 8}, Anchors: []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
		Labels: []string{"a", "b"}, Precision: "fp16",
	}
}

// TestSpecMerge: every field the overlay sets wins, every field it leaves
// unset keeps the base's value, and the result shares no slice or pointer
// with the overlay.
func TestSpecMerge(t *testing.T) {
	base, over := Spec{}, fullSpec()
	got := base.Merge(over)
	if !reflect.DeepEqual(got, over) {
		t.Errorf("Spec{}.Merge(full)\n got %+v\nwant %+v", got, over)
	}
	if got := over.Merge(Spec{}); !reflect.DeepEqual(got, over) {
		t.Errorf("full.Merge(Spec{})\n got %+v\nwant %+v", got, over)
	}
	got.Mean[0], got.Std[0], *got.PadValue, got.Strides[0], got.Anchors[0], got.Labels[0] = -1, -1, -1, -1, -1, "x"
	if !reflect.DeepEqual(over, fullSpec()) {
		t.Errorf("changing the merged spec changed the overlay: %+v", over)
	}

	// Labels and a labels file replace each other.
	withFile := fullSpec().Merge(Spec{LabelsFile: "/m/names.txt"})
	if withFile.Labels != nil || withFile.LabelsFile != "/m/names.txt" {
		t.Errorf("labels_file over labels: labels %q, file %q", withFile.Labels, withFile.LabelsFile)
	}
	withLabels := withFile.Merge(Spec{Labels: []string{"c"}})
	if !reflect.DeepEqual(withLabels.Labels, []string{"c"}) || withLabels.LabelsFile != "" {
		t.Errorf("labels over labels_file: labels %q, file %q", withLabels.Labels, withLabels.LabelsFile)
	}
}

// TestSpecWithDefaults pins the defaults of each family of formats and
// checks that WithDefaults fills only what is unset.
func TestSpecWithDefaults(t *testing.T) {
	ultralytics := Spec{ChannelOrder: "rgb", Scale: 1.0 / 255, Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1},
		Resize: ResizeLetterbox, PadValue: intp(114), Strides: []int{8, 16, 32}}
	tests := []struct {
		f    Format
		want Spec
	}{
		{"", ultralytics},
		{FormatYOLOv8, ultralytics},
		{FormatEnd2End, ultralytics},
		{FormatYOLOX, Spec{ChannelOrder: "bgr", Scale: 1, Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1},
			Resize: ResizeLetterboxTopLeft, PadValue: intp(114), Strides: []int{8, 16, 32}}},
		{FormatFastestV2, Spec{ChannelOrder: "bgr", Scale: 1.0 / 255, Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1},
			Resize: ResizeStretch, PadValue: intp(114), Strides: []int{8, 16, 32}, Anchors: DefaultFastestV2Anchors}},
		{FormatYOLOXLevels, Spec{ChannelOrder: "rgb", Scale: 1.0 / 255, Mean: []float32{0.485, 0.456, 0.406},
			Std: []float32{0.229, 0.224, 0.225}, Resize: ResizeLetterbox, PadValue: intp(128), Strides: []int{8, 16, 32}}},
	}
	for _, tt := range tests {
		tt.want.Format = tt.f
		if got := (Spec{Format: tt.f}).WithDefaults(); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q defaults\n got %+v\nwant %+v", tt.f, got, tt.want)
		}
		set := fullSpec()
		set.Format = tt.f
		if got := set.WithDefaults(); !reflect.DeepEqual(got, set) {
			t.Errorf("%q: WithDefaults changed set fields\n got %+v\nwant %+v", tt.f, got, set)
		}
	}
	// The default anchors are a copy: changing them leaves the package's alone.
	s := Spec{Format: FormatFastestV2}.WithDefaults()
	s.Anchors[0] = -1
	if DefaultFastestV2Anchors[0] == -1 {
		t.Error("WithDefaults handed out DefaultFastestV2Anchors itself")
	}
}

// TestSpecValidate: a complete spec and the zero spec are valid; each bad
// field is reported, named, and all of them at once.
func TestSpecValidate(t *testing.T) {
	for _, f := range []Format{"", FormatYOLOv8, FormatYOLOv5, FormatYOLOX, FormatYOLOXLevels, FormatEnd2End, FormatFastestV2} {
		if err := (Spec{Format: f, InputWidth: 1, InputHeight: MaxInputSize}).WithDefaults().Validate(); err != nil {
			t.Errorf("%q defaults: %v", f, err)
		}
	}
	for _, s := range []Spec{{}, {InputWidth: MaxInputSize, InputHeight: 1}, {InputWidth: 1, InputHeight: MaxInputSize}} {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	if err := fullSpec().Validate(); err != nil {
		t.Errorf("fullSpec: %v", err)
	}
	for _, p := range []string{"", "fp32", "fp16", "int8"} {
		if err := (Spec{Precision: p, PadValue: intp(0)}).Validate(); err != nil {
			t.Errorf("precision %q, pad 0: %v", p, err)
		}
	}
	if err := (Spec{PadValue: intp(255), Strides: []int{1}, Scale: 1e-6}).Validate(); err != nil {
		t.Errorf("pad 255, stride 1: %v", err)
	}
	nan := float32(math.NaN())
	tests := []struct {
		name string
		s    Spec
		want string
	}{
		{"format", Spec{Format: "yolov3"}, `format: "yolov3" is not one of`},
		{"anchor count", Spec{Anchors: []float32{1, 2}}, "anchors: 2 values, want 12"},
		{"anchor value", Spec{Anchors: []float32{1, 2, 3, 4, 5, 0, 7, 8, 9, 10, 11, 12}}, "anchors[5]"},
		{"input width", Spec{InputWidth: -1}, "input size: -1x0"},
		{"input height", Spec{InputHeight: MaxInputSize + 1}, "input size: 0x4097"},
		{"input width over", Spec{InputWidth: MaxInputSize + 1}, "input size: 4097x0"},
		{"input height negative", Spec{InputHeight: -1}, "input size: 0x-1"},
		{"channel order", Spec{ChannelOrder: "grb"}, `channel_order: "grb"`},
		{"scale", Spec{Scale: -1}, "scale"},
		{"mean value", Spec{Mean: []float32{0, nan, 0}}, "mean[1]"},
		{"mean count", Spec{Mean: []float32{0, 0}}, "mean: [0 0] must have 3 values"},
		{"std count", Spec{Std: []float32{1}}, "std: [1] must have 3 values"},
		{"std zero", Spec{Std: []float32{1, 0, 1}}, "std[1]: must not be 0"},
		{"std value", Spec{Std: []float32{1, 1, nan}}, "std[2]"},
		{"resize", Spec{Resize: "fit"}, `resize: "fit"`},
		{"pad negative", Spec{PadValue: intp(-1)}, "pad_value: -1 not in 0..255"},
		{"pad over", Spec{PadValue: intp(256)}, "pad_value: 256 not in 0..255"},
		{"stride zero", Spec{Strides: []int{8, 0}}, "strides: [8 0] must be positive"},
		{"precision", Spec{Precision: "int4"}, `precision: "int4"`},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
	// One report names every field.
	err := Spec{Format: "x", ChannelOrder: "x", Resize: "x", Precision: "x", PadValue: intp(-1)}.Validate()
	for _, w := range []string{"format", "channel_order", "resize", "precision", "pad_value"} {
		if err == nil || !strings.Contains(err.Error(), w+":") {
			t.Errorf("joined report %v does not name %s", err, w)
		}
	}
}
