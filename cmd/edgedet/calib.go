package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/edgedet/edgedet/agent"
	"github.com/edgedet/edgedet/calib"
	"github.com/edgedet/edgedet/detection"
	"github.com/edgedet/edgedet/detector"
)

// modelSpec resolves the model's description (input size, preprocessing)
// as the detector does, without creating an inference session, so
// calibration frames are prepared exactly as the agent prepares frames.
// A format, when not empty, is the output format (--format), as detect's
// flag names it.
func modelSpec(model string, format detection.Format) (detection.Spec, error) {
	cfg := detector.DefaultConfig()
	cfg.Model = model
	cfg.Format = format
	info, err := detector.Describe(cfg)
	if err != nil {
		return detection.Spec{}, err
	}
	return info.Spec, nil
}

// formatUsage is --format's help in the commands that derive a model
// (quantize, prune, distill): the source's output format, when neither its
// output shape nor a sidecar says it; the output model records it.
const formatUsage = "the model's output format when its shape or sidecar does not say it (yolox_levels must be named): yolov8, yolov5, yolox, yolox_levels, end2end, fastestv2; the output model records it"

// openCalibInputs reads calibration frames from the flag called flagName
// (--calib, --data) whose value is src: a directory of images (at most
// maxImages, 0 = all), or else the name of a camera of the config at
// cfgPath, from which frames frames are captured.
func openCalibInputs(ctx context.Context, flagName, src, cfgPath string, frames, maxImages int, spec detection.Spec,
	log *slog.Logger, stderr io.Writer) (*calib.Inputs, error) {
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		return calib.FromDir(src, maxImages, spec, log)
	}
	cfg, err := agent.Load(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not a directory, so it names a camera of %s: %w", flagName, src, cfgPath, err)
	}
	var names []string
	for _, c := range cfg.Cameras {
		names = append(names, c.Name)
		if c.Name != src {
			continue
		}
		if frames <= 0 {
			return nil, fmt.Errorf("%w: --frames must be > 0", errUsage)
		}
		return calib.FromCamera(ctx, src, c.Config, frames, spec, log, stderr)
	}
	return nil, fmt.Errorf("%s %q: no such directory, and no camera of that name in %s (cameras: %s)", flagName, src, cfg.Path, strings.Join(names, ", "))
}
