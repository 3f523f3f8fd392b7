package detector

import "github.com/edgedet/edgedet/detection"

// Aliases and forwarders for what moved to package detection, so code that
// still names them through detector compiles unchanged. New code uses
// detection directly; these go once every caller has switched.

// Types that moved to detection.
type (
	Box        = detection.Box
	Detection  = detection.Detection
	Format     = detection.Format
	ResizeMode = detection.ResizeMode
	Decoder    = detection.Decoder
	NMSOptions = detection.NMSOptions
	Filter     = detection.Filter
	Geometry   = detection.Geometry
	Spec       = detection.Spec
)

// Formats and resize modes that callers outside detection still name here.
const (
	FormatYOLOv8    = detection.FormatYOLOv8
	FormatYOLOv5    = detection.FormatYOLOv5
	FormatYOLOX     = detection.FormatYOLOX
	FormatEnd2End   = detection.FormatEnd2End
	FormatFastestV2 = detection.FormatFastestV2
	ResizeStretch   = detection.ResizeStretch
)

// IoU forwards to detection.IoU.
func IoU(a, b Box) float32 { return detection.IoU(a, b) }
