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

// FormatYOLOX is detection.FormatYOLOX (named here by quant and prune tests).
const FormatYOLOX = detection.FormatYOLOX

// IoU forwards to detection.IoU (called here by a quant test).
func IoU(a, b Box) float32 { return detection.IoU(a, b) }
