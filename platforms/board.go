package platforms

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
)

// Board kinds reported in Board.Kind.
const (
	KindJetson      = "jetson"
	KindRaspberryPi = "raspberrypi"
	KindARM64       = "arm64"
	KindX86_64      = "x86_64"
	KindUnknown     = "unknown"
)

// Paths Detect reads, relative to the root of the fs.FS it is given
// (production: os.DirFS("/")).
const (
	DeviceTreeModelPath = "proc/device-tree/model"
	TegraReleasePath    = "etc/nv_tegra_release"
	CPUInfoPath         = "proc/cpuinfo"
)

// Board describes the machine edgedet runs on.
type Board struct {
	// Kind is one of "jetson", "raspberrypi", "arm64", "x86_64", "unknown".
	Kind string `json:"kind"`
	// Model is the device-tree model ("Raspberry Pi 4 Model B Rev 1.4",
	// "NVIDIA Jetson Orin Nano Developer Kit"), the Raspberry Pi cpuinfo
	// "Model" line, or on x86 the CPU "model name".
	Model string `json:"model,omitempty"`
	// Family is "nano", "xavier", "orin" (Jetson) or "3", "4", "5" (Pi);
	// empty when unknown.
	Family string `json:"family,omitempty"`
	// L4T is the Jetson Linux release from etc/nv_tegra_release ("R36.3.0").
	L4T string `json:"l4t,omitempty"`
	// Arch is "x86_64", "arm64" or "arm" (32-bit); empty when unknown.
	Arch string `json:"arch,omitempty"`
	// CPUFlags holds the inference-relevant CPU features the kernel reports
	// (x86 "flags", arm "Features"), in RelevantCPUFlags order.
	CPUFlags []string `json:"cpu_flags"`
	// PhysicalCores counts distinct (physical id, core id) pairs; on CPUs
	// without SMT information it equals LogicalCPUs.
	PhysicalCores int `json:"physical_cores"`
	// LogicalCPUs counts the "processor" stanzas of proc/cpuinfo.
	LogicalCPUs int `json:"logical_cpus"`
}

// RelevantCPUFlags lists the CPU features that matter to inference kernels,
// in the order Board.CPUFlags reports them. arm64 kernels report NEON as
// "asimd" and the int8 dot product as "asimddp"; 32-bit ones say "neon".
var RelevantCPUFlags = []string{
	// x86
	"avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vbmi", "avx512_vnni", "avx_vnni", "amx_int8",
	// arm
	"neon", "asimd", "asimdhp", "asimddp", "i8mm", "sve",
}

// HasFlag reports whether the board's CPU reports flag.
func (b Board) HasFlag(flag string) bool {
	for _, f := range b.CPUFlags {
		if f == flag {
			return true
		}
	}
	return false
}

// Detect identifies the board from proc/device-tree/model, etc/nv_tegra_release
// and proc/cpuinfo in fsys, which is rooted at "/". Missing files are normal
// and skipped; a file that exists but cannot be read is an error naming it.
// Nothing found at all gives Kind "unknown" and no error.
func Detect(fsys fs.FS) (Board, error) {
	b := Board{Kind: KindUnknown, CPUFlags: []string{}}

	model, err := readOptional(fsys, DeviceTreeModelPath)
	if err != nil {
		return Board{}, err
	}
	// The device-tree string is NUL-terminated (sometimes NUL-padded).
	model = strings.TrimSpace(strings.TrimRight(model, "\x00"))
	if i := strings.IndexByte(model, 0); i >= 0 {
		model = strings.TrimSpace(model[:i])
	}

	tegra, err := readOptional(fsys, TegraReleasePath)
	if err != nil {
		return Board{}, err
	}
	hasTegra := tegra != ""
	if _, statErr := fs.Stat(fsys, TegraReleasePath); statErr == nil {
		hasTegra = true
	}

	cpuinfo, err := readOptional(fsys, CPUInfoPath)
	if err != nil {
		return Board{}, err
	}
	ci := parseCPUInfo(cpuinfo)
	b.Arch = ci.arch
	b.CPUFlags = ci.flags
	b.LogicalCPUs = ci.logical
	b.PhysicalCores = ci.physical

	if model == "" {
		model = ci.boardModel // Raspberry Pi kernels print "Model : Raspberry Pi ..."
	}

	lower := strings.ToLower(model)
	switch {
	case hasTegra || strings.Contains(lower, "jetson") ||
		(strings.HasPrefix(lower, "nvidia") && (strings.Contains(lower, "orin") || strings.Contains(lower, "xavier"))):
		b.Kind = KindJetson
		b.Model = model
		b.L4T, b.Family = parseTegraRelease(tegra)
		if f := jetsonFamily(lower); f != "" {
			b.Family = f
		}
		if b.Arch == "" {
			b.Arch = "arm64" // every supported Jetson runs aarch64 L4T
		}
	case strings.HasPrefix(lower, "raspberry pi"):
		b.Kind = KindRaspberryPi
		b.Model = model
		b.Family = piFamily(model)
		if b.Arch == "" {
			b.Arch = "arm64"
		}
	case b.Arch == "arm64":
		b.Kind = KindARM64
		b.Model = model
	case b.Arch == "x86_64":
		b.Kind = KindX86_64
		b.Model = model
		if b.Model == "" {
			b.Model = ci.cpuModel
		}
	default:
		b.Model = model
	}
	return b, nil
}

// readOptional returns the file's contents, or "" when it does not exist.
func readOptional(fsys fs.FS, name string) (string, error) {
	data, err := fs.ReadFile(fsys, name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", "/"+name, err)
	}
	return string(data), nil
}

type cpuInfo struct {
	arch       string
	flags      []string
	logical    int
	physical   int
	cpuModel   string // x86 "model name"
	boardModel string // Raspberry Pi "Model"
}

// parseCPUInfo reads the kernel's proc/cpuinfo: "key : value" lines in
// stanzas separated by blank lines, one stanza per logical CPU (arm adds a
// trailing Hardware/Revision/Model stanza).
func parseCPUInfo(s string) cpuInfo {
	var ci cpuInfo
	flagSet := map[string]bool{}
	cores := map[string]bool{}
	var physID, coreID string
	var sawX86, armV8, armV7 bool
	flush := func() {
		if coreID != "" {
			cores[physID+"/"+coreID] = true
		}
		physID, coreID = "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader([]byte(s)))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			ci.logical++
		case "physical id":
			physID = v
		case "core id":
			coreID = v
		case "flags":
			sawX86 = true
			for _, f := range strings.Fields(v) {
				flagSet[f] = true
			}
		case "vendor_id":
			sawX86 = true
		case "Features":
			for _, f := range strings.Fields(v) {
				flagSet[f] = true
			}
		case "CPU architecture":
			switch v {
			case "8", "AArch64":
				armV8 = true
			case "7":
				armV7 = true
			}
		case "model name":
			if ci.cpuModel == "" {
				ci.cpuModel = v
			}
		case "Model":
			ci.boardModel = v
		}
	}
	flush()

	switch {
	case sawX86:
		ci.arch = "x86_64"
	case flagSet["asimd"] || (armV8 && !flagSet["neon"]):
		// A 32-bit kernel on an ARMv8 core says "CPU architecture: 7" or
		// lists "neon"; aarch64 kernels list "asimd".
		ci.arch = "arm64"
	case armV7 || armV8 || flagSet["neon"]:
		ci.arch = "arm"
	}
	ci.flags = []string{}
	for _, f := range RelevantCPUFlags {
		if flagSet[f] {
			ci.flags = append(ci.flags, f)
		}
	}
	ci.physical = len(cores)
	if ci.physical == 0 || ci.physical > ci.logical && ci.logical > 0 {
		ci.physical = ci.logical
	}
	return ci
}

var tegraRe = regexp.MustCompile(`#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)`)

// parseTegraRelease returns the L4T release ("R36.3.0") and, from the BOARD
// field of older releases, the Jetson family when it tells.
func parseTegraRelease(s string) (l4t, family string) {
	if m := tegraRe.FindStringSubmatch(s); m != nil {
		l4t = "R" + m[1] + "." + m[2]
	}
	for _, f := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(f, ":")
		if !ok || strings.TrimSpace(k) != "BOARD" {
			continue
		}
		switch v = strings.TrimSpace(v); {
		case strings.HasPrefix(v, "t210"):
			family = "nano"
		case strings.HasPrefix(v, "t194"):
			family = "xavier"
		case strings.HasPrefix(v, "t234"):
			family = "orin"
		}
	}
	return l4t, family
}

func jetsonFamily(lowerModel string) string {
	switch {
	case strings.Contains(lowerModel, "orin"):
		return "orin"
	case strings.Contains(lowerModel, "xavier"):
		return "xavier"
	case strings.Contains(lowerModel, "nano"):
		return "nano"
	case strings.Contains(lowerModel, "tx2"):
		return "tx2"
	}
	return ""
}

var piRe = regexp.MustCompile(`^Raspberry Pi (?:Compute Module )?(\d+)`)

// piFamily returns the Raspberry Pi generation ("3", "4", "5"); a Zero 2 is
// a Pi 3 class board (BCM2710A1).
func piFamily(model string) string {
	if m := piRe.FindStringSubmatch(model); m != nil {
		return m[1]
	}
	if strings.HasPrefix(model, "Raspberry Pi Zero 2") {
		return "3"
	}
	return ""
}
