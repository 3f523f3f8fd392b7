package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/edgedet/edgedet/platforms"
)

// platformReport is what `edgedet platform --json` prints.
type platformReport struct {
	Board   platforms.Board `json:"board"`
	Library libraryReport   `json:"library"`
	Plan    planReport      `json:"plan"`
}

type libraryReport struct {
	Path      string   `json:"path,omitempty"`
	Providers []string `json:"providers"`
	Error     string   `json:"error,omitempty"`
}

type planReport struct {
	Providers  []planProvider `json:"providers"`
	Profile    string         `json:"profile"`
	Threads    int            `json:"threads"`
	CameraHint string         `json:"camera_hint"`
}

type planProvider struct {
	Name      string `json:"name"`
	ORTName   string `json:"ort_name"`
	Available bool   `json:"available"` // compiled into the library
}

// cmdPlatform prints the board, its CPU features, the ONNX Runtime library's
// providers and the plan. A library that cannot be found or queried is shown
// in the report and makes the command fail after printing it.
func cmdPlatform(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("platform", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library (default: search)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	board, err := platforms.Detect(os.DirFS("/"))
	if err != nil {
		return fmt.Errorf("detect board: %w", err)
	}
	rep := platformReport{Board: board, Library: libraryReport{Providers: []string{}}}
	var libErr error
	if lib, err := platforms.FindONNXRuntime(*ortLib); err != nil {
		libErr = err
	} else {
		rep.Library.Path = lib
		if ps, err := platforms.AvailableProviders(lib); err != nil {
			libErr = err
		} else {
			rep.Library.Providers = ps
		}
	}
	if libErr != nil {
		rep.Library.Error = libErr.Error()
	}
	plan := platforms.PlanFor(board)
	rep.Plan = planReport{Profile: plan.Profile, Threads: plan.Threads, CameraHint: plan.CameraHint, Providers: []planProvider{}}
	for _, p := range plan.Providers {
		ort := platforms.ORTProviderName(p)
		rep.Plan.Providers = append(rep.Plan.Providers, planProvider{
			Name: p, ORTName: ort, Available: slices.Contains(rep.Library.Providers, ort)})
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printPlatform(stdout, rep)
	}
	return libErr
}

func printPlatform(w io.Writer, r platformReport) {
	b := r.Board
	orNone := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Fprintf(w, "board:      %s\n", b.Kind)
	fmt.Fprintf(w, "model:      %s\n", orNone(b.Model))
	fmt.Fprintf(w, "family:     %s\n", orNone(b.Family))
	if b.L4T != "" {
		fmt.Fprintf(w, "l4t:        %s\n", b.L4T)
	}
	fmt.Fprintf(w, "arch:       %s\n", orNone(b.Arch))
	fmt.Fprintf(w, "cpu flags:  %s\n", orNone(strings.Join(b.CPUFlags, " ")))
	fmt.Fprintf(w, "cores:      %d physical, %d logical\n", b.PhysicalCores, b.LogicalCPUs)
	if r.Library.Error != "" {
		fmt.Fprintf(w, "library:    error: %s\n", r.Library.Error)
	} else {
		fmt.Fprintf(w, "library:    %s\n", r.Library.Path)
		var ps []string
		for _, p := range r.Library.Providers {
			if p == platforms.ORTProviderName("webgpu") {
				p += " (never used)"
			}
			ps = append(ps, p)
		}
		fmt.Fprintf(w, "providers:  %s\n", orNone(strings.Join(ps, ", ")))
	}
	fmt.Fprintf(w, "plan:\n")
	for i, p := range r.Plan.Providers {
		mark := "not in library, skipped"
		if p.Available {
			mark = "in library"
		} else if p.Name == "cpu" {
			mark = "always"
		}
		fmt.Fprintf(w, "  %d. %-9s %-26s %s\n", i+1, p.Name, p.ORTName, mark)
	}
	fmt.Fprintf(w, "  (\"in library\" means compiled in: a provider whose own .so is missing still fails and falls back)\n")
	fmt.Fprintf(w, "quantize:   --profile %s\n", r.Plan.Profile)
	threads := fmt.Sprint(r.Plan.Threads)
	if r.Plan.Threads == 0 {
		threads = "0 (ONNX Runtime default)"
	}
	fmt.Fprintf(w, "threads:    %s\n", threads)
	fmt.Fprintf(w, "camera:     %s\n", r.Plan.CameraHint)
}
